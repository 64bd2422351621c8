//! Dropping user data without letting its `Drop` unwind into the runtime.
//!
//! A value, closure or future handed to the library may have a `Drop` that panics. The
//! library drops such data on a caller's thread (a detached call's result, a value
//! discarded by a cancel, a closure that never ran, a cancelled future) or inside a host's
//! loop, where an unwinding `Drop` would kill the caller or the host. Every such drop goes
//! through [`drop_caught`]: the panic is caught and its message returned, for the caller to
//! log and put in the pending's outcome.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::panic_message;

/// Drop `value`, catching a panic of its `Drop`; returns the panic's message.
pub(crate) fn drop_caught<V>(value: V) -> Option<String> {
    catch_unwind(AssertUnwindSafe(move || drop(value)))
        .err()
        .map(message_of)
}

/// The message of a caught panic; the payload is dropped (a payload whose own `Drop`
/// panics is leaked rather than unwound).
pub(crate) fn message_of(payload: Box<dyn Any + Send>) -> String {
    let message = panic_message(&*payload);
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
    message
}

/// `note` added to `extra` on a new line (either may be missing).
pub(crate) fn join_notes(extra: Option<String>, note: Option<String>) -> Option<String> {
    match (extra, note) {
        (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
        (a, b) => a.or(b),
    }
}
