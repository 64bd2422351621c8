//! The stress test: 8 driver threads and 4 named callers that are stopped and made again
//! while the drivers use them, mixing every public operation, then a check that nothing
//! was lost, hung, run twice, dropped in the wrong place or kept.
//!
//! `#[ignore]`d in the normal suite (it runs for a minute); `.ci/run` runs it:
//!
//! ```text
//! cargo test --test stress -- --ignored --nocapture          # 60 s, a fresh seed
//! STRESS_S=600 cargo test --test stress -- --ignored --nocapture   # a longer soak
//! STRESS_SEED=1234 cargo test --test stress -- --ignored --nocapture   # replay a seed
//! ```
//!
//! A run still going well past its deadline has hung: a watchdog prints the seed, the
//! `dump()` of the live tree and every thread's stack (through gdb, where it is installed),
//! then ends the process. `STRESS_HANG_PAUSE_S=300` keeps the hung process that long first,
//! to attach a debugger by hand.
//!
//! A seed fixes what every driver does (its operations and their arguments); the order in
//! which the threads meet is the machine's. Checked at the end:
//! - every pending ever made is done (`undone = 0`), and each outcome is one that what was
//!   done to it allows (its value; cancelled only if it was cancelled, timed out, abandoned,
//!   its group cancelled or its caller stopped; failed or panicked only if it was made to);
//! - no future was dropped off its caller's thread, or after its pending was done;
//! - every done callback ran exactly once (a removed one never);
//! - no group exited with a member still running;
//! - no panic other than the ones the test makes on purpose (which the library catches);
//! - the thread count is back to where it was, and the live heap too (a counting
//!   allocator, `support/alloc.rs`).

#[path = "support/alloc.rs"]
mod alloc;
mod support;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use caller::{
    AnyPending, CallOptions, Caller, Error, GroupMode, Pending, PendingGroup, PendingManager,
    PoolConfig, ReturnWhen,
};
use futures::StreamExt;
use support::{thread_count, LIMIT};

const DRIVERS: usize = 8;
const CALLERS: usize = 4;
/// The message of every panic the test makes on purpose.
const INTENDED: &str = "stress: an intended panic";

// ---------------------------------------------------------------------------------------
// Seeded randomness: xorshift64*, one stream per driver.
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn micros(&mut self, max: u64) -> Duration {
        Duration::from_micros(self.below(max + 1))
    }
}

// ---------------------------------------------------------------------------------------
// What the run counts and what it found wrong.
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Figures {
    operations: AtomicU64,
    pendings: AtomicU64,
    checked: AtomicU64,
    callbacks_added: AtomicU64,
    groups: AtomicU64,
    restarts: AtomicU64,
    futures_dropped: AtomicU64,
    violations: Mutex<Vec<String>>,
}

impl Figures {
    fn violation(&self, what: String) {
        let mut v = self.violations.lock().unwrap();
        if v.len() < 50 {
            v.push(what);
        }
    }
}

fn figures() -> &'static Figures {
    static F: std::sync::OnceLock<Figures> = std::sync::OnceLock::new();
    F.get_or_init(Figures::default)
}

/// Panics that were not made on purpose (seen by the panic hook, wherever caught).
static UNEXPECTED_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Lives inside every async call's future: it checks where and when the future is dropped.
struct Probe {
    thread: ThreadId,
    pending: Option<AnyPending>,
}

