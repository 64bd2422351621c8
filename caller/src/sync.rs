//! Every atomic and lock the crate uses comes through here, so that a model-checking build
//! (loom) can swap them in one place.

pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

/// Lock a mutex, ignoring poisoning: no user code ever runs while one of the crate's locks
/// is held, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
