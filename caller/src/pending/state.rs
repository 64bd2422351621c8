//! The state of a pending and every transition of it: the flag word ([`Header::flags`],
//! each bit documented below), the [`State`] behind the state lock (outcome, waiters,
//! callbacks, runner, the [`Rare`] parts), and the methods that move a pending on: claim
//! ([`Header::transition_to_running`]), store the runner's waker, finish, cancel, register
//! and unregister a waiter, install a canceller, and settle ([`Finished::run`]). A
//! transition whose caller must know what happened returns a named, `#[must_use]` result,
//! matched on rather than re-read from the bits. The states are drawn in the module's spec
//! (`mod.rs`). Reads of the outcome (`state`, `cancelled`, `take`, `peek`, `Debug`) stay
//! beside the API that offers them (`view.rs`, `shared.rs`).
//!
//! # Lock order
//!
//! A pending has two locks: its state lock ([`Header::state`]; taken here, by the readers
//! in `view.rs` and `shared.rs`, by `callbacks.rs` to add and remove a callback, by
//! `meta.rs` for the user's key/values, and by the synchronous wait in `wait.rs`, which
//! sleeps on [`Header::cond`] with it) and its value lock (the value slot of `Shared<T>`).
//!
//! - **State, then value; never the other way round.** The value lock is taken under the
//!   state lock (finishing with a value, `take`, `peek`), and alone only in `Shared`'s
//!   `Drop`, by whoever lets go of the pending last, when no one else can reach it (the
//!   value's own `Drop` runs after it is released). Nothing is locked under the value lock.
//! - **Held when the state lock is taken:** no lock of the crate, but a group's state lock
//!   (`tracker/group/state.rs`: `describe` formats its members with `Debug`, and a removal
//!   or a repeated add by hand looks for the group's hook; a failed member's `error()` and
//!   `user_meta()` are read before the group's lock is taken). Under a pending's state lock
//!   the crate takes no lock but that pending's value lock: never a group's, never another
//!   pending's.
//! - **No callback, canceller or wake under it.** Done callbacks, the canceller and
//!   `Waker::wake` run after it is released (the waiters and callbacks are taken out in
//!   the critical section that sets `DONE`): but for the value lock below it, the state
//!   lock is a leaf for the crate's own code.
//!
//! Code that is not the crate's still runs under the state lock in these places (known,
//! left as they are; none takes a lock of the crate unless the user's code does):
//! - `Waker::clone`, and the drop of a waker replaced or cleared
//!   ([`Header::register_waiter`], [`Header::unregister_waiter`], [`Header::set_runner`],
//!   finishing): the executor's code.
//! - The drop of a canceller when finishing drops it or [`Header::install_canceller`]
//!   replaces it: if it held the closure's last reference, the closure's captures are
//!   dropped under the lock.
//! - The drop of the error of a completion that came too late ([`Header::finish_error`]
//!   on a done pending).
//! - The `cancel requested` event of [`Header::cancel`] (the tracing subscriber).
//! - `take` (`shared.rs`) formats a failure's error (`Display`) to keep its text for the
//!   views; `peek` clones the value (`T::clone`, under both locks); `Debug` (`view.rs`)
//!   formats the outcome's error and writes to the formatter.

use std::sync::Arc;
use std::task::Waker;

use super::callbacks::Callbacks;
use super::meta::{Metadata, UserMeta};
use super::view::AnyPending;
use crate::error::Error;
use crate::sync::{lock, AtomicU8, Condvar, Mutex, MutexGuard, Ordering};

/// A runner claimed the call ([`Header::transition_to_running`]); from now on only the
/// runner (or a stopping caller dropping the runner) finishes it. The one bit set without
/// the state lock: a compare-and-swap that `cancel`'s `fetch_or` races against. Never set
/// after `DONE`.
pub(super) const RUNNING: u8 = 1;
/// `cancel` was called before `DONE`. May be set while running, so `cancelled()` can be
/// true before `done()`.
pub(super) const CANCEL_REQUESTED: u8 = 2;
/// The outcome is set; final. Published after the value slot is written (both under the
/// state lock); the value is only read after it is observed. The first finish wins; later
/// finishes and cancels are no-ops.
pub(super) const DONE: u8 = 4;
/// Done, and the done callbacks have run: what waiters wait for, so that whoever waits on a
/// pending sees the effects of its callbacks (a group has already reacted to a member when
/// an awaiting body resumes). Set together with `DONE` when there are no callbacks.
pub(super) const SETTLED: u8 = 8;
/// Done with a value (not a failure, not cancelled); set together with `DONE`, final. Lets
/// a group tell a member that ended well, the common case, without the state lock.
pub(super) const VALUE: u8 = 16;

