//! The adaptive spin before a tokio loop parks, and the waker that makes it complete.
//!
//! Waking a thread that sleeps costs a system call on the waking side and, on many
//! machines, tens of microseconds before the sleeper runs again. When calls arrive one
//! right after another (a round trip with a thread that spins while it waits, a queue fed
//! in bursts), the loop is better off spinning for a few microseconds before it parks. A
//! spin pays only when the next wake-up comes within about what a park and a wake-up cost
//! in CPU; everywhere else it burns a core for nothing. So the spin is:
//!
//! - **short and bounded**: at most `SPIN_MAX`, then the loop parks as before;
//! - **adaptive**, as the halt polling of KVM, on the *whole* idle gap (spin plus sleep):
//!   the budget starts at `SPIN_START`; when the loop parked and the gap from going idle
//!   to being woken (the waker's call, not the loop's own slow wake-up) was within
//!   `SPIN_MAX` (a longer spin, still within the bound, would have caught the wake-up),
//!   the budget doubles; when the gap was longer, it halves, down to zero.
//!   Calls spaced out (a requester that sleeps, or whose own wake-up is slow, as a tokio
//!   task parked on another idle core) therefore switch the spin off after a few calls;
//! - **yielding**: between its checks it gives up the core (`sched_yield`), so that a
//!   thread the loop just woke, which the kernel may have queued on this very core,
//!   runs at once instead of waiting for the spin to end;
//! - **off on one core** (`available_parallelism() == 1`, which honours `taskset`): there
//!   the thread that would wake us cannot run while we spin;
//! - **complete**: it watches every wake-up of the loop (the inbox, a timer or I/O task, a
//!   pending from another thread), not only the inbox, because the loop's own future is
//!   polled with a [`LoopWake`] waker. While the loop spins, a wake-up only sets a flag,
//!   so the waking thread makes no system call either.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, Ordering};

/// The longest the loop spins before it parks: about what parking and being woken cost
/// the two threads in CPU time, so that a spin that catches its wake-up never costs more
/// than the park it saves.
const SPIN_MAX: Duration = Duration::from_micros(10);
/// The first budget, and the smallest nonzero one.
const SPIN_START: Duration = Duration::from_micros(2);
/// CPU spin hints between two checks of the clock (and two yields).
const SPIN_HINTS: u32 = 16;

/// The next spin budget after the loop parked, given the whole idle gap (ns, from the
/// start of the spin to the moment another thread woke the loop, or to the loop's
/// waking up when nothing else did).
fn next_budget(budget: u64, gap: u64) -> u64 {
    let (start, max) = (SPIN_START.as_nanos() as u64, SPIN_MAX.as_nanos() as u64);
    if gap <= max {
        // A longer spin, still within the bound, would have caught this wake-up.
        (budget * 2).clamp(start, max)
    } else if budget / 2 < start {
        0
    } else {
        budget / 2
    }
}

/// The waker the loop's future is polled with: it records every wake-up, and forwards it
/// to the runtime unless the loop is spinning (then the spinner forwards it itself).
pub(super) struct LoopWake {
    /// Set by a wake-up, cleared when the loop's future is polled (as tokio's own flag).
    woken: AtomicBool,
    spinning: AtomicBool,
    /// The runtime's waker. It is the same for every poll of one runtime, so it is kept
    /// in a `OnceLock` and read without a lock; should it ever change, `changed` holds
    /// the new one and `use_changed` says so.
    runtime: OnceLock<Waker>,
    changed: Mutex<Option<Waker>>,
    use_changed: AtomicBool,
    /// When another thread last woke the parked loop (ns since `epoch`, 0: not since the
    /// loop went idle): the spin judges the gap up to the wake-up, not up to when the
    /// loop ran again, which adds the loop's own wake-up latency.
    woke_at: AtomicU64,
    epoch: Instant,
}

