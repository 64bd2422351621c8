//! The owner's handles: [`Pending<T>`], which awaits, waits and takes the value (once) and
//! dereferences to its [`AnyPending`] view for the rest, and [`Resolver<T>`], which
//! finishes a pending made by hand from anywhere. What a dropped, timed-out or abandoned
//! wait does to the pending (cancel it, unless protected) is decided here.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::meta::Metadata;
use super::shared::Shared;
use super::state::RegisterWaiter;
use super::view::AnyPending;
use super::wait::{self, Wait};
use crate::error::Error;

/// A result that is not there yet: the handle returned by every scheduling method.
///
/// `Pending<T>` is the *owner*: it can take the value (once). It dereferences to
/// [`AnyPending`], its cloneable type-erased view, for everything else (`cancel`, `done`,
/// callbacks, metadata).
///
/// # Waiting
/// - `.await` it (or `&mut pending`) from any executor: the output is `Result<T, Error>`.
/// - [`wait`](Self::wait) with a timeout, [`wait_sync`](Self::wait_sync) from a plain
///   thread.
///
/// # Cancellation
/// - [`cancel`](AnyPending::cancel) from anywhere; see there for what it does to the work.
/// - A wait that ends without the outcome — a timeout, or a `.await` abandoned by
///   `select!`, a timeout combinator or scope exit (the handle is dropped after it was
///   polled) — **cancels the pending**, unless the handle is
///   [protected](Self::protect).
/// - Dropping a handle that was never waited on only *detaches*: the work keeps running
///   (fire and forget).
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let worker = caller::Caller::builder().name("doc-pending").spawn()?;
/// let mut p = worker.call_soon(|| 6 * 7);
/// assert_eq!(p.wait_sync(None)?, 42);
/// # worker.stop(true); Ok(()) }
/// ```
#[must_use = "a dropped Pending detaches: the call keeps running. Await it, wait on it or cancel it"]
pub struct Pending<T> {
    shared: Arc<Shared<T>>,
    any: AnyPending,
    waiter: Option<usize>,
    polled: bool,
    /// Read by [`Wait`], whose timeout and drop cancel only an unprotected handle.
    pub(super) protected: bool,
    /// The outcome was given to a poll ([`FusedFuture`](futures::future::FusedFuture)).
    terminated: bool,
}

impl<T: Send + 'static> Pending<T> {
    /// A pending made by hand, finished with [`set_result`](Self::set_result) or
    /// [`set_error`](AnyPending::set_error) (see [`resolver`](Self::resolver) to finish it
    /// from elsewhere).
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// p.set_result("hi");
    /// assert_eq!(futures::executor::block_on(p).unwrap(), "hi");
    /// ```
    pub fn new() -> Self {
        Self::from_shared(Shared::new(Metadata::new("pending".into(), None)))
    }

    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        let any = shared.view();
        Pending {
            shared,
            any,
            waiter: None,
            polled: false,
            protected: false,
            terminated: false,
        }
    }

    /// The type-erased view of this pending (cheap to clone).
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert_eq!(p.any().id(), p.id());
    /// ```
    pub fn any(&self) -> AnyPending {
        self.any.clone()
    }

    /// Finish with `value`. First completion wins; returns whether this one did.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// assert!(p.set_result(1));
    /// assert!(!p.set_result(2));
    /// assert_eq!(p.wait_sync(None).unwrap(), 1);
    /// ```
    pub fn set_result(&self, value: T) -> bool {
        self.shared.finish(Ok(value))
    }

    /// Finish as cancelled with the accumulated message (or `reason` if there is none).
    pub(crate) fn shared_finish_cancelled(&self, reason: &str) {
        self.shared.finish_cancelled(reason);
    }

    /// A cloneable handle that can finish this pending from any thread.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// let r = p.resolver();
    /// std::thread::spawn(move || r.set_result(7));
    /// assert_eq!(p.wait_sync(None).unwrap(), 7);
    /// ```
    pub fn resolver(&self) -> Resolver<T> {
        Resolver {
            shared: self.shared.clone(),
        }
    }

    /// Protect this handle: a timed-out or abandoned wait no longer cancels the pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut p = caller::Pending::<()>::new().protect();
    /// assert!(p.wait_sync(Some(Duration::from_millis(1))).unwrap_err().is_timeout());
    /// assert!(!p.cancelled());
    /// ```
    pub fn protect(mut self) -> Self {
        self.protected = true;
        self
    }

    /// Set or clear protection (see [`protect`](Self::protect)).
    pub fn set_protected(&mut self, protected: bool) {
        self.protected = protected;
    }

    /// Whether this handle is protected.
    pub fn is_protected(&self) -> bool {
        self.protected
    }

    /// Take the outcome if the pending is done, without waiting.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// assert!(p.try_take().is_none());
    /// p.set_result(3);
    /// assert_eq!(p.try_take().unwrap().unwrap(), 3);
    /// assert!(matches!(p.try_take(), Some(Err(caller::Error::Taken))));
    /// ```
    pub fn try_take(&mut self) -> Option<Result<T, Error>> {
        self.shared.take()
    }

    /// A copy of the outcome if done, leaving the value in place (for `T: Clone`).
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// p.set_result(String::from("shared"));
    /// assert_eq!(p.peek().unwrap().unwrap(), "shared");
    /// assert_eq!(p.peek().unwrap().unwrap(), "shared");
    /// ```
    pub fn peek(&self) -> Option<Result<T, Error>>
    where
        T: Clone,
    {
        self.shared.peek()
    }

    /// Wait for the outcome, with an optional timeout, from any executor.
    ///
    /// On timeout the pending is cancelled unless this handle is protected, and the future
    /// yields `Err(Error::TimedOut)`. Dropping the future before it finishes cancels the
    /// pending too, unless protected.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut p = caller::Pending::<()>::new();
    /// let res = futures::executor::block_on(p.wait(Some(Duration::from_millis(1))));
    /// assert!(res.unwrap_err().is_timeout());
    /// assert!(p.cancelled());
    /// ```
    pub fn wait(&mut self, timeout: Option<Duration>) -> Wait<'_, T> {
        Wait::new(self, timeout)
    }

    /// Block this thread until the outcome is there (or `timeout` passes).
    ///
    /// On timeout the pending is cancelled unless protected, and `Err(Error::TimedOut)` is
    /// returned. Called on the thread of the caller that must run the pending (so that
    /// blocking would deadlock) it returns `Err(Error::WouldDeadlock)` at once. A short,
    /// bounded spin precedes parking, so that quick cross-thread round trips avoid the cost
    /// of waking a sleeping thread.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// p.set_result(1);
    /// assert_eq!(p.wait_sync(None).unwrap(), 1);
    /// ```
    pub fn wait_sync(&mut self, timeout: Option<Duration>) -> Result<T, Error> {
        match wait::wait_done_sync(self.shared.header(), timeout) {
            Ok(()) => self.shared.take().expect("done"),
            Err(e) => {
                if e.is_timeout() && !self.protected {
                    // Only a wait with a timeout times out.
                    let after = timeout.unwrap_or_default();
                    self.any
                        .cancel(format!("a synchronous wait timed out after {after:?}"));
                }
                Err(e)
            }
        }
    }
}

