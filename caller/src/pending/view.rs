//! [`AnyPending`], the cloneable, type-erased view of a pending, and [`PendingState`], what
//! it reports: inspecting, cancelling, failing, installing a canceller, and waiting without
//! taking the value. Its callback methods are in `callbacks.rs`, its metadata methods in
//! `meta.rs`; every change of state goes through a transition of `state.rs`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::task::Waker;
use std::time::Duration;

use super::shared::Erased;
use super::state::{
    CancelResult, Canceller, Header, InstallCanceller, Outcome, RegisterWaiter, CANCEL_REQUESTED,
    DONE, RUNNING,
};
use super::wait::{self, WaitDone};
use crate::error::Error;

/// A cheap, cloneable, type-erased view of a pending.
///
/// It can wait, cancel and inspect, but not take the value; trackers, groups, `wait` and
/// `as_completed` hold these. Two views are equal when they view the same pending.
/// Waiting on a view never cancels the pending.
///
/// ```
/// use std::time::Duration;
/// let p = caller::Pending::<u32>::new();
/// let view = p.any();
/// assert!(!view.done());
/// view.cancel("not needed");
/// assert!(view.done() && view.cancelled());
/// assert!(view.wait_done_sync(Some(Duration::ZERO)).is_ok());
/// ```
#[derive(Clone)]
pub struct AnyPending {
    inner: Arc<dyn Erased>,
}

/// What a done pending ended with, as seen through a view.
#[derive(Clone, Debug)]
pub enum PendingState {
    /// Not done yet (`cancel_requested` says whether a cancel was asked).
    Running {
        /// `cancel` was called and the work has not stopped yet.
        cancel_requested: bool,
    },
    /// Done with a value (which may already have been taken by its owner).
    Value,
    /// Done without a value: cancelled, panicked or failed.
    Error(Error),
}

impl AnyPending {
    pub(super) fn new(inner: Arc<dyn Erased>) -> Self {
        AnyPending { inner }
    }

    pub(crate) fn header(&self) -> &Header {
        self.inner.header()
    }

    /// Done with a value (not failed, not cancelled), read without the state lock.
    pub(crate) fn ended_with_value(&self) -> bool {
        self.header().ended_with_value()
    }

    /// `true` once the pending holds its outcome. Never goes back to `false`.
    ///
    /// `done()` turns true just before the done callbacks run; the waits
    /// ([`wait_done`](Self::wait_done), `.await`, `wait_sync`) return only after them.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// assert!(!p.done());
    /// p.set_result(1);
    /// assert!(p.done());
    /// ```
    pub fn done(&self) -> bool {
        self.header().is_done()
    }