/// A function `cancel` calls for a pending made by hand; see `set_canceller`.
pub(super) type Canceller = Arc<dyn Fn(&str) + Send + Sync + 'static>;

/// What a pending ended with.
pub(super) enum Outcome {
    /// Not done yet: `DONE` is set only together with an outcome.
    Unset,
    /// Done with a value, which is in the value slot (or was taken by the owner).
    Value,
    /// Boxed: most pendings end with a value, and the box keeps `State` small.
    Error(Box<Error>),
}

/// What the state lock guards.
pub(super) struct State {
    pub(super) outcome: Outcome,
    wakers: Waiters,
    /// The done callbacks not run yet, each with its number (`callbacks.rs` adds and
    /// removes them; finishing takes them all out).
    pub(super) callbacks: Callbacks,
    runner: Option<Waker>,
    /// How many synchronous waiters sleep on [`Header::cond`] (counted by `wait.rs`).
    pub(super) sync_waiters: u32,
    /// The number of the last callback added.
    pub(super) next_callback: u32,
    /// What most pendings never need, allocated on first use.
    rare: Option<Box<Rare>>,
}

/// The async waiters: the first one inline (most pendings have at most one), the rest
/// in a list. Key 0 is the inline slot, key `k` is `more[k - 1]`. A free slot is `None`.
#[derive(Default)]
pub(super) struct Waiters {
    first: Option<Waker>,
    more: Vec<Option<Waker>>,
}

impl Waiters {
    fn wake_all(self) {
        let more = self.more.into_iter().flatten();
        self.first.into_iter().chain(more).for_each(Waker::wake);
    }
}

/// The parts of the state most pendings never use.
#[derive(Default)]
pub(super) struct Rare {
    /// Every cancel message, newline-joined.
    cancel_msg: String,
    /// Free slots of `Waiters::more`, reused by the next waiter.
    free_wakers: Vec<usize>,
    canceller: Option<Canceller>,
    /// The user's key/values (`meta.rs`).
    pub(super) user_meta: UserMeta,
}

impl State {
    pub(super) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn cancel_msg(&self) -> &str {
        self.rare.as_deref().map_or("", |r| &r.cancel_msg)
    }

    fn take_canceller(&mut self) -> Option<Canceller> {
        self.rare.as_mut().and_then(|r| r.canceller.take())
    }

    fn canceller(&self) -> Option<Canceller> {
        self.rare.as_deref().and_then(|r| r.canceller.clone())
    }

    pub(super) fn user_meta(&self) -> &[(String, String)] {
        self.rare.as_deref().map_or(&[], |r| r.user_meta.as_slice())
    }

    /// The outcome of a cancel: the accumulated message.
    fn cancelled_outcome(&self) -> Outcome {
        Outcome::Error(Box::new(Error::Cancelled {
            message: self.cancel_msg().to_owned(),
        }))
    }

    /// Whether the outcome is a cancel (`false` while not done).
    pub(super) fn ended_cancelled(&self) -> bool {
        matches!(&self.outcome, Outcome::Error(e) if e.is_cancelled())
    }
}

/// The non-generic part of every pending.
pub(crate) struct Header {
    /// The flag word: `RUNNING`, `CANCEL_REQUESTED`, `DONE`, `SETTLED`. Written under the
    /// state lock, but for `RUNNING`; read without it.
    pub(super) flags: AtomicU8,
    /// The state lock.
    pub(super) state: Mutex<State>,
    /// Where synchronous waiters sleep; notified when `SETTLED` is set.
    pub(super) cond: Condvar,
    pub(super) meta: Metadata,
}

/// Work that a pending's finishing must do after its lock is released: run the callbacks,
/// settle, wake the waiters.
#[must_use = "a finish that is not run leaves its waiters asleep"]
pub(super) struct Finished {
    wakers: Waiters,
    callbacks: Callbacks,
    /// Settled at once (no callbacks) with synchronous waiters asleep: notify them.
    notify: bool,
}

impl Finished {
    /// Run the done callbacks (without the lock), then settle: publish `SETTLED`, notify
    /// the synchronous waiters and wake the async ones (those that came while the
    /// callbacks ran first), so that every waiter is woken exactly once.
    ///
    /// Synchronous waiters are notified here, after the state lock was released, never
    /// under it: a waiter woken while the finisher still held the lock would block at once
    /// on that lock (two more system calls and a context switch per wait_sync).
    /// `SETTLED` was published under the lock, so a waiter either saw it before it slept
    /// or is asleep now and gets this notification.
    pub(super) fn run(self, h: &Header, view: impl FnOnce() -> AnyPending) {
        if self.notify {
            h.cond.notify_all();
        }
        if !self.callbacks.is_empty() {
            let view = view();
            self.callbacks.run_all(&view);
            view.header().settle().wake_all();
        }
        self.wakers.wake_all();
    }
}

