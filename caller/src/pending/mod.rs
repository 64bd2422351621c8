//! `Pending<T>`: a cancellable, awaitable, thread-safe result that is not there yet.
//!
//! # State machine
//!
//! A pending has one allocation, [`Shared<T>`]: a non-generic [`Header`] (flags, a mutex
//! with the waiters, callbacks and cancel message, a condvar for synchronous waiters, and
//! the metadata) followed by the value slot.
//!
//! ```text
//!   SCHEDULED ──try_start──▶ RUNNING ──finish──▶ DONE ──callbacks run──▶ SETTLED
//!       │                       │                 ▲
//!       └──────── cancel ───────┼─────────────────┘ (not started: done at once)
//!                               └─ cancel: CANCEL_REQUESTED set, runner woken;
//!                                  the runner finishes it on its own thread
//! ```
//!
//! Each flag bit (`RUNNING`, `CANCEL_REQUESTED`, `DONE`, `SETTLED`) is documented where it
//! is defined, in `state.rs`, with the transitions and the lock order. In short: the bits
//! are written while the state lock is held, except `RUNNING`, which `try_start` sets with
//! a compare-and-swap that `cancel`'s `fetch_or` races against; they are read without it.
//!
//! Invariants:
//! - `RUNNING` is never set after `DONE`; once it is set, only the runner (or a stopping
//!   caller dropping the runner) finishes the pending.
//! - `DONE` is final: the first finish wins; later finishes and cancels are no-ops.
//! - The value slot is written before `DONE` is published (both under the state lock),
//!   and is only read after `DONE` is observed.
//! - Waiters wait for `SETTLED`, not `DONE`, so whoever waits on a pending sees the
//!   effects of its callbacks (a group has already reacted to a member when an awaiting
//!   body resumes).
//! - Waiters (wakers and sync waiters) and done callbacks are taken out under the lock in
//!   the same critical section that sets `DONE`; callbacks then run without the lock, and
//!   `SETTLED` is published and the waiters woken after them, so every waiter is woken
//!   exactly once and no callback runs under a crate lock.
//! - A pending that is not `RUNNING` and has no canceller is finished by `cancel` itself.
//!
//! # Files
//!
//! - `state.rs`: the flag word, the locked state, every transition (with named results)
//!   and the lock order.
//! - `callbacks.rs`: done callbacks, their ids, and running them on the finishing thread.
//! - `meta.rs`: [`Metadata`] and the user's key/values.
//! - `shared.rs`: [`Shared<T>`], the header and the value slot in one allocation.
//! - `view.rs`: [`AnyPending`], the type-erased view, and [`PendingState`].
//! - `handle.rs`: [`Pending<T>`], the owner's handle, and [`Resolver<T>`].
//! - `wait.rs`: the timed wait futures and the synchronous wait.
//! - `models.rs`: loom models of the state machine (`--cfg caller_loom`).

mod callbacks;
mod handle;
mod meta;
#[cfg(all(test, caller_loom))]
mod models;
mod shared;
mod state;
mod view;
mod wait;

pub use callbacks::CallbackId;
pub(crate) use callbacks::MemberDone;
pub use handle::{Pending, Resolver};
pub use meta::Metadata;
pub(crate) use shared::Shared;
pub use view::{AnyPending, PendingState};
pub use wait::{Wait, WaitDone};

// What `wait.rs` reaches through `super::`.
use callbacks::settling_here;
use state::{Header, SETTLED};

#[cfg(test)]
mod size_tests {
    /// The header stays small: it is paid for every in-flight call.
    #[test]
    fn header_stays_small() {
        let header = std::mem::size_of::<super::Header>();
        assert!(header <= 200, "Header grew to {header} bytes");
    }
}