    /// `true` if a cancel was asked (it may be true before [`done`](Self::done): the work
    /// has not stopped yet), or the pending ended cancelled.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// p.cancel("no");
    /// assert!(p.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        let flags = self.header().flags();
        if flags & DONE == 0 {
            return flags & CANCEL_REQUESTED != 0;
        }
        // Done: the outcome decides, so the two always agree (a failure that came after a
        // cancel request is a failure).
        self.header().lock().ended_cancelled()
    }

    /// Ask the pending to cancel, from any thread, any number of times.
    ///
    /// Messages accumulate, newline-joined (an empty message adds nothing). Returns whether
    /// the pending is (now) cancelled: `false` if it already finished otherwise.
    ///
    /// - Not started yet: it never starts; done at once.
    /// - An async function running: its future is dropped at its next suspension point,
    ///   on its own thread, then the pending is done.
    /// - A sync function running: it cannot be interrupted. It is marked cancelled (it can
    ///   check [`Caller::current_pending`](crate::Caller::current_pending)) and is done,
    ///   with its value discarded, when it returns.
    /// - Made by hand with a canceller ([`set_canceller`](Self::set_canceller)): the
    ///   canceller is called and the pending is done when its producer finishes it.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.cancel("first"));
    /// assert!(p.cancel("second"));
    /// assert_eq!(p.error().unwrap().cancel_message(), Some("first"));
    /// ```
    pub fn cancel(&self, msg: impl AsRef<str>) -> bool {
        match self.header().cancel(msg.as_ref(), || self.clone()) {
            CancelResult::AlreadyDone { cancelled } => cancelled,
            CancelResult::FinishedHere
            | CancelResult::LeftToRunner
            | CancelResult::LeftToProducer => true,
        }
    }

    /// The error the pending ended with, if it is done without a value.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.error().is_none());
    /// p.cancel("x");
    /// assert!(p.error().unwrap().is_cancelled());
    /// ```
    pub fn error(&self) -> Option<Error> {
        match self.state() {
            PendingState::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The current state.
    ///
    /// ```
    /// use caller::PendingState;
    /// let p = caller::Pending::new();
    /// p.set_result(5);
    /// assert!(matches!(p.state(), PendingState::Value));
    /// ```
    pub fn state(&self) -> PendingState {
        let h = self.header();
        let st = h.lock();
        match &st.outcome {
            Outcome::Unset => PendingState::Running {
                cancel_requested: h.flags() & CANCEL_REQUESTED != 0,
            },
            Outcome::Value => PendingState::Value,
            Outcome::Error(e) => PendingState::Error((**e).clone()),
        }
    }

    /// Finish the pending with an error (the low-level counterpart of async-kernel's
    /// `set_exception`). First completion wins; returns whether this one did.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.set_error(caller::Error::failed("bad input")));
    /// assert!(!p.set_error(caller::Error::failed("too late")));
    /// ```
    pub fn set_error(&self, err: Error) -> bool {
        self.header().finish_error(err, || self.clone()).won()
    }

    /// Install a function called, on the cancelling thread, by every
    /// [`cancel`](Self::cancel) while the pending is not done, with the accumulated
    /// message (so it may be called more than once); called at once if a cancel was
    /// already asked. With a canceller, `cancel` leaves finishing the pending to its
    /// producer; a value the producer sets after a cancel was asked is discarded and the
    /// outcome is cancelled.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let p = caller::Pending::<u8>::new();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// p.set_canceller(move |msg| s.lock().unwrap().push(msg.to_owned()));
    /// p.cancel("stop");
    /// p.cancel("now");
    /// assert_eq!(*seen.lock().unwrap(), ["stop", "stop\nnow"]);
    /// assert!(p.cancelled() && !p.done());
    /// p.set_result(1); // the producer finishes: the cancel wins
    /// assert!(p.done() && p.cancelled());
    /// ```
    pub fn set_canceller(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        let f: Canceller = Arc::new(f);
        match self.header().install_canceller(f.clone()) {
            InstallCanceller::CancelAlreadyAsked { message } => f(&message),
            InstallCanceller::AlreadyDone | InstallCanceller::Installed => {}
        }
    }

    /// Wait until the pending is done, without taking its value and without cancelling it.
    /// With a timeout, the future yields `Err(Error::TimedOut)` when it expires.
    /// Works on any executor. Awaited inside the very call this pending is for, it yields
    /// `Err(Error::WouldDeadlock)` at once rather than wait for itself.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// let view = p.any();
    /// p.set_result(1);
    /// futures::executor::block_on(view.wait_done(None)).unwrap();
    /// ```
    pub fn wait_done(&self, timeout: Option<Duration>) -> WaitDone {
        WaitDone::new(self.clone(), timeout)
    }

    /// Block this thread until the pending is done (or `timeout` passes), without taking
    /// its value and without cancelling it.
    ///
    /// Returns `Err(Error::WouldDeadlock)` at once, rather than hang, when called on the
    /// thread of the caller that must complete the pending, or from one of the pending's
    /// own done callbacks.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = caller::Pending::<()>::new();
    /// let err = p.wait_done_sync(Some(Duration::from_millis(1))).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn wait_done_sync(&self, timeout: Option<Duration>) -> Result<(), Error> {
        wait::wait_done_sync(self.header(), timeout)
    }

    /// Register `waker` to be woken when done. Returns `true` if already done.
    pub(crate) fn register(&self, key: &mut Option<usize>, waker: &Waker) -> bool {
        match self.header().register_waiter(key, waker) {
            RegisterWaiter::Settled => true,
            RegisterWaiter::Registered => false,
        }
    }

    pub(crate) fn unregister(&self, key: &mut Option<usize>) {
        self.header().unregister_waiter(key)
    }

    /// The fields `Debug` shows of a pending, read under its state lock.
    pub(super) fn fmt_state(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        let h = self.header();
        let st = h.lock();
        let state: Cow<'_, str> = match &st.outcome {
            Outcome::Unset if h.flags() & CANCEL_REQUESTED != 0 => "cancel requested".into(),
            Outcome::Unset if h.flags() & RUNNING != 0 => "running".into(),
            Outcome::Unset => "scheduled".into(),
            Outcome::Value => "done: value".into(),
            Outcome::Error(e) => format!("done: {e}").into(),
        };
        let meta = &h.meta;
        f.field("id", &meta.id())
            .field("name", &meta.name())
            .field("caller", &meta.caller().map(|c| c.1))
            .field("state", &state)
            .field("age", &meta.created().elapsed());
        if !st.user_meta().is_empty() {
            f.field("meta", &st.user_meta());
        }
    }
}

impl PartialEq for AnyPending {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}
impl Eq for AnyPending {}
impl std::hash::Hash for AnyPending {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl fmt::Debug for AnyPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AnyPending");
        self.fmt_state(&mut d);
        d.finish()
    }
}