impl Probe {
    /// Made on the caller's thread, when the call's future is built.
    fn here() -> Probe {
        Probe {
            thread: std::thread::current().id(),
            pending: Caller::current_pending(),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        figures().futures_dropped.fetch_add(1, SeqCst);
        if std::thread::current().id() != self.thread {
            figures().violation(format!(
                "a future was dropped on {:?}, not on its caller's thread",
                std::thread::current().name()
            ));
        }
        if let Some(p) = &self.pending {
            if p.done() {
                figures().violation(format!(
                    "a future was dropped after its pending was done: {p:?}"
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tracked pendings: each with what its outcome may be.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct Expect {
    value: u64,
    /// Something that may cancel it was done to it (besides a stop of its caller).
    cancel_ok: bool,
    panic_ok: bool,
    fail_ok: bool,
}

struct Tracked {
    p: Pending<u64>,
    expect: Expect,
    /// Counters of its kept callbacks and of its removed ones.
    callbacks: Option<(Arc<AtomicUsize>, usize, Arc<AtomicUsize>)>,
}

impl Tracked {
    fn check(mut self) {
        let f = figures();
        f.checked.fetch_add(1, SeqCst);
        let e = self.expect;
        match self.p.try_take() {
            None => f.violation(format!("checked before done: {:?}", self.p)),
            Some(Ok(v)) if v == e.value => {}
            Some(Ok(v)) => f.violation(format!("value {v}, expected {}: {:?}", e.value, self.p)),
            Some(Err(Error::Taken)) => {}
            Some(Err(err)) if err.is_cancelled() => {
                let msg = err.cancel_message().unwrap_or_default();
                if !e.cancel_ok && !msg.contains("stopped") {
                    f.violation(format!("cancelled ({msg:?}) though nothing cancelled it"));
                }
            }
            Some(Err(Error::Panicked { message })) => {
                if !e.panic_ok || !message.contains(INTENDED) {
                    f.violation(format!("panicked unexpectedly: {message}"));
                }
            }
            Some(Err(err)) if err.is_failure() && e.fail_ok => {}
            Some(Err(err)) => f.violation(format!("unexpected outcome {err}: {:?}", self.p)),
        }
        if let Some((kept, n, removed)) = &self.callbacks {
            let ran = kept.load(SeqCst);
            if ran != *n {
                f.violation(format!("{n} callbacks kept, {ran} runs"));
            }
            if removed.load(SeqCst) != 0 {
                f.violation("a removed callback ran".into());
            }
        }
    }
}

/// The pendings one driver made and has not checked yet.
#[derive(Default)]
struct Ledger {
    open: Vec<Tracked>,
}

impl Ledger {
    fn add(&mut self, p: Pending<u64>, expect: Expect) -> usize {
        figures().pendings.fetch_add(1, SeqCst);
        self.open.push(Tracked {
            p,
            expect,
            callbacks: None,
        });
        self.open.len() - 1
    }

    /// Check the pendings that are done (settled: their callbacks have run).
    fn sweep(&mut self) {
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|t| t.p.wait_done_sync(Some(Duration::ZERO)).is_ok());
        self.open = open;
        done.into_iter().for_each(Tracked::check);
    }
}

// ---------------------------------------------------------------------------------------
// The shared world: the named callers (made again after each stop) and a cancel box.
// ---------------------------------------------------------------------------------------

struct World {
    callers: Mutex<Vec<Caller>>,
    stopped: Mutex<Vec<Caller>>,
    /// Pendings posted by one driver for another to cancel.
    to_cancel: Mutex<Vec<AnyPending>>,
    done: AtomicBool,
}

impl World {
    fn caller(&self, rng: &mut Rng) -> Caller {
        let callers = self.callers.lock().unwrap();
        callers[rng.below(CALLERS as u64) as usize].clone()
    }

    fn restart(&self, rng: &mut Rng) {
        let k = rng.below(CALLERS as u64) as usize;
        let fresh = Caller::new_thread(format!("stress-{k}")).expect("a new caller");
        let old = std::mem::replace(&mut self.callers.lock().unwrap()[k], fresh);
        old.stop(rng.chance(50));
        self.stopped.lock().unwrap().push(old);
        figures().restarts.fetch_add(1, SeqCst);
    }
}

fn value(rng: &mut Rng) -> u64 {
    rng.below(1 << 40)
}

/// One random operation.
fn operate(world: &World, rng: &mut Rng, ledger: &mut Ledger) {
    figures().operations.fetch_add(1, SeqCst);
    let c = world.caller(rng);
    let v = value(rng);
    match rng.below(20) {
        // A sync call, waited on.
        0 | 1 => {
            let mut p = c.call_soon(move || v);
            if rng.chance(50) {
                let _ = p.wait_sync(Some(LIMIT));
            }
            ledger.add(
                p,
                Expect {
                    value: v,
                    ..Default::default()
                },
            );
        }
        // An async call that sleeps a little, on the caller's timer or the crate's.
        2 | 3 => {
            let sleep = rng.micros(300);
            let tokio_timer = rng.chance(50);
            let p = c.call_soon_async(move || {
                let probe = Probe::here();
                async move {
                    let _probe = probe;
                    if tokio_timer {
                        tokio::time::sleep(sleep).await;
                    } else {
                        caller::sleep(sleep).await;
                    }
                    v
                }
            });
            ledger.add(
                p,
                Expect {
                    value: v,
                    ..Default::default()
                },
            );
        }
        // Delayed calls, sync and async.
        4 => {
            let delay = rng.micros(500);
            let p = if rng.chance(50) {
                c.call_later(delay, move || v)
            } else {
                c.call_later_async(delay, move || {
                    let probe = Probe::here();
                    async move {
                        let _probe = probe;
                        v
                    }
                })
            };
            ledger.add(
                p,
                Expect {
                    value: v,
                    ..Default::default()
                },
            );
        }
        // A call that never ends by itself, cancelled here or by another driver.
        5 | 6 => {
            let p = c.call_soon_async(move || {
                let probe = Probe::here();
                async move {
                    let _probe = probe;
                    std::future::pending::<u64>().await
                }
            });
            if rng.chance(50) {
                p.cancel("stress cancel");
            } else {
                world.to_cancel.lock().unwrap().push(p.any());
            }
            ledger.add(
                p,
                Expect {
                    value: v,
                    cancel_ok: true,
                    ..Default::default()
                },
            );
        }
        // Cancel what other drivers posted.
        7 => {
            let posted = std::mem::take(&mut *world.to_cancel.lock().unwrap());
            for p in posted {
                p.cancel("stress cancel from another thread");
            }
        }
        // Timed waits: unprotected ones cancel on timeout, protected ones do not.
        8 => {
            let sleep = rng.micros(400);
            let mut p = c.call_soon_async(move || {
                let probe = Probe::here();
                async move {
                    let _probe = probe;
                    caller::sleep(sleep).await;
                    v
                }
            });
            let protected = rng.chance(50);
            p.set_protected(protected);
            let res = if rng.chance(50) {
                p.wait_sync(Some(rng.micros(300)))
            } else {
                futures::executor::block_on(p.wait(Some(rng.micros(300))))
            };
            if let Err(e) = &res {
                if !e.is_timeout() && !e.is_cancelled() {
                    figures().violation(format!("a timed wait ended with {e}"));
                }
            }
            ledger.add(
                p,
                Expect {
                    value: v,
                    cancel_ok: !protected,
                    ..Default::default()
                },
            );
        }
        // An abandoned await: polled once, then dropped.
        9 => {
            let mut p = c.call_soon_async(move || {
                let probe = Probe::here();
                async move {
                    let _probe = probe;
                    tokio::task::yield_now().await;
                    v
                }
            });
            let protected = rng.chance(30);
            p.set_protected(protected);
            {
                let mut wait = p.wait(None);
                let waker = futures::task::noop_waker();
                let _ =
                    std::pin::Pin::new(&mut wait).poll(&mut std::task::Context::from_waker(&waker));
            }
            ledger.add(
                p,
                Expect {
                    value: v,
                    cancel_ok: !protected,
                    ..Default::default()
                },
            );
        }
        // Callbacks: some kept, some removed; from this thread or after done.
        10 => {
            let p = if rng.chance(50) {
                c.call_soon(move || v)
            } else {
                let r = Pending::new();
                let res = r.resolver();
                let _ = std::thread::spawn(move || res.set_result(v));
                r
            };
            let (kept, removed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let n = 1 + rng.below(3) as usize;
            for _ in 0..n {
                let k = kept.clone();
                p.add_done_callback(move |_| {
                    k.fetch_add(1, SeqCst);
                });
                let r = removed.clone();
                let id = p.add_done_callback(move |_| {
                    r.fetch_add(1, SeqCst);
                });
                if !p.remove_done_callback(id) {
                    // Too late to remove (the pending is done): it runs (or ran) once;
                    // take that run off (wrapping, should it come after this).
                    removed.fetch_sub(1, SeqCst);
                }
            }
            figures().callbacks_added.fetch_add(n as u64, SeqCst);
            let i = ledger.add(
                p,
                Expect {
                    value: v,
                    ..Default::default()
                },
            );
            ledger.open[i].callbacks = Some((kept, n, removed));
        }
        // Panics and failures in user code.
        11 => {
            let p = if rng.chance(50) {
                c.call_soon(move || -> u64 { panic!("{INTENDED}") })
            } else {
                c.schedule_call(
                    caller::job::try_sync(move || Err::<u64, _>(Error::failed("stress failure"))),
                    CallOptions::new(),
                )
            };
            ledger.add(
                p,
                Expect {
                    value: v,
                    panic_ok: true,
                    fail_ok: true,
                    ..Default::default()
                },
            );
        }
        // Queues on the caller.
        12 => {
            fn item(n: u64) {
                std::hint::black_box(n);
            }
            async fn item_async(n: u64) {
                tokio::task::yield_now().await;
                std::hint::black_box(n);
            }
            for _ in 0..rng.below(8) {
                let _ = c.queue_call(item, v);
                let _ = c.queue_call_async(item_async, v);
            }
            if rng.chance(10) {
                c.queue_close(&item);
            }
        }
        // Groups of every mode, nested, shielded, with members made on other threads.
        13 | 14 => group(world, rng, ledger),
        // as_completed and wait.
        15 => {
            let n = 1 + rng.below(5);
            let c2 = c.clone();
            let jobs = (0..n).map(move |i| c2.call_soon(move || i));
            let mut seen = 0;
            futures::executor::block_on(async {
                let mut s = caller::as_completed(jobs).max_concurrent(2);
                while let Some(p) = s.next().await {
                    if !p.done() {
                        figures().violation("as_completed yielded a pending not done".into());
                    }
                    seen += 1;
                }
            });
            if seen != n {
                figures().violation(format!("as_completed yielded {seen} of {n}"));
            }
            let a = c.call_soon(move || v);
            let b = c.call_soon_async(move || {
                let probe = Probe::here();
                async move {
                    let _probe = probe;
                    caller::sleep(Duration::from_micros(200)).await;
                    v
                }
            });
            let (done, not_done) = futures::executor::block_on(caller::wait(
                [a, b],
                Some(LIMIT),
                ReturnWhen::FirstCompleted,
            ));
            for p in done {
                ledger.add(
                    p,
                    Expect {
                        value: v,
                        ..Default::default()
                    },
                );
            }
            for p in not_done {
                p.cancel("stress: not needed");
                ledger.add(
                    p,
                    Expect {
                        value: v,
                        cancel_ok: true,
                        ..Default::default()
                    },
                );
            }
        }
        // Managers.
        16 => {
            let m = PendingManager::new();
            {
                let _active = m.activate();
                for _ in 0..3 {
                    ledger.add(
                        c.call_soon(move || v),
                        Expect {
                            value: v,
                            cancel_ok: true,
                            ..Default::default()
                        },
                    );
                }
            }
            if rng.chance(30) {
                m.cancel_all("stress: manager cancel");
            }
            futures::executor::block_on(async {
                if caller::timeout(LIMIT, m.wait_all()).await.is_err() {
                    figures().violation("a manager's wait_all did not end".into());
                }
            });
        }
        // Children: made, used, stopped with their parent or by hand.
        17 => {
            if let Ok(child) = c.get(&format!("child-{}", rng.below(2))) {
                ledger.add(
                    child.call_soon(move || v),
                    Expect {
                        value: v,
                        ..Default::default()
                    },
                );
                if rng.chance(20) {
                    child.stop(true);
                }
            }
        }
        // The pool.
        18 => {
            let p = if rng.chance(50) {
                caller::to_thread(move || v)
            } else {
                caller::to_thread_async(move || {
                    let probe = Probe::here();
                    async move {
                        let _probe = probe;
                        v
                    }
                })
            };
            ledger.add(
                p,
                Expect {
                    value: v,
                    ..Default::default()
                },
            );
        }
        // Direct calls.
        _ => {
            let _ = c.call_direct(move || {
                std::hint::black_box(v);
            });
        }
    }
}

/// A group (random mode, maybe shielded, maybe timed) with members on the named callers,
/// the pool and a thread of its own, and a nested group inside.
fn group(world: &World, rng: &mut Rng, ledger: &mut Ledger) {
    figures().groups.fetch_add(1, SeqCst);
    let mode = GroupMode::from_number(rng.below(4) as u8).unwrap_or(GroupMode::Supervisor);
    let mode = if rng.chance(20) {
        GroupMode::Supervisor
    } else {
        mode
    };
    let mut b = PendingGroup::builder()
        .mode(mode)
        .shield(rng.chance(30))
        .cancellation_timeout(LIMIT);
    if rng.chance(20) {
        b = b.timeout(rng.micros(2_000));
    }
    let outer = b.build();
    let (c1, c2) = (world.caller(rng), world.caller(rng));
    let (v, cancel_member, fail_member, inner_shield) =
        (value(rng), rng.chance(30), rng.chance(20), rng.chance(50));
    let members: Arc<Mutex<Vec<AnyPending>>> = Arc::default();
    let m = members.clone();
    let _ = futures::executor::block_on(outer.run(async move {
        let a = c1.call_soon_async(move || {
            let probe = Probe::here();
            async move {
                let _probe = probe;
                tokio::task::yield_now().await;
                v
            }
        });
        // A member made on another thread: a call made inside a member joins the group.
        let c2b = c2.clone();
        let nested = c1.call_soon_async(move || async move {
            let inner = c2b.call_soon(move || v);
            inner.any()
        });
        let pooled = caller::to_thread(move || v);
        m.lock()
            .unwrap()
            .extend([a.any(), nested.any(), pooled.any()]);
        if cancel_member {
            a.cancel("stress: member cancelled");
        }
        if fail_member {
            let f = c2.call_soon(move || -> u64 { panic!("{INTENDED}") });
            m.lock().unwrap().push(f.any());
        }
        let inner = PendingGroup::builder().shield(inner_shield).build();
        let m2 = m.clone();
        let _ = inner
            .run(async move {
                let x = c2.call_soon(move || v);
                m2.lock().unwrap().push(x.any());
                let _ = x.await;
            })
            .await;
        if let Ok(inside) = nested.await {
            m.lock().unwrap().push(inside);
        }
        let _ = a.await;
        let _ = pooled.await;
    }));
    // The group has exited: every member it had must be done.
    for p in members.lock().unwrap().iter() {
        if !p.done() {
            figures().violation(format!(
                "a group ({mode:?}) exited with a live member: {p:?}"
            ));
        }
    }
    let _ = ledger;
}

/// Print every thread's stack, where gdb is installed and may attach (a hung run then says
/// where each thread waits, in the CI log itself).
fn print_backtraces() {
    let pid = std::process::id().to_string();
    // Into a file, not a pipe: gdb stops every thread of this process, the one that would
    // read a pipe too, and a full pipe would then hold gdb (and this run) for ever.
    let path = std::env::temp_dir().join(format!("caller-stress-{pid}.gdb.txt"));
    let out = std::fs::File::create(&path).and_then(|file| {
        std::process::Command::new("gdb")
            .args(["-p", &pid, "-batch", "-nx", "-ex", "thread apply all bt 30"])
            .stdout(file.try_clone()?)
            .stderr(file)
            .status()
    });
    match out.and_then(|_| std::fs::read_to_string(&path)) {
        Ok(stacks) => eprintln!("stress: every thread's stack (gdb):\n{stacks}"),
        Err(e) => eprintln!("stress: no backtraces (gdb: {e})"),
    }
    let _ = std::fs::remove_file(&path);
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

#[test]
#[ignore = "runs for a minute: `cargo test --test stress -- --ignored --nocapture` (.ci/run does)"]
fn stress() {
    let seconds = env_u64("STRESS_S").unwrap_or(60);
    let seed = env_u64("STRESS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("stress: seed {seed} ({seconds} s); replay with STRESS_SEED={seed}");

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if !msg.contains(INTENDED) {
            UNEXPECTED_PANICS.fetch_add(1, SeqCst);
            default_hook(info);
        }
    }));

    // Warm up what lives for the whole process (the timer thread), and let idle pool
    // workers stop soon after the run so that the thread count can come back.
    futures::executor::block_on(caller::sleep(Duration::from_millis(1)));
    PoolConfig::set_idle_shutdown(Some(Duration::from_millis(100)));
    let (threads0, heap0) = (thread_count(), alloc::live_bytes());

    let world = Arc::new(World {
        callers: Mutex::new(
            (0..CALLERS)
                .map(|k| Caller::new_thread(format!("stress-{k}")).unwrap())
                .collect(),
        ),
        stopped: Mutex::default(),
        to_cancel: Mutex::default(),
        done: AtomicBool::new(false),
    });
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let drivers: Vec<_> = (0..DRIVERS)
        .map(|d| {
            let world = world.clone();
            std::thread::Builder::new()
                .name(format!("driver-{d}"))
                .spawn(move || {
                    let mut rng =
                        Rng::new(seed ^ (d as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
                    let mut ledger = Ledger::default();
                    while Instant::now() < deadline {
                        operate(&world, &mut rng, &mut ledger);
                        if ledger.open.len() > 64 {
                            ledger.sweep();
                        }
                    }
                    ledger
                })
                .unwrap()
        })
        .collect();
    let restarter = {
        let world = world.clone();
        std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            while !world.done.load(SeqCst) && Instant::now() < deadline {
                std::thread::sleep(rng.micros(50_000));
                world.restart(&mut rng);
            }
        })
    };

    // A hung wait must fail the run, not hold CI until its time limit: past the deadline
    // by a margin, say what is stuck and end the process.
    {
        let world = world.clone();
        std::thread::spawn(move || {
            let limit = deadline + 6 * LIMIT;
            while !world.done.load(SeqCst) {
                if Instant::now() > limit {
                    eprintln!(
                        "stress: drivers still running {:?} after the deadline: an operation \
                         hung (replay with STRESS_SEED={seed})\n{}",
                        6 * LIMIT,
                        caller::dump()
                    );
                    print_backtraces();
                    if let Some(s) = env_u64("STRESS_HANG_PAUSE_S") {
                        eprintln!(
                            "stress: pid {} paused {s} s for a debugger",
                            std::process::id()
                        );
                        std::thread::sleep(Duration::from_secs(s));
                    }
                    std::process::exit(101);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    }

    let mut ledgers = Vec::new();
    for d in drivers {
        match d.join() {
            Ok(l) => ledgers.push(l),
            Err(_) => figures().violation("a driver thread panicked".into()),
        }
    }
    world.done.store(true, SeqCst);
    restarter.join().expect("the restarter does not panic");

    // Stop everything; then every pending must be done.
    for c in world.callers.lock().unwrap().iter() {
        c.stop(true);
    }
    let all: Vec<Caller> = world
        .callers
        .lock()
        .unwrap()
        .drain(..)
        .chain(world.stopped.lock().unwrap().drain(..))
        .collect();
    for c in &all {
        if futures::executor::block_on(caller::timeout(LIMIT, c.stopped())).is_err() {
            figures().violation(format!("caller {} did not stop within {LIMIT:?}", c.name()));
        }
    }
    let mut undone = 0;
    for l in &mut ledgers {
        for t in std::mem::take(&mut l.open) {
            if t.p.wait_done_sync(Some(LIMIT)).is_err() {
                undone += 1;
                figures().violation(format!("never done: {:?}", t.p));
            } else {
                t.check();
            }
        }
    }
    drop((all, ledgers));
    for p in std::mem::take(&mut *world.to_cancel.lock().unwrap()) {
        drop(p);
    }
    drop(world);

    // Threads and heap back where they were (idle workers stop after 100 ms).
    let threads_back = support_wait(|| thread_count() <= threads0);
    let threads1 = thread_count();
    let heap = alloc::settle(heap0, 256 * 1024, LIMIT);
    let heap1 = alloc::live_bytes();
    let _ = std::panic::take_hook();

    let f = figures();
    println!(
        "stress: {} operations, {} pendings ({} checked), undone = {undone}, {} callbacks, \
         {} groups, {} caller restarts, {} futures dropped",
        f.operations.load(SeqCst),
        f.pendings.load(SeqCst),
        f.checked.load(SeqCst),
        f.callbacks_added.load(SeqCst),
        f.groups.load(SeqCst),
        f.restarts.load(SeqCst),
        f.futures_dropped.load(SeqCst),
    );
    println!(
        "stress: threads {threads0} -> {threads1}, live heap {heap0} -> {heap1} bytes, \
         unexpected panics {}",
        UNEXPECTED_PANICS.load(SeqCst)
    );
    let violations = f.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
    assert_eq!(undone, 0, "seed {seed}: pendings never done");
    assert_eq!(
        UNEXPECTED_PANICS.load(SeqCst),
        0,
        "seed {seed}: unexpected panics"
    );
    assert!(
        threads_back,
        "seed {seed}: threads {threads0} -> {threads1}: {:?}",
        thread_names()
    );
    if let Err(grown) = heap {
        panic!("seed {seed}: the live heap grew by {grown} bytes ({heap0} -> {heap1})");
    }
}

/// Wait until `cond` holds, within [`LIMIT`]; whether it did.
fn support_wait(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > LIMIT {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The names of this process's threads (Linux), to say which one is left.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