impl<T: Send + 'static> Default for Pending<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::ops::Deref for Pending<T> {
    type Target = AnyPending;

    fn deref(&self) -> &AnyPending {
        &self.any
    }
}

impl<T: Send + 'static> Future for Pending<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.waiter.is_none() {
            // Refused before it counts as a wait: dropping the handle then only detaches.
            if let Some(err) = wait::awaits_itself(&this.any) {
                return Poll::Ready(Err(err));
            }
        }
        this.polled = true;
        let mut waiter = this.waiter.take();
        let registered = this.any.header().register_waiter(&mut waiter, cx.waker());
        this.waiter = waiter;
        match registered {
            RegisterWaiter::Settled => {
                this.waiter = None;
                this.terminated = true;
                Poll::Ready(this.shared.take().expect("done"))
            }
            RegisterWaiter::Registered => Poll::Pending,
        }
    }
}

/// Done once it has given its outcome to a poll: `futures::select!` then skips it.
impl<T: Send + 'static> futures::future::FusedFuture for Pending<T> {
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        self.any.unregister(&mut self.waiter);
        if self.polled && !self.protected && !self.any.done() {
            self.any
                .cancel("the wait on this pending was dropped before it finished");
        }
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pending");
        self.any.fmt_state(&mut d);
        d.field("protected", &self.protected);
        d.finish()
    }
}

/// A cloneable handle that finishes a [`Pending`] made by hand; see
/// [`Pending::resolver`].
pub struct Resolver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Resolver<T> {
    fn clone(&self) -> Self {
        Resolver {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> Resolver<T> {
    /// Finish with `value`; returns whether this completion won.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// assert!(p.resolver().set_result(1));
    /// ```
    pub fn set_result(&self, value: T) -> bool {
        self.shared.finish(Ok(value))
    }

    /// Finish with `err`; returns whether this completion won.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.resolver().set_error(caller::Error::failed("no")));
    /// ```
    pub fn set_error(&self, err: Error) -> bool {
        self.shared.finish(Err(err))
    }

    /// The view of the pending this resolver finishes (to check `cancelled()`, or set a
    /// canceller).
    pub fn any(&self) -> AnyPending {
        self.shared.view()
    }
}

impl<T> fmt::Debug for Resolver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("pending", &self.shared.header().meta().id())
            .finish()
    }
}
