//! The loop that runs on a caller's thread, and the inbox that feeds it.
//!
//! The inbox is a mutex-guarded queue with a `closed` flag: a push either lands before
//! the close (and the loop runs or refuses it) or is handed back to the pusher (which
//! refuses it), so no call is ever lost between the two. The loop takes the whole queue
//! at once, then runs each message in order: sync calls inline, async calls spawned on
//! the `LocalSet`. Inline work first waits until every async call spawned before it has
//! been polled once, so calls from one thread *start* in the order they were scheduled.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::{registry, Caller, CallerState};
use crate::context::set_loop;
use crate::error::Error;
use crate::job::{unstarted, Runnable};
use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::unwind::message_of;

pub(crate) enum Msg {
    Run(Box<dyn Runnable>),
    Direct(Box<dyn FnOnce() + Send>),
}

impl Msg {
    /// Refuse the message because the caller stopped. User data dropped here (a closure,
    /// a queued call's arguments) may panic in `Drop`: the panic is caught and logged, so
    /// that `stop()` never panics and refuses the rest (regression: the panic came out of
    /// `stop()`, and the calls behind it were never finished).
    pub(super) fn refuse(self, reason: &str) {
        let refused = catch_unwind(AssertUnwindSafe(|| match self {
            Msg::Run(r) => r.refuse(reason),
            Msg::Direct(f) => {
                tracing::debug!(reason, "a direct call was dropped: the caller stopped");
                drop(f);
            }
        }));
        if let Err(payload) = refused {
            tracing::error!(
                reason,
                panic = %message_of(payload),
                "a refused call panicked in Drop; the panic was caught"
            );
        }
    }
}

pub(crate) struct Inbox {
    q: Mutex<Queue>,
}

struct Queue {
    items: VecDeque<Msg>,
    closed: bool,
    waker: Option<Waker>,
}

