//! [`Shared<T>`], the one allocation of a pending: the non-generic [`Header`] (`state.rs`)
//! followed by the value slot, behind the [`Erased`] face that views hold. The crate's
//! schedulers make and finish pendings through it; taking and peeking at the outcome read
//! the value slot under the state lock.

use std::sync::Arc;

use super::meta::Metadata;
use super::state::{Header, Outcome, TransitionToRunning};
use super::view::AnyPending;
use crate::error::Error;
use crate::sync::{lock, Mutex};

/// The erased face of a `Shared<T>`.
pub(crate) trait Erased: Send + Sync + 'static {
    fn header(&self) -> &Header;
}

/// One allocation per pending: the header and the value slot.
pub(crate) struct Shared<T> {
    header: Header,
    /// The value slot, behind the value lock (taken under the state lock; see the lock
    /// order in `state.rs`).
    value: Mutex<Option<T>>,
}

impl<T: Send + 'static> Erased for Shared<T> {
    fn header(&self) -> &Header {
        &self.header
    }
}

impl<T> Shared<T> {
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }
}

impl<T: Send + 'static> Shared<T> {
    pub(crate) fn new(meta: Metadata) -> Arc<Self> {
        Arc::new(Shared {
            header: Header::new(meta),
            value: Mutex::new(None),
        })
    }

    pub(crate) fn view(self: &Arc<Self>) -> AnyPending {
        AnyPending::new(self.clone())
    }

    /// Finish with `res`. First completion wins; returns whether this one did.
    pub(crate) fn finish(self: &Arc<Self>, res: Result<T, Error>) -> bool {
        match res {
            Ok(v) => self.header.finish_value(&self.value, v, || self.view()),
            Err(e) => self.header.finish_error(e, || self.view()),
        }
        .won()
    }

    /// Finish a call whose runner saw the cancel request (or was dropped).
    pub(crate) fn finish_cancelled(self: &Arc<Self>, extra: &str) {
        self.finish_cancelled_noting(extra, None)
    }

    /// [`finish_cancelled`](Self::finish_cancelled) with a note on what went wrong while
    /// the call was given up.
    pub(crate) fn finish_cancelled_noting(self: &Arc<Self>, extra: &str, note: Option<&str>) {
        self.header
            .finish_cancelled_noting(extra, note, || self.view())
    }

    /// Claim the call for running. `false` if it must not start: done, or cancelled before
    /// it started (then it is finished here, as cancelled).
    pub(crate) fn try_start(self: &Arc<Self>) -> bool {
        match self.header.transition_to_running() {
            TransitionToRunning::Claimed => true,
            TransitionToRunning::AlreadyDone => false,
            TransitionToRunning::Cancelled => {
                self.finish_cancelled("");
                false
            }
        }
    }

    /// Take the outcome; `None` if not done. A failure is moved out to the owner (so it
    /// can take the function's error back by value); views keep its text.
    pub(super) fn take(&self) -> Option<Result<T, Error>> {
        if !self.header.is_done() {
            return None;
        }
        let mut st = self.header.lock();
        Some(match &mut st.outcome {
            Outcome::Value => lock(&self.value).take().ok_or(Error::Taken),
            Outcome::Error(e) => match &**e {
                Error::Failed(f) => {
                    let text = Error::Failed(f.text_only());
                    Err(std::mem::replace(&mut **e, text))
                }
                other => Err(other.clone()),
            },
            Outcome::Unset => unreachable!("DONE is only set together with an outcome"),
        })
    }

    /// A copy of the outcome; `None` if not done.
    pub(super) fn peek(&self) -> Option<Result<T, Error>>
    where
        T: Clone,
    {
        if !self.header.is_done() {
            return None;
        }
        let st = self.header.lock();
        Some(match &st.outcome {
            Outcome::Value => lock(&self.value).clone().ok_or(Error::Taken),
            Outcome::Error(e) => Err((**e).clone()),
            Outcome::Unset => unreachable!("DONE is only set together with an outcome"),
        })
    }
}

impl<T> Drop for Shared<T> {
    /// The value nobody took (a detached call's result) is dropped by whoever lets go of
    /// the pending last, often a caller's thread: a panicking `Drop` is caught and logged,
    /// never unwound into the caller (regression: it killed the caller's thread).
    fn drop(&mut self) {
        // Taken out first: the value's `Drop` runs after the value lock is released.
        let value = lock(&self.value).take();
        if let Some(value) = value {
            self.header.drop_value(value, "the value of a pending");
        }
    }
}
