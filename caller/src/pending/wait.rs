//! Waiting: the timed wait futures and the synchronous wait with its bounded, adaptive
//! spin.

use std::cell::Cell;
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
/// The shortest spin (in checks) a waiter makes when it spins at all.
const SPIN_MIN: u32 = 8;
/// While a thread's spin is off, one wait in this many spins `SPIN_MIN` checks anyway, to
/// find out whether the answers have become quick again.
const SPIN_PROBE_EVERY: u32 = 16;

thread_local! {
    /// This thread's spin budget in checks (its first wait spins the whole bound), and
    /// how many waits it has made since the spin switched off.
    static WAIT_SPIN: Cell<(u32, u32)> = const { Cell::new((u32::MAX, 0)) };
}

/// The next spin budget of a thread, after a wait that spun `budget` checks and was
/// answered during the spin (`caught`) or only after the thread went to sleep. A spin pays
/// only when the answer comes within it: one that caught its answer doubles (up to `max`,
/// the whole bound), one that did not halves, down to zero: a thread whose answers come
/// later than any spin (a loop that has to be woken first, calls spaced out, a machine
/// whose idle cores wake slowly) stops spinning for nothing. As the loop's own spin
/// (`caller/loops/spin.rs`), after the idea of KVM's halt polling.
fn next_spin(budget: u32, caught: bool, max: u32) -> u32 {
    if caught {
        (budget.saturating_mul(2)).clamp(SPIN_MIN.min(max), max)
    } else if budget / 2 < SPIN_MIN {
        0
    } else {
        budget / 2
    }
}

/// How many checks this wait spins: the thread's budget, or a probe while it is off.
fn spin_budget(max: u32) -> u32 {
    if cfg!(all(test, caller_loom)) {
        // Models replay one execution many times: no state carried between them.
        return max;
    }
    WAIT_SPIN.with(|c| {
        let (budget, off) = c.get();
        match budget.min(max) {
            0 => {
                let off = off.wrapping_add(1);
                c.set((0, off));
                if off % SPIN_PROBE_EVERY == 0 {
                    SPIN_MIN.min(max)
                } else {
                    0
                }
            }
            b => b,
        }
    })
}

/// Adapt this thread's budget after a wait that spun `spun` checks.
fn spin_done(spun: u32, caught: bool, max: u32) {
    if cfg!(all(test, caller_loom)) || spun == 0 {
        return;
    }
    WAIT_SPIN.with(|c| {
        let (_, off) = c.get();
        let next = next_spin(spun, caught, max);
        c.set((next, if next == 0 { off } else { 0 }));
    });
}

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
        let max = hints + spins(SPIN_YIELDS);
        let budget = spin_budget(max);
        for i in 0..budget {
            if h.flags.load(Ordering::Acquire) & SETTLED != 0 {
                spin_done(budget, true, max);
                return Ok(());
            }
            if i < hints {
                crate::sync::spin_loop();
            } else {
                crate::sync::yield_now();
            }
        }
        spin_done(budget, false, max);
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

#[cfg(all(test, not(caller_loom)))]
mod spin_tests {
    use super::{next_spin, SPIN_HINTS, SPIN_MIN, SPIN_YIELDS};

    const MAX: u32 = SPIN_HINTS + SPIN_YIELDS;

    #[test]
    fn a_wait_answered_during_its_spin_keeps_the_whole_spin() {
        assert_eq!(next_spin(MAX, true, MAX), MAX);
        // A probe that caught its answer grows back to the bound in a few waits.
        let mut b = SPIN_MIN;
        for _ in 0..8 {
            b = next_spin(b, true, MAX);
        }
        assert_eq!(b, MAX, "the spin did not grow back after quick answers");
    }

    #[test]
    fn waits_answered_only_after_sleeping_switch_the_spin_off() {
        let mut b = MAX;
        let mut waits = 0;
        while b > 0 {
            b = next_spin(b, false, MAX);
            waits += 1;
            assert!(waits <= 8, "the spin stayed on after {waits} slow answers");
        }
        // And a failed probe leaves it off.
        assert_eq!(next_spin(SPIN_MIN, false, MAX), 0);
    }

    #[test]
    fn on_one_core_the_spin_is_its_yields_only() {
        // With no spin hints (one core) the bound is the yields alone.
        assert_eq!(next_spin(SPIN_YIELDS, true, SPIN_YIELDS), SPIN_YIELDS);
        assert_eq!(next_spin(1, true, SPIN_YIELDS), SPIN_MIN);
    }
}