impl Inbox {
    pub(super) fn new() -> Self {
        Inbox {
            q: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
                waker: None,
            }),
        }
    }

    /// Queue `msg`; hands it back if the inbox is closed.
    pub(crate) fn push(&self, msg: Msg) -> Result<(), Msg> {
        let mut q = lock(&self.q);
        if q.closed {
            return Err(msg);
        }
        q.items.push_back(msg);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Close the inbox; returns what was still queued.
    pub(super) fn close(&self) -> VecDeque<Msg> {
        let mut q = lock(&self.q);
        q.closed = true;
        let items = std::mem::take(&mut q.items);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        items
    }

    /// Move everything queued into `out`. `Ready(false)` once closed and empty.
    fn poll_recv(&self, cx: &mut Context<'_>, out: &mut VecDeque<Msg>) -> Poll<bool> {
        let mut q = lock(&self.q);
        if !q.items.is_empty() {
            std::mem::swap(&mut q.items, out);
            return Poll::Ready(true);
        }
        if q.closed {
            return Poll::Ready(false);
        }
        match &mut q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

fn build_runtime(caller: &Caller, wake: &Arc<LoopWake>) -> Result<tokio::runtime::Runtime, Error> {
    // The park hooks live in the runtime's handle, and the runtime's waker (kept in
    // `wake`) holds that handle: the hooks reach `wake` weakly, or the two would keep each
    // other (about 8 KiB per caller) for ever.
    let spin = Arc::new(Spin::new(Arc::downgrade(wake)));
    let after = spin.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || spin.before_park())
        .on_thread_unpark(move || after.after_unpark())
        .build()
        .map_err(|e| {
            tracing::error!(caller = %caller.name(), error = %e, "cannot build the caller's runtime");
            Error::invalid(format!("cannot build a tokio runtime: {e}"))
        })
}

// ---------------------------------------------------------------------------------------
// Spinning before the loop parks
// ---------------------------------------------------------------------------------------
//
// Waking a thread that sleeps costs a system call on the waking side and, on many
// machines, tens of microseconds before the sleeper runs again. When calls arrive one
// right after another (a round trip with a thread that spins while it waits, a queue fed
// in bursts), the loop is better off spinning for a few microseconds before it parks. A
// spin pays only when the next wake-up comes within about what a park and a wake-up cost
// in CPU; everywhere else it burns a core for nothing. So the spin is:
//
// - **short and bounded**: at most `SPIN_MAX`, then the loop parks as before;
// - **adaptive**, as the halt polling of KVM, on the *whole* idle gap (spin plus sleep):
//   the budget starts at `SPIN_START`; when the loop parked and the gap from going idle
//   to being woken (the waker's call, not the loop's own slow wake-up) was within `SPIN_MAX` (a longer spin, still within the bound, would have caught
//   the wake-up), the budget doubles; when the gap was longer, it halves, down to zero.
//   Calls spaced out (a requester that sleeps, or whose own wake-up is slow, as a tokio
//   task parked on another idle core) therefore switch the spin off after a few calls;
// - **yielding**: between its checks it gives up the core (`sched_yield`), so that a
//   thread the loop just woke, which the kernel may have queued on this very core,
//   runs at once instead of waiting for the spin to end;
// - **off on one core** (`available_parallelism() == 1`, which honours `taskset`): there
//   the thread that would wake us cannot run while we spin;
// - **complete**: it watches every wake-up of the loop (the inbox, a timer or I/O task, a
//   pending from another thread), not only the inbox, because the loop's own future is
//   polled with a [`LoopWake`] waker. While the loop spins, a wake-up only sets a flag,
//   so the waking thread makes no system call either.

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
struct LoopWake {
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
    fn new() -> Arc<Self> {
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
struct Watched<F> {
    fut: F,
    wake: Arc<LoopWake>,
    waker: Waker,
    /// The runtime's waker last handed to `wake`.
    seen: Option<Waker>,
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

/// Run `fut` on `local` inside `rt`, watched by `wake` (what `LocalSet::block_on` does).
fn block_on_watched<F: Future>(
    rt: &tokio::runtime::Runtime,
    local: &tokio::task::LocalSet,
    wake: &Arc<LoopWake>,
    fut: F,
) -> F::Output {
    let prev = ON_LOOP.with(|l| l.replace(Arc::as_ptr(wake) as usize));
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_LOOP.with(|l| l.set(self.0));
        }
    }
    let _restore = Restore(prev);
    rt.block_on(Watched {
        fut: Box::pin(local.run_until(fut)),
        wake: wake.clone(),
        waker: Waker::from(wake.clone()),
        seen: None,
    })
}

/// The adaptive spin, run by the runtime's park hooks on the loop's thread.
struct Spin {
    /// Weak: see `build_runtime`.
    wake: Weak<LoopWake>,
    enabled: bool,
    /// The current budget in nanoseconds (only the loop's thread touches these).
    budget_ns: AtomicU64,
    /// When the loop went idle before a park (ns since the `LoopWake`'s epoch), or 0: set
    /// when a spin found nothing (or there was no spin) and the loop parks.
    idle_since: AtomicU64,
}

impl Spin {
    fn new(wake: Weak<LoopWake>) -> Self {
        Spin {
            wake,
            enabled: std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
            budget_ns: AtomicU64::new(SPIN_START.as_nanos() as u64),
            idle_since: AtomicU64::new(0),
        }
    }

    /// Called when the runtime has nothing to run and is about to park.
    fn before_park(&self) {
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
    fn after_unpark(&self) {
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

/// Mark the loop as started (unless a stop came first).
pub(crate) fn mark_started(caller: &Caller) {
    let _ = caller
        .inner
        .state
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    caller.inner.started.set_result(());
    tracing::debug!(caller = %caller.name(), id = %caller.id(), "caller started");
}

/// The body of a new-thread caller.
pub(super) fn run_thread(caller: Caller) {
    registry::adopt_thread_id(caller.id());
    let wake = LoopWake::new();
    let rt = match build_runtime(&caller, &wake) {
        Ok(rt) => rt,
        Err(_) => {
            caller.stop(true);
            finish(&caller);
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let prev = set_loop(Some(caller.id()));
    crate::job::unstarted_reset();
    mark_started(&caller);
    block_on_watched(&rt, &local, &wake, scheduler(caller.clone()));
    shutdown(&caller, local, &rt);
    // The thread's state (`new_thread_with`) goes with its calls, before `stopped`.
    crate::state::clear();
    drop(rt);
    set_loop(prev);
    finish(&caller);
}

/// The body of a caller entered on the current thread for the life of `fut`.
pub(super) fn run_here<F: Future>(caller: Caller, fut: F) -> Result<F::Output, Error> {
    let wake = LoopWake::new();
    let rt = match build_runtime(&caller, &wake) {
        Ok(rt) => rt,
        Err(e) => {
            caller.stop(true);
            finish(&caller);
            return Err(e);
        }
    };
    let local = tokio::task::LocalSet::new();
    let prev = set_loop(Some(caller.id()));
    crate::job::unstarted_reset();
    mark_started(&caller);
    // The scheduler runs inside the `block_on` future, beside `fut`, rather than as a task
    // of its own: a call made from `fut` then needs no task wake-up and no task switch.
    let mut sched = std::pin::pin!(scheduler(caller.clone()));
    let out = block_on_watched(&rt, &local, &wake, async {
        let fut = std::pin::pin!(fut);
        match Beside::new(fut, sched.as_mut(), &wake).await {
            futures::future::Either::Left(out) => Ok(out),
            futures::future::Either::Right(()) => Err(Error::CallerStopped {
                caller: caller.name().to_owned(),
            }),
        }
    });
    caller.stop(true);
    // Let the loop finish its stop sequence (children first).
    block_on_watched(&rt, &local, &wake, sched);
    shutdown(&caller, local, &rt);
    drop(rt);
    set_loop(prev);
    finish(&caller);
    out
}

/// The body of a caller entered on the current thread *inside* a tokio runtime that
/// something else drives (`CallerBuilder::run_here`): the caller's `LocalSet` and loop run
/// inside this future, beside `fut`, and the thread is marked as the caller's only while
/// this future is polled (other tasks of the runtime share the thread between polls).
/// Dropping the future stops the caller like its end does.
pub(super) async fn run_inside<F: Future>(caller: Caller, fut: F) -> Result<F::Output, Error> {
    let mut here = Here {
        caller: caller.clone(),
        local: Some(tokio::task::LocalSet::new()),
        prev_owner: crate::context::set_owner(Some(caller.id())),
    };
    let id = caller.id();
    let wake = LoopWake::new();
    let local = here.local.as_ref().expect("set above");
    {
        let _on = OnLoop::enter(id);
        crate::job::unstarted_reset();
        mark_started(&caller);
    }
    let mut sched = std::pin::pin!(scheduler(caller.clone()));
    let out = OnLoop::wrap(
        id,
        Watched {
            fut: Box::pin(local.run_until(async {
                let fut = std::pin::pin!(fut);
                match Beside::new(fut, sched.as_mut(), &wake).await {
                    futures::future::Either::Left(out) => Ok(out),
                    futures::future::Either::Right(()) => Err(Error::CallerStopped {
                        caller: caller.name().to_owned(),
                    }),
                }
            })),
            wake: wake.clone(),
            waker: Waker::from(wake.clone()),
            seen: None,
        },
    )
    .await;
    caller.stop(true);
    // Let the loop finish its stop sequence (children first).
    OnLoop::wrap(id, local.run_until(sched)).await;
    here.finish();
    out
}

/// Ends a caller run by [`run_inside`]: on its end, or when its future is dropped first.
struct Here {
    caller: Caller,
    local: Option<tokio::task::LocalSet>,
    prev_owner: Option<crate::caller::CallerId>,
}

impl Here {
    fn finish(&mut self) {
        let Some(local) = self.local.take() else {
            return;
        };
        let _on = OnLoop::enter(self.caller.id());
        // Dropped before its end: stop the caller and its children here.
        if self.caller.state() < CallerState::Stopping {
            self.caller.stop(true);
        }
        for child in self.caller.children() {
            child.stop(true);
        }
        refuse_leftovers(&self.caller);
        // Running calls are dropped here, on the caller's own thread.
        drop(local);
        crate::context::set_owner(self.prev_owner);
        finish(&self.caller);
    }
}

impl Drop for Here {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Marks this thread as running caller `id`'s loop while a poll lasts.
struct OnLoop(Option<crate::caller::CallerId>);

impl OnLoop {
    fn enter(id: crate::caller::CallerId) -> OnLoop {
        OnLoop(set_loop(Some(id)))
    }

    async fn wrap<F: Future>(id: crate::caller::CallerId, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            let _on = OnLoop::enter(id);
            fut.as_mut().poll(cx)
        })
        .await
    }
}

impl Drop for OnLoop {
    fn drop(&mut self) {
        set_loop(self.0);
    }
}

/// Polls two futures side by side until one finishes, each only when its own waker fired
/// (so the user's future is not polled for every call the scheduler runs, nor the
/// reverse). Both wakers wake the loop through its [`LoopWake`].
struct Beside<A, B> {
    a: A,
    b: B,
    a_wake: Arc<SideWake>,
    b_wake: Arc<SideWake>,
    a_waker: Waker,
    b_waker: Waker,
}

struct SideWake {
    woken: AtomicBool,
    outer: Arc<LoopWake>,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.outer.wake_by_ref();
        }
    }
}

impl<A: Future + Unpin, B: Future + Unpin> Beside<A, B> {
    fn new(a: A, b: B, outer: &Arc<LoopWake>) -> Self {
        let side = || {
            Arc::new(SideWake {
                woken: AtomicBool::new(true),
                outer: outer.clone(),
            })
        };
        let (a_wake, b_wake) = (side(), side());
        Beside {
            a,
            b,
            a_waker: Waker::from(a_wake.clone()),
            b_waker: Waker::from(b_wake.clone()),
            a_wake,
            b_wake,
        }
    }
}

impl<A: Future + Unpin, B: Future + Unpin> Future for Beside<A, B> {
    type Output = futures::future::Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Clear a side's flag before polling it: a wake-up during the poll sets it again.
        // (Load first: a flag left clear needs no read-modify-write.)
        if this.a_wake.woken.load(Ordering::Relaxed)
            && this.a_wake.woken.swap(false, Ordering::AcqRel)
        {
            let cx = &mut Context::from_waker(&this.a_waker);
            if let Poll::Ready(out) = Pin::new(&mut this.a).poll(cx) {
                return Poll::Ready(futures::future::Either::Left(out));
            }
        }
        if this.b_wake.woken.load(Ordering::Relaxed)
            && this.b_wake.woken.swap(false, Ordering::AcqRel)
        {
            let cx = &mut Context::from_waker(&this.b_waker);
            if let Poll::Ready(out) = Pin::new(&mut this.b).poll(cx) {
                return Poll::Ready(futures::future::Either::Right(out));
            }
        }
        Poll::Pending
    }
}

/// Wait until every async call spawned so far has been polled once.
async fn wait_started() {
    while unstarted() > 0 {
        crate::backend::yield_now().await;
    }
}

pub(crate) async fn scheduler(caller: Caller) {
    let inbox = &caller.inner.inbox;
    let mut batch = VecDeque::new();
    'outer: loop {
        let open = std::future::poll_fn(|cx| inbox.poll_recv(cx, &mut batch)).await;
        while let Some(msg) = batch.pop_front() {
            if caller.state() >= CallerState::Stopping {
                batch.push_front(msg);
                break 'outer;
            }
            match msg {
                Msg::Run(r) => {
                    if r.inline() {
                        wait_started().await;
                    }
                    // Calls catch the panics of user code themselves; this is the last
                    // line (a queued call's arguments dropped by a closed queue): nothing
                    // unwinds out of the loop.
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| r.run())) {
                        tracing::error!(
                            caller = %caller.name(),
                            panic = %message_of(payload),
                            "a call panicked outside its own guard; the caller goes on"
                        );
                    }
                }
                Msg::Direct(f) => {
                    wait_started().await;
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                        tracing::error!(
                            caller = %caller.name(),
                            panic = %message_of(payload),
                            "a direct call panicked"
                        );
                    }
                }
            }
        }
        if !open {
            break;
        }
    }
    let reason = caller.stop_reason();
    for msg in batch.drain(..) {
        msg.refuse(&reason);
    }
    // Children first: stop them and wait until they have stopped.
    let children = caller.children();
    for child in &children {
        child.stop(true);
    }
    for child in &children {
        let _ = child.stopped().await;
    }
}

/// Refuse what is still queued (it never started).
pub(crate) fn refuse_leftovers(caller: &Caller) {
    let reason = caller.stop_reason();
    for msg in caller.inner.inbox.close() {
        msg.refuse(&reason);
    }
}

/// Cancel everything left: what is still queued (never started) and every running task
/// (dropped here, on the caller's own thread, by dropping the `LocalSet`).
fn shutdown(caller: &Caller, local: tokio::task::LocalSet, rt: &tokio::runtime::Runtime) {
    refuse_leftovers(caller);
    let _enter = rt.enter();
    drop(local);
}

/// Leave the registry and the parent, and signal `stopped`.
pub(crate) fn finish(caller: &Caller) {
    registry::remove(caller);
    if let Some(parent) = caller.parent() {
        lock(&parent.inner.children).retain(|c| c != caller);
    }
    caller.inner.state.store(3, Ordering::Release);
    tracing::info!(caller = %caller.name(), "caller stopped");
    caller.inner.stopped.set_result(());
}

#[cfg(all(test, caller_loom))]
mod model;

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