/// What [`Header::transition_to_running`] found.
#[must_use]
pub(super) enum TransitionToRunning {
    /// `RUNNING` is set: the claimer runs the call.
    Claimed,
    /// Already done: there is nothing to run.
    AlreadyDone,
    /// A cancel came before the call started: it must never start, and the claimer
    /// finishes it as cancelled.
    Cancelled,
}

/// What a finish did.
#[must_use]
pub(super) enum TransitionToDone {
    /// The pending is done with the outcome this finish gave.
    Finished,
    /// A value came after a cancel was asked: the cancel won, so `cancelled()` and the
    /// outcome agree. The pending is done, cancelled, and the value was dropped (after the
    /// lock). It counts as this completion winning.
    CancelWon,
    /// Already done: nothing changed.
    AlreadyDone,
}

impl TransitionToDone {
    /// Whether this completion decided the outcome (what `set_result` returns).
    pub(super) fn won(&self) -> bool {
        !matches!(self, TransitionToDone::AlreadyDone)
    }
}

/// What [`Header::cancel`] did.
#[must_use]
pub(super) enum CancelResult {
    /// Done before this cancel: nothing changed. `cancelled`: it ended cancelled.
    AlreadyDone { cancelled: bool },
    /// Not started and without a canceller: finished here, as cancelled, and settled.
    FinishedHere,
    /// Running: its runner was woken (or sees the request when it next stores its waker)
    /// and finishes it on its own thread. A canceller, if one was installed, was called.
    LeftToRunner,
    /// Not started, with a canceller: the canceller was called; its producer finishes the
    /// pending.
    LeftToProducer,
}

/// What [`Header::register_waiter`] did.
#[must_use]
pub(super) enum RegisterWaiter {
    /// Already settled: nothing registered, the outcome can be read.
    Settled,
    /// The waker is registered under the key; it is woken once, at settling.
    Registered,
}

/// What [`Header::install_canceller`] did.
#[must_use]
pub(super) enum InstallCanceller {
    /// Done: not installed (it would never be called).
    AlreadyDone,
    /// Installed: every cancel from now on calls it.
    Installed,
    /// Installed, and a cancel was already asked: call it now with `message`, the
    /// accumulated message.
    CancelAlreadyAsked { message: String },
}

impl Header {
    pub(super) fn new(meta: Metadata) -> Self {
        Header {
            flags: AtomicU8::new(0),
            state: Mutex::new(State {
                outcome: Outcome::Unset,
                wakers: Waiters::default(),
                callbacks: Callbacks::default(),
                runner: None,
                sync_waiters: 0,
                next_callback: 0,
                rare: None,
            }),
            cond: Condvar::new(),
            meta,
        }
    }

    pub(super) fn flags(&self) -> u8 {
        self.flags.load(Ordering::Acquire)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.flags() & DONE != 0
    }

    /// Done, and its done callbacks have run: what waiters wait for.
    pub(crate) fn is_settled(&self) -> bool {
        self.flags() & SETTLED != 0
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.flags() & CANCEL_REQUESTED != 0
    }

    /// Drop a value of this pending's that nobody will read: user code, whose `Drop` may
    /// panic — caught and logged as `what`, with the pending's id and name, never unwound
    /// into the thread that lets go of it.
    pub(super) fn drop_value<V>(&self, value: V, what: &str) {
        if let Some(panic) = crate::unwind::drop_caught(value) {
            tracing::error!(
                pending = self.meta.id(),
                name = %self.meta.name(),
                panic = %panic,
                "{what} panicked in Drop; the panic was caught"
            );
        }
    }