impl LoopWake {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(LoopWake {
            woken: AtomicBool::new(false),
            spinning: AtomicBool::new(false),
            runtime: OnceLock::new(),
            changed: Mutex::new(None),
            use_changed: AtomicBool::new(false),
            woke_at: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Nanoseconds since `epoch`, never 0.
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64 + 1
    }

    /// Remember the runtime's waker (called by the loop's thread when it differs from the
    /// one it last saw).
    fn set_runtime(&self, waker: &Waker) {
        match self.runtime.get() {
            None => {
                let _ = self.runtime.set(waker.clone());
            }
            Some(w) if same_waker(w, waker) && !self.use_changed.load(Ordering::Relaxed) => {}
            Some(_) => {
                *lock(&self.changed) = Some(waker.clone());
                self.use_changed.store(true, Ordering::Release);
            }
        }
    }

    /// Mark this thread as the one whose loop this is, until the guard is dropped: its
    /// own wake-ups need no flag (see `wake_by_ref`).
    pub(super) fn mark_thread(self: &Arc<Self>) -> impl Drop {
        struct Restore(usize);
        impl Drop for Restore {
            fn drop(&mut self) {
                ON_LOOP.with(|l| l.set(self.0));
            }
        }
        Restore(ON_LOOP.with(|l| l.replace(Arc::as_ptr(self) as usize)))
    }

    #[inline]
    fn forward(&self) {
        if self.use_changed.load(Ordering::Acquire) {
            // Wake outside the lock: the wake-up may switch to the loop's thread at once.
            let changed = lock(&self.changed).clone();
            if let Some(w) = changed {
                w.wake();
            }
        } else if let Some(w) = self.runtime.get() {
            w.wake_by_ref();
        }
    }
}

impl Wake for LoopWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if ON_LOOP.with(Cell::get) == Arc::as_ptr(self) as usize {
            // A wake-up from the loop's own thread happens while the loop runs, never
            // while it spins: the runtime's own flag is enough, and no park follows.
            self.forward();
            return;
        }
        // Only the first wake-up since the last poll needs forwarding: it either reached
        // the runtime, or the spinner saw it and forwards it when it stops spinning.
        if !self.woken.swap(true, Ordering::SeqCst) && !self.spinning.load(Ordering::SeqCst) {
            // The loop is (or is about to be) parked: note when, for the spin's budget.
            self.woke_at.store(self.now_ns(), Ordering::Relaxed);
            self.forward();
        }
    }
}

thread_local! {
    /// The [`LoopWake`] of the loop running on this thread (its address), or 0.
    static ON_LOOP: Cell<usize> = const { Cell::new(0) };
}

/// Whether two wakers wake the same thing. `Waker::will_wake` also compares vtable
/// addresses, which differ between codegen units for tokio's runtime waker (its
/// `waker_ref` and its clones): it would say "no" at every poll.
fn same_waker(a: &Waker, b: &Waker) -> bool {
    a.data() == b.data()
}

/// Polls `fut` with the [`LoopWake`] waker.
pub(super) struct Watched<F> {
    fut: F,
    wake: Arc<LoopWake>,
    waker: Waker,
    /// The runtime's waker last handed to `wake`.
    seen: Option<Waker>,
}

impl<F> Watched<F> {
    pub(super) fn new(fut: F, wake: &Arc<LoopWake>) -> Self {
        Watched {
            fut,
            wake: wake.clone(),
            waker: Waker::from(wake.clone()),
            seen: None,
        }
    }
}

impl<F: Future + Unpin> Future for Watched<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        if !this
            .seen
            .as_ref()
            .is_some_and(|w| same_waker(w, cx.waker()))
        {
            this.wake.set_runtime(cx.waker());
            this.seen = Some(cx.waker().clone());
        }
        // Wake-ups from here on are new work for the next park to notice. The swap
        // acquires what the wakers published before their wake-up.
        if this.wake.woken.load(Ordering::Relaxed) {
            this.wake.woken.swap(false, Ordering::AcqRel);
        }
        Pin::new(&mut this.fut).poll(&mut Context::from_waker(&this.waker))
    }
}

/// The adaptive spin, run by the runtime's park hooks on the loop's thread.
pub(super) struct Spin {
    /// Weak: see `build_runtime`.
    wake: Weak<LoopWake>,
    enabled: bool,
    /// The current budget in nanoseconds (only the loop's thread touches these).
    pub(super) budget_ns: AtomicU64,
    /// When the loop went idle before a park (ns since the `LoopWake`'s epoch), or 0: set
    /// when a spin found nothing (or there was no spin) and the loop parks.
    idle_since: AtomicU64,
}

