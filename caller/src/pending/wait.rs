//! Waiting: the timed wait futures and the synchronous wait with its bounded spin.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{AnyPending, Header, Pending, SETTLED};
use crate::error::Error;
use crate::sync::{lock, spins, Ordering};
use crate::timer::Sleep;

/// How many times a synchronous waiter checks the flag with a CPU spin hint before it
/// starts yielding its time slice, and how many yields follow before it parks. The whole
/// spin is bounded to a few microseconds; on a single core the yields hand the CPU to the
/// thread that will finish the pending instead of burning it.
const SPIN_HINTS: u32 = 64;
const SPIN_YIELDS: u32 = 24;

/// Spin hints are pointless when this thread may only use one core (`taskset`, a cgroup
/// limit): the thread that finishes the pending cannot run while we spin. Then only the
/// yields remain.
fn spin_hints() -> u32 {
    static ONE_CORE: OnceLock<bool> = OnceLock::new();
    let one = *ONE_CORE
        .get_or_init(|| std::thread::available_parallelism().map_or(true, |n| n.get() == 1));
    if one {
        0
    } else {
        spins(SPIN_HINTS)
    }
}

/// Block until `h` is done, or `timeout` passes (`Err(TimedOut)`), or blocking would
/// deadlock (`Err(WouldDeadlock)`).
pub(super) fn wait_done_sync(h: &Header, timeout: Option<Duration>) -> Result<(), Error> {
    if h.is_settled() {
        return Ok(());
    }
    if let Some((id, name)) = h.meta.caller() {
        if crate::rt::loop_running_here(id) {
            return Err(Error::WouldDeadlock {
                caller: name.to_owned(),
            });
        }
    }
    // A done callback waiting on its own pending: the wait ends after the callbacks.
    if h.is_done() && super::settling_here(h) {
        return Err(would_deadlock(h));
    }
    let start = Instant::now();
    // A timeout too long to represent is no timeout.
    let deadline = timeout.and_then(|t| start.checked_add(t));
    if timeout != Some(Duration::ZERO) {
        let hints = spin_hints();
        for i in 0..hints + spins(SPIN_YIELDS) {
            if h.flags.load(Ordering::Acquire) & SETTLED != 0 {
                return Ok(());
            }
            if i < hints {
                crate::sync::spin_loop();
            } else {
                crate::sync::yield_now();
            }
        }
    }
    let mut st = lock(&h.state);
    st.sync_waiters += 1;
    let res = loop {
        if h.is_settled() {
            break Ok(());
        }
        match deadline {
            None => st = h.cond.wait(st).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break Err(Error::TimedOut {
                        after: timeout.unwrap_or_default(),
                    });
                }
                st = h
                    .cond
                    .wait_timeout(st, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    };
    st.sync_waiters -= 1;
    res
}

/// The error of a wait that would wait for itself: named after the pending's caller, or
/// this thread when the pending has none.
fn would_deadlock(h: &Header) -> Error {
    let caller = match h.meta.caller() {
        Some((_, name)) => name.to_owned(),
        None => std::thread::current()
            .name()
            .unwrap_or("this thread")
            .to_owned(),
    };
    Error::WouldDeadlock { caller }
}

/// Whether the call running here (this task's frame) is `view`'s: awaiting it from inside
/// would wait for itself.
pub(super) fn awaits_itself(view: &AnyPending) -> Option<Error> {
    if view.header().is_settled() {
        return None;
    }
    let current = crate::rt::pending_here()?;
    (current == view.id()).then(|| would_deadlock(view.header()))
}

/// The future of [`Pending::wait`]: the outcome, or `Err(TimedOut)` after the timeout.
///
/// Dropped before it finishes, or timed out, it cancels the pending unless the handle is
/// protected.
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a, T: Send + 'static> {
    pending: &'a mut Pending<T>,
    timeout: Option<Duration>,
    sleep: Option<Sleep>,
    finished: bool,
}

impl<'a, T: Send + 'static> Wait<'a, T> {
    pub(super) fn new(pending: &'a mut Pending<T>, timeout: Option<Duration>) -> Self {
        Wait {
            pending,
            timeout,
            sleep: timeout.map(Sleep::new),
            finished: false,
        }
    }
}

impl<T: Send + 'static> Future for Wait<'_, T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(out) = Pin::new(&mut *this.pending).poll(cx) {
            this.finished = true;
            return Poll::Ready(out);
        }
        if let Some(sleep) = &mut this.sleep {
            if Pin::new(sleep).poll(cx).is_ready() {
                this.finished = true;
                let after = this.timeout.unwrap_or_default();
                if !this.pending.protected {
                    this.pending
                        .cancel(format!("a wait timed out after {after:?}"));
                }
                return Poll::Ready(Err(Error::TimedOut { after }));
            }
        }
        Poll::Pending
    }
}

impl<T: Send + 'static> Drop for Wait<'_, T> {
    fn drop(&mut self) {
        if !self.finished && !self.pending.protected && !self.pending.done() {
            self.pending
                .cancel("the wait on this pending was dropped before it finished");
        }
    }
}

/// The future of [`AnyPending::wait_done`]: `Ok(())` once done, or `Err(TimedOut)`.
/// It never cancels the pending.
#[must_use = "futures do nothing unless awaited"]
pub struct WaitDone {
    view: AnyPending,
    key: Option<usize>,
    timeout: Option<Duration>,
    sleep: Option<Sleep>,
}

impl WaitDone {
    pub(super) fn new(view: AnyPending, timeout: Option<Duration>) -> Self {
        WaitDone {
            view,
            key: None,
            timeout,
            sleep: timeout.map(Sleep::new),
        }
    }
}

impl Future for WaitDone {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.key.is_none() {
            if let Some(err) = awaits_itself(&this.view) {
                return Poll::Ready(Err(err));
            }
        }
        if this.view.register(&mut this.key, cx.waker()) {
            this.key = None;
            return Poll::Ready(Ok(()));
        }
        if let Some(sleep) = &mut this.sleep {
            if Pin::new(sleep).poll(cx).is_ready() {
                this.view.unregister(&mut this.key);
                return Poll::Ready(Err(Error::TimedOut {
                    after: this.timeout.unwrap_or_default(),
                }));
            }
        }
        Poll::Pending
    }
}

impl Drop for WaitDone {
    fn drop(&mut self) {
        self.view.unregister(&mut self.key);
    }
}

impl std::fmt::Debug for WaitDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitDone")
            .field("pending", &self.view)
            .finish()
    }
}

impl<T: Send + 'static> std::fmt::Debug for Wait<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("pending", &self.pending)
            .field("timeout", &self.timeout)
            .finish()
    }
}