    /// Done with a value (read from the flags alone: no lock).
    pub(crate) fn ended_with_value(&self) -> bool {
        self.flags() & VALUE != 0
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn meta(&self) -> &Metadata {
        &self.meta
    }

    /// Claim the call for running. Lock-free: this compare-and-swap and `cancel`'s
    /// `fetch_or` are ordered on the flags, so either the cancel sees `RUNNING` (and wakes
    /// the runner) or this sees `CANCEL_REQUESTED` (and the call never starts).
    pub(super) fn transition_to_running(&self) -> TransitionToRunning {
        let mut cur = self.flags.load(Ordering::Acquire);
        loop {
            if cur & DONE != 0 {
                return TransitionToRunning::AlreadyDone;
            }
            if cur & CANCEL_REQUESTED != 0 {
                return TransitionToRunning::Cancelled;
            }
            match self.flags.compare_exchange_weak(
                cur,
                cur | RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return TransitionToRunning::Claimed,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Remember the waker of the task running this call, so that `cancel` can wake it.
    /// Returns `false` (storing nothing) if a cancel was already asked: checking the flag
    /// under the same lock that `cancel` takes means no cancel is ever missed.
    pub(crate) fn set_runner(&self, waker: &Waker) -> bool {
        let mut st = self.lock();
        if self.flags() & CANCEL_REQUESTED != 0 {
            return false;
        }
        match &mut st.runner {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        true
    }

    /// Set the outcome while `st` is held; returns the work to do after unlocking, or `None`
    /// if the pending was already done.
    fn finish_locked(&self, st: &mut State, outcome: Outcome) -> Option<Finished> {
        if self.is_done() {
            return None;
        }
        let done = match outcome {
            Outcome::Value => DONE | VALUE,
            _ => DONE,
        };
        st.outcome = outcome;
        st.runner = None;
        drop(st.take_canceller());
        let notify = if st.callbacks.is_empty() {
            self.flags.fetch_or(done | SETTLED, Ordering::AcqRel);
            st.sync_waiters > 0
        } else {
            self.flags.fetch_or(done, Ordering::AcqRel);
            false
        };
        if let Some(r) = st.rare.as_mut() {
            r.free_wakers.clear();
        }
        Some(Finished {
            wakers: std::mem::take(&mut st.wakers),
            callbacks: std::mem::take(&mut st.callbacks),
            notify,
        })
    }

    /// [`finish_locked`](Self::finish_locked), then release the lock and run what the
    /// finish left to do. Returns whether this finish set the outcome.
    fn finish_and_unlock(
        &self,
        mut st: MutexGuard<'_, State>,
        outcome: Outcome,
        view: impl FnOnce() -> AnyPending,
    ) -> bool {
        let fin = self.finish_locked(&mut st, outcome);
        drop(st);
        match fin {
            Some(fin) => {
                fin.run(self, view);
                true
            }
            None => false,
        }
    }

    /// Finish with a value, written to `slot` before `DONE` is published. A cancel asked
    /// before wins: the pending ends cancelled and the value is dropped after the lock.
    pub(super) fn finish_value<T>(
        &self,
        slot: &Mutex<Option<T>>,
        value: T,
        view: impl FnOnce() -> AnyPending,
    ) -> TransitionToDone {
        let mut st = self.lock();
        if self.is_done() {
            return TransitionToDone::AlreadyDone;
        }
        if self.cancel_requested() {
            // A cancel asked before completion wins: `cancelled()` and the outcome agree.
            // The value is dropped after the lock is released and after the waiters were
            // told: its `Drop` is user code, which may panic (caught and logged here) or
            // wait on the thread of one of those waiters.
            let outcome = st.cancelled_outcome();
            let fin = self.finish_locked(&mut st, outcome);
            drop(st);
            if let Some(fin) = fin {
                fin.run(self, view);
            }
            self.drop_value(value, "a value discarded by a cancel");
            return TransitionToDone::CancelWon;
        }
        *lock(slot) = Some(value);
        self.finish_and_unlock(st, Outcome::Value, view);
        TransitionToDone::Finished
    }

    /// Finish with `err` (a failure after a cancel request is a failure).
    pub(super) fn finish_error(
        &self,
        err: Error,
        view: impl FnOnce() -> AnyPending,
    ) -> TransitionToDone {
        let st = self.lock();
        if self.finish_and_unlock(st, Outcome::Error(Box::new(err)), view) {
            TransitionToDone::Finished
        } else {
            TransitionToDone::AlreadyDone
        }
    }

    /// Finish as cancelled with the accumulated message, plus `extra` if no message exists,
    /// then `note` (what went wrong while the call was being given up, such as a panicking
    /// `Drop`) on a line of its own.
    pub(super) fn finish_cancelled_noting(
        &self,
        extra: &str,
        note: Option<&str>,
        view: impl FnOnce() -> AnyPending,
    ) {
        let mut st = self.lock();
        if st.cancel_msg().is_empty() && !extra.is_empty() {
            st.rare().cancel_msg.push_str(extra);
        }
        if let Some(note) = note.filter(|_| !self.is_done()) {
            let msg = &mut st.rare().cancel_msg;
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(note);
        }
        let outcome = st.cancelled_outcome();
        self.finish_and_unlock(st, outcome, view);
    }

    /// Ask for a cancel: add `msg` to the accumulated message, set `CANCEL_REQUESTED`, and
    /// hand the pending to whoever finishes it (see [`CancelResult`]); a canceller is
    /// called after the lock is released.
    pub(super) fn cancel(&self, msg: &str, view: impl FnOnce() -> AnyPending) -> CancelResult {
        let mut st = self.lock();
        if self.flags() & DONE != 0 {
            return CancelResult::AlreadyDone {
                cancelled: st.ended_cancelled(),
            };
        }
        if !msg.is_empty() {
            let rare = st.rare();
            if !rare.cancel_msg.is_empty() {
                rare.cancel_msg.push('\n');
            }
            rare.cancel_msg.push_str(msg);
        }
        // `DONE` cannot change while the lock is held, but `RUNNING` can (the claim is
        // lock-free): what this `fetch_or` returns decides who finishes the pending.
        let flags = self.flags.fetch_or(CANCEL_REQUESTED, Ordering::AcqRel);
        if flags & CANCEL_REQUESTED == 0 {
            tracing::debug!(pending = self.meta.id(), name = %self.meta.name(), message = msg, "cancel requested");
        }
        // Every cancel calls the canceller, with the accumulated message.
        let canceller = st.canceller();
        let result = if flags & RUNNING != 0 {
            let runner = st.runner.take();
            drop(st);
            if let Some(w) = runner {
                w.wake();
            }
            CancelResult::LeftToRunner
        } else if canceller.is_none() {
            let outcome = st.cancelled_outcome();
            self.finish_and_unlock(st, outcome, view);
            CancelResult::FinishedHere
        } else {
            drop(st);
            CancelResult::LeftToProducer
        };
        if let Some(c) = canceller {
            let all = self.lock().cancel_msg().to_owned();
            c(&all);
        }
        result
    }

    /// Install `f` as the canceller, unless done.
    pub(super) fn install_canceller(&self, f: Canceller) -> InstallCanceller {
        let mut st = self.lock();
        if self.is_done() {
            return InstallCanceller::AlreadyDone;
        }
        st.rare().canceller = Some(f);
        if self.flags() & CANCEL_REQUESTED != 0 {
            return InstallCanceller::CancelAlreadyAsked {
                message: st.cancel_msg().to_owned(),
            };
        }
        InstallCanceller::Installed
    }

    /// Register `waker` to be woken at settling, under `key` (the waiter's slot, assigned
    /// on first registration; a later call with the same key replaces its waker).
    pub(super) fn register_waiter(&self, key: &mut Option<usize>, waker: &Waker) -> RegisterWaiter {
        if self.is_settled() {
            return RegisterWaiter::Settled;
        }
        let mut st = self.lock();
        if self.is_settled() {
            return RegisterWaiter::Settled;
        }
        if self.is_done() {
            // Done, callbacks still running: the waiter list was handed to the finisher,
            // so an old key is stale. Register in the late list woken at settling.
            *key = None;
        }
        let slot = match *key {
            Some(0) => &mut st.wakers.first,
            Some(k) => &mut st.wakers.more[k - 1],
            None if st.wakers.first.is_none() => {
                *key = Some(0);
                &mut st.wakers.first
            }
            None => {
                let free = st.rare.as_mut().and_then(|r| r.free_wakers.pop());
                let waiters = &mut st.wakers;
                let i = free.unwrap_or_else(|| {
                    waiters.more.push(None);
                    waiters.more.len() - 1
                });
                *key = Some(i + 1);
                &mut st.wakers.more[i]
            }
        };
        match slot {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        RegisterWaiter::Registered
    }

    /// Give up the slot of a waiter that stops waiting (nothing to do once done: the
    /// waiter list was handed to the finisher).
    pub(super) fn unregister_waiter(&self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            if self.is_done() {
                return;
            }
            let mut st = self.lock();
            if self.is_done() {
                return;
            }
            match k {
                0 => st.wakers.first = None,
                k if k <= st.wakers.more.len() => {
                    st.wakers.more[k - 1] = None;
                    st.rare().free_wakers.push(k - 1);
                }
                _ => {}
            }
        }
    }

    /// The settling transition, after the done callbacks ran: publish `SETTLED`, notify the
    /// synchronous waiters, and return the async waiters that registered while the
    /// callbacks ran, to be woken after the lock.
    fn settle(&self) -> Waiters {
        let (wakers, notify) = {
            let mut st = self.lock();
            self.flags.fetch_or(SETTLED, Ordering::AcqRel);
            (std::mem::take(&mut st.wakers), st.sync_waiters > 0)
        };
        // After the lock, as in `Finished::run`.
        if notify {
            self.cond.notify_all();
        }
        wakers
    }
}
