//! # caller
//!
//! Structured, cross-thread concurrency. Any thread can schedule a function or future to
//! run **on a chosen thread** — each thread has at most one [`Caller`], a single-threaded
//! async loop — and get back a [`Pending<T>`]: awaitable from any executor, waitable
//! synchronously, cancellable with a message from anywhere. Because the work runs on its
//! target thread, its future need not be `Send`: thread-confined resources (`Rc`, GUI
//! handles, interpreters, connections) become callable from the whole program.
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use caller::Caller;
//!
//! # fn main() -> Result<(), caller::Error> {
//! // A caller on its own thread.
//! let db = Caller::new_thread("db")?;
//!
//! // A !Send future runs there; the pending is waited on from this plain thread.
//! let mut rows = db.call_soon_async(|| async {
//!     let conn = Rc::new("connection");   // thread-confined
//!     format!("rows from {conn}")
//! });
//! assert_eq!(rows.wait_sync(Some(Duration::from_secs(5)))?, "rows from connection");
//!
//! // CPU work on a pooled worker thread, awaited from any executor.
//! let sum = futures::executor::block_on(caller::to_thread(|| (1..=10u32).sum::<u32>()))?;
//! assert_eq!(sum, 55);
//!
//! // Cancel with a message, from anywhere.
//! let slow = db.call_soon_async(std::future::pending::<()>);
//! slow.cancel("user pressed stop");
//! # db.stop(true);
//! # Ok(()) }
//! ```
//!
//! The guide (the `book/` folder) walks through callers, pendings, pools, queues, groups
//! and the macros, and maps every entry of the Python API this crate was designed from.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod caller;
mod completion;
mod context;
mod error;
pub mod job;
mod pending;
mod queue;
mod rt;
pub mod state;
mod sync;
mod timer;
mod tracker;
mod unwind;

pub use crate::caller::{
    to_thread, to_thread_async, to_thread_with, Backend, CallOptions, Caller, CallerBuilder,
    CallerState, HostLoop, PoolConfig,
};
pub use crate::completion::{
    as_completed, as_completed_stream, wait, AsCompleted, Completable, ReturnWhen,
};
pub use crate::context::{Context, ContextGuard, Scoped, Trackers};
pub use crate::error::{BoxError, Error, Failure, GroupError, MemberFailure};
pub use crate::job::IntoJob;
pub use crate::pending::{
    AnyPending, CallbackId, Metadata, Pending, PendingState, Resolver, Wait, WaitDone,
};
pub use crate::queue::{queue_caller, QueueResult};
pub use crate::rt::CallerId;
pub use crate::timer::{sleep, timeout};
pub use crate::tracker::{
    dump, GroupBuilder, GroupMode, ManagerGuard, PendingGroup, PendingManager,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::macro_support::*;
}
mod macro_support;
pub use caller_macros::{main, on_thread, pending_group, queued, test};