impl Spin {
    pub(super) fn new(wake: Weak<LoopWake>) -> Self {
        Spin {
            wake,
            enabled: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
            budget_ns: AtomicU64::new(SPIN_START.as_nanos() as u64),
            idle_since: AtomicU64::new(0),
        }
    }

    /// Called when the runtime has nothing to run and is about to park.
    pub(super) fn before_park(&self) {
        self.idle_since.store(0, Ordering::Relaxed);
        if !self.enabled {
            return;
        }
        // The loop holds `wake` while it runs; parks after it ended need no spin.
        let Some(wake) = self.wake.upgrade() else {
            return;
        };
        if wake.woken.load(Ordering::SeqCst) {
            return;
        }
        let idle_since = wake.now_ns();
        wake.woke_at.store(0, Ordering::Relaxed);
        let budget = self.budget_ns.load(Ordering::Relaxed);
        if budget > 0 {
            let start = Instant::now();
            wake.spinning.store(true, Ordering::SeqCst);
            let budget = Duration::from_nanos(budget);
            'spin: loop {
                for _ in 0..crate::sync::spins(SPIN_HINTS) {
                    if wake.woken.load(Ordering::Acquire) {
                        break 'spin;
                    }
                    crate::sync::spin_loop();
                }
                if crate::sync::spin_expired(start, budget) {
                    break;
                }
                // Let a thread queued on this core (often the one the loop just woke)
                // run now rather than after the spin.
                crate::sync::yield_now();
            }
            wake.spinning.store(false, Ordering::SeqCst);
            // A wake-up seen while spinning (or racing with the end of the spin) was not
            // forwarded by the waker: forward it here, on the loop's thread (no syscall).
            if wake.woken.load(Ordering::SeqCst) {
                wake.forward();
                return;
            }
        }
        self.idle_since.store(idle_since, Ordering::Relaxed);
    }

    /// Called when the runtime wakes from a park: adapt the budget to the whole idle gap.
    pub(super) fn after_unpark(&self) {
        let idle_since = self.idle_since.swap(0, Ordering::Relaxed);
        if idle_since == 0 {
            return;
        }
        let Some(wake) = self.wake.upgrade() else {
            return;
        };
        // Up to the wake-up by another thread if there was one since the loop went idle,
        // else (a timer, I/O) up to now.
        let woke_at = wake.woke_at.swap(0, Ordering::Relaxed);
        let end = if woke_at >= idle_since {
            woke_at
        } else {
            wake.now_ns()
        };
        let gap = end.saturating_sub(idle_since);
        let budget = self.budget_ns.load(Ordering::Relaxed);
        self.budget_ns
            .store(next_budget(budget, gap), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod spin_tests {
    use super::{next_budget, SPIN_MAX, SPIN_START};

    const US: u64 = 1_000;

    /// Budgets after `parks` parks, each woken `after` the loop went idle (the gap covers
    /// the spin as well as the sleep).
    fn settle(mut budget: u64, parks: usize, gap: impl Fn(u64) -> u64) -> u64 {
        for _ in 0..parks {
            budget = next_budget(budget, gap(budget));
        }
        budget
    }

    #[test]
    fn a_spin_that_cannot_catch_slow_wake_ups_switches_off() {
        // Each wake-up comes 15 µs after the loop went idle (a requester parked on another
        // idle core): a spin within the bound gives up first, then the loop sleeps a few
        // microseconds. Counting only that sleep would keep the spin on for ever.
        let max = SPIN_MAX.as_nanos() as u64;
        let start = SPIN_START.as_nanos() as u64;
        assert_eq!(settle(start, 8, |_| max + 5 * US), 0, "the spin stayed on");
        // And it stays off.
        assert_eq!(next_budget(0, max + 5 * US), 0);
    }

    #[test]
    fn spaced_out_calls_switch_the_spin_off() {
        let max = SPIN_MAX.as_nanos() as u64;
        for period in [200 * US, 2_000 * US] {
            assert_eq!(settle(max, 8, |_| period), 0, "spin on at {period} ns");
        }
    }

    #[test]
    fn quick_wake_ups_keep_the_spin_within_its_bound() {
        let max = SPIN_MAX.as_nanos() as u64;
        let b = settle(0, 8, |_| 3 * US);
        assert!(b > 0, "the spin stayed off for wake-ups 3 µs apart");
        assert!(b <= max, "the spin outgrew its bound: {b} ns");
    }
}
