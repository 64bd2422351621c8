//! `caller` measured side by side with its closest peers (tokio, tokio-util, actix-rt), in
//! the same run, on the same machine, reported as ratios.
//!
//! ```text
//! cargo bench --bench compare                    # every scenario, writes the book page
//! taskset -c 0 cargo bench --bench compare       # the same, every thread on one core
//! ROUNDS=21 cargo bench --bench compare          # more rounds (default 11)
//! ONLY=2,3 cargo bench --bench compare           # some scenarios (page not written)
//! SCALE=0.2 cargo bench --bench compare          # fewer operations per round
//! NO_WRITE=1 cargo bench --bench compare         # print only
//! CONTENDER=call_soon ONLY=1 cargo bench --bench compare   # one side only (profiling)
//! ```
//!
//! A plain harness, not criterion: every scenario needs its peers measured in the *same*
//! rounds (interleaved, so machine noise hits both alike) and reported as a ratio, some
//! scenarios are not plain timings (memory, latency of a cancel from another thread,
//! latency of spaced-out calls), every cross-thread contender runs in a child process of
//! its own per round (so the other side's threads are not there), CPU time per operation
//! is reported beside wall time, and the whole table is written into
//! `book/src/performance.md`. A
//! median/spread over rounds is all that needs, in a few dozen lines, with no extra
//! dependency. Built without `--bench` (as `cargo test --benches` does), it runs every
//! scenario once on tiny sizes as a smoke test and writes nothing.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caller::{Caller, GroupMode, Pending, PendingGroup};

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

struct Cfg {
    rounds: usize,
    scale: f64,
    only: Option<Vec<String>>,
    /// Run only the contenders of this name (to profile one side); the others are skipped.
    contender: Option<String>,
    quick: bool,
}

impl Cfg {
    fn from_env() -> Cfg {
        let quick = !std::env::args().any(|a| a == "--bench");
        let num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
        Cfg {
            rounds: if quick {
                1
            } else {
                num("ROUNDS").map_or(11, |r| r.max(1.0) as usize)
            },
            scale: if quick {
                0.005
            } else {
                num("SCALE").unwrap_or(1.0)
            },
            only: std::env::var("ONLY")
                .ok()
                .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect()),
            contender: std::env::var("CONTENDER").ok(),
            quick,
        }
    }

    /// `base` operations, scaled.
    fn n(&self, base: usize) -> usize {
        ((base as f64 * self.scale) as usize).max(2)
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == scenario))
    }
}

#[derive(Clone, Copy)]
enum Unit {
    /// Nanoseconds per operation.
    Time,
    /// Bytes per in-flight task.
    Bytes,
}

/// One round of one contender: its metric (ns/op or bytes/task) and the CPU time per
/// operation of the whole process, all threads (NaN where CPU time means nothing).
#[derive(Clone, Copy)]
struct Sample {
    wall: f64,
    cpu: f64,
}

const SKIPPED: Sample = Sample {
    wall: f64::NAN,
    cpu: f64::NAN,
};

/// One side of a comparison: runs one round, returns its sample.
struct Contender<'a> {
    name: &'static str,
    run: Box<dyn FnMut() -> Sample + 'a>,
}

fn contender<'a>(name: &'static str, run: impl FnMut() -> Sample + 'a) -> Contender<'a> {
    Contender {
        name,
        run: Box::new(run),
    }
}

/// Run every contender once (warm-up), then `rounds` rounds; within a round every contender
/// runs once, in alternating order, so that drift of the machine hits all of them alike.
fn measure(cfg: &Cfg, cs: &mut [Contender<'_>], warmup: bool) -> Vec<Vec<Sample>> {
    let skipped = |c: &Contender<'_>| cfg.contender.as_ref().is_some_and(|n| n != c.name);
    if warmup {
        for c in cs.iter_mut().filter(|c| !skipped(c)) {
            (c.run)();
        }
    }
    let mut out = vec![Vec::new(); cs.len()];
    for r in 0..cfg.rounds {
        let order: Vec<usize> = if r % 2 == 0 {
            (0..cs.len()).collect()
        } else {
            (0..cs.len()).rev().collect()
        };
        for i in order {
            let v = if skipped(&cs[i]) {
                SKIPPED
            } else {
                (cs[i].run)()
            };
            out[i].push(v);
        }
    }
    for (c, v) in cs.iter().zip(&out) {
        let wall: Vec<f64> = v.iter().map(|s| s.wall).collect();
        let cpu: Vec<f64> = v.iter().map(|s| s.cpu).collect();
        eprintln!(
            "  {:<16} median {:>12.0}   cpu {:>12.0}",
            c.name,
            stats(&wall).0,
            stats(&cpu).0
        );
    }
    out
}

struct Row {
    id: &'static str,
    scenario: &'static str,
    ours: &'static str,
    peer: &'static str,
    unit: Unit,
    ours_v: Vec<Sample>,
    peer_v: Vec<Sample>,
    /// The issue's target for ours/peer, and the stretch aim if there is one.
    target: Option<f64>,
    aim: Option<f64>,
    /// The target for the ratio of CPU time per operation, ours/peer.
    cpu_target: Option<f64>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Median and spread (half the interquartile range, as a fraction of the median).
fn stats(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let med = quantile(&s, 0.5);
    let iqr = quantile(&s, 0.75) - quantile(&s, 0.25);
    (med, if med > 0.0 { iqr / 2.0 / med } else { 0.0 })
}

fn fmt_val(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Time if v < 1e3 => format!("{v:.0} ns"),
        Unit::Time if v < 1e6 => format!("{:.2} µs", v / 1e3),
        Unit::Time => format!("{:.2} ms", v / 1e6),
        Unit::Bytes => format!("{v:.0} B"),
    }
}

/// The verdict of a ratio (median `rm`, as printed) against its target and aim.
fn verdict(rm: f64, target: Option<f64>, aim: Option<f64>) -> (String, String) {
    let t_cell = match (target, aim) {
        (Some(t), Some(a)) => format!("≤ {t} (aim ≤ {a})"),
        (Some(t), None) => format!("≤ {t}"),
        _ => "—".into(),
    };
    let v = match target {
        None => "info".to_owned(),
        Some(t) if rm <= t => match aim {
            Some(a) if rm <= a => "met, aim met".to_owned(),
            Some(_) => "met, aim missed".to_owned(),
            None => "met".to_owned(),
        },
        Some(t) => {
            let by = (rm / t - 1.0) * 100.0;
            let digits = usize::from(by < 10.0);
            format!("**missed** by {by:.digits$}%")
        }
    };
    (t_cell, v)
}

/// Median ±spread of `ours`, of `peer` and of their per-round ratio (rounded as printed).
fn triple(ours: &[f64], peer: &[f64], unit: Unit) -> ([String; 3], f64) {
    let ratios: Vec<f64> = ours.iter().zip(peer).map(|(o, p)| o / p).collect();
    let (om, os) = stats(ours);
    let (pm, ps) = stats(peer);
    let (rm, rs) = stats(&ratios);
    // Judge the ratio as it is printed (two decimals).
    let rm = (rm * 100.0).round() / 100.0;
    (
        [
            format!("{} ±{:.0}%", fmt_val(om, unit), os * 100.0),
            format!("{} ±{:.0}%", fmt_val(pm, unit), ps * 100.0),
            format!("**{rm:.2}** ±{:.0}%", rs * 100.0),
        ],
        rm,
    )
}

impl Row {
    fn cells(&self) -> Vec<String> {
        let mut cells = vec![
            self.id.to_owned(),
            self.scenario.to_owned(),
            self.ours.to_owned(),
            self.peer.to_owned(),
        ];
        let wall = |v: &[Sample]| v.iter().map(|s| s.wall).collect::<Vec<_>>();
        let cpu = |v: &[Sample]| v.iter().map(|s| s.cpu).collect::<Vec<_>>();
        if wall(&self.ours_v)
            .iter()
            .chain(&wall(&self.peer_v))
            .any(|v| v.is_nan())
        {
            cells.extend(std::iter::repeat_n("skipped".to_owned(), 10));
            return cells;
        }
        let (w, rm) = triple(&wall(&self.ours_v), &wall(&self.peer_v), self.unit);
        let (t, v) = verdict(rm, self.target, self.aim);
        cells.extend(w);
        cells.extend([t, v]);
        let (oc, pc) = (cpu(&self.ours_v), cpu(&self.peer_v));
        if oc.iter().chain(&pc).any(|v| v.is_nan()) {
            cells.extend(std::iter::repeat_n("—".to_owned(), 5));
        } else {
            let (c, rm) = triple(&oc, &pc, Unit::Time);
            let (t, v) = verdict(rm, self.cpu_target, None);
            cells.extend(c);
            cells.extend([t, v]);
        }
        cells
    }
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| # | scenario | ours | peer | ours (median ±spread) | peer (median ±spread) \
         | ratio ours/peer | target | verdict | CPU/op ours | CPU/op peer | CPU ratio \
         | CPU target | CPU verdict |\n\
         |---|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!("| {} |\n", r.cells().join(" | ")));
    }
    s
}

/// CPU time used so far by this process, all threads, in nanoseconds: the sum of the
/// threads' `/proc/self/task/*/schedstat` (nanosecond precision, live threads only),
/// checked against `/proc/self/stat`'s user + system time (clock ticks, which also count
/// threads that exited). Returned as both, so that a difference can pick the larger.
fn cpu_now() -> (f64, f64) {
    // A thread's schedstat is brought up to date when it is switched or yields, not while
    // it runs: yield first, so that this thread's own figure is current.
    std::thread::yield_now();
    let mut sched = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let s = std::fs::read_to_string(e.path().join("schedstat")).unwrap_or_default();
            sched += s
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces):
    // utime and stime are fields 14 and 15, so 11 and 12 after the name.
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    // `getconf CLK_TCK` is 100 on Linux.
    (sched as f64, ticks as f64 * 1e7)
}

/// CPU time between two `cpu_now` readings: the precise sum, unless the coarse count
/// (which includes threads that exited in between) is clearly larger.
fn cpu_between(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (fine, coarse) = (b.0 - a.0, b.1 - a.1);
    // Two ticks of rounding on each reading.
    if fine > 0.0 && coarse <= fine + 4e7 {
        fine
    } else {
        coarse.max(fine)
    }
}

/// Run `f` (which does `n` operations) and return wall and CPU time per operation.
fn timed(n: usize, f: impl FnOnce()) -> Sample {
    let c = cpu_now();
    let t = Instant::now();
    f();
    let wall = t.elapsed().as_nanos() as f64 / n as f64;
    Sample {
        wall,
        cpu: cpu_between(c, cpu_now()) / n as f64,
    }
}

/// A started measurement: `Clock::start()`, then `per(n)` after `n` operations.
struct Clock {
    t: Instant,
    c: (f64, f64),
}

impl Clock {
    fn start() -> Clock {
        Clock {
            c: cpu_now(),
            t: Instant::now(),
        }
    }

    fn per(&self, n: usize) -> Sample {
        let wall = self.t.elapsed().as_nanos() as f64 / n as f64;
        Sample {
            wall,
            cpu: cpu_between(self.c, cpu_now()) / n as f64,
        }
    }
}

/// Warm up once, then measure once (what a child process does per round).
fn warm(mut f: impl FnMut() -> Sample) -> Sample {
    f();
    f()
}

fn current_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---------------------------------------------------------------------------------------
// Machine facts
// ---------------------------------------------------------------------------------------

struct Machine {
    cores: usize,
    online: usize,
    cpu: String,
    date: String,
    /// The 1-minute load average when the run started (other work on the machine).
    load: String,
}

impl Machine {
    fn probe() -> Machine {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = info
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or("unknown".into(), |s| s.trim().to_owned());
        let online = info
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(1);
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            online,
            cpu,
            date: utc_date(),
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
        }
    }

    fn pinned(&self) -> bool {
        self.cores == 1 && self.online > 1
    }
}

/// Today as `YYYY-MM-DD` (UTC), without a date crate.
fn utc_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

// ---------------------------------------------------------------------------------------
// 1. Same thread: call_soon + await vs LocalSet::spawn_local + await
// ---------------------------------------------------------------------------------------

fn s1_same_thread(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(20_000);
    let rt = current_thread_rt();
    let mut cs = [
        contender("call_soon", || {
            Caller::builder()
                .name("bench-same-thread")
                .block_on(async {
                    let me = Caller::current().expect("inside block_on");
                    let t = Clock::start();
                    for i in 0..n as u64 {
                        black_box(me.call_soon(move || i).await.expect("ok"));
                    }
                    t.per(n)
                })
                .expect("block_on")
        }),
        contender("call_soon_async", || {
            Caller::builder()
                .name("bench-same-thread")
                .block_on(async {
                    let me = Caller::current().expect("inside block_on");
                    let t = Clock::start();
                    for i in 0..n as u64 {
                        let p = me.call_soon_async(move || async move { i });
                        black_box(p.await.expect("ok"));
                    }
                    t.per(n)
                })
                .expect("block_on")
        }),
        contender("spawn_local", || {
            tokio::task::LocalSet::new().block_on(&rt, async {
                let t = Clock::start();
                for i in 0..n as u64 {
                    let h = tokio::task::spawn_local(async move { i });
                    black_box(h.await.expect("ok"));
                }
                t.per(n)
            })
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    let (sync, asy, peer) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    vec![
        Row {
            id: "1a",
            scenario: "same thread: schedule + await",
            ours: "`me.call_soon(f).await` (in `block_on`)",
            peer: "tokio `spawn_local(fut).await` (in a `LocalSet`)",
            unit: Unit::Time,
            ours_v: sync,
            peer_v: peer.clone(),
            target: Some(1.5),
            aim: None,
            cpu_target: None,
        },
        Row {
            id: "1b",
            scenario: "same thread: async job + await",
            ours: "`me.call_soon_async(f).await`",
            peer: "tokio `spawn_local(fut).await`",
            unit: Unit::Time,
            ours_v: asy,
            peer_v: peer,
            target: None,
            aim: None,
            cpu_target: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Peers for the cross-thread scenarios: a hand-built tokio loop, an actix-rt arbiter
// ---------------------------------------------------------------------------------------

type Job = (
    Box<dyn FnOnce() -> u64 + Send>,
    tokio::sync::oneshot::Sender<u64>,
);

/// A thread running a tokio current-thread runtime that runs each job it receives on an
/// unbounded mpsc and replies on the job's oneshot: the hand-built equivalent of a caller.
struct TokioLoop {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokioLoop {
    fn start() -> TokioLoop {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let thread = std::thread::spawn(move || {
            current_thread_rt().block_on(async move {
                while let Some((f, reply)) = rx.recv().await {
                    let _ = reply.send(f());
                }
            })
        });
        TokioLoop {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    fn call(
        &self,
        f: impl FnOnce() -> u64 + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<u64> {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let sent = self.tx.as_ref().map(|tx| tx.send((Box::new(f), otx)));
        assert!(matches!(sent, Some(Ok(()))), "the tokio loop is running");
        orx
    }
}

impl Drop for TokioLoop {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An actix-rt arbiter (a thread with a tokio current-thread runtime and a `LocalSet`).
struct Actix {
    arbiter: Option<actix_rt::Arbiter>,
}

impl Actix {
    fn start() -> Actix {
        Actix {
            arbiter: Some(actix_rt::Arbiter::new()),
        }
    }

    fn call(&self, v: u64) -> tokio::sync::oneshot::Receiver<u64> {
        let (otx, orx) = tokio::sync::oneshot::channel();
        let arb = self.arbiter.as_ref().expect("running");
        assert!(arb.spawn(async move {
            let _ = otx.send(black_box(v));
        }));
        orx
    }
}

impl Drop for Actix {
    fn drop(&mut self) {
        if let Some(a) = self.arbiter.take() {
            a.stop();
            let _ = a.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Each side in a process of its own
// ---------------------------------------------------------------------------------------
//
// A cross-thread contender runs in a child process of its own, one per round: the child
// sets up only its own side (our caller, or the peer's loop), runs the workload once to
// warm up and once measured, prints its sample, and exits. So the other side's threads do
// not exist while a contender is measured: our loops' spinning cannot keep the peer's core
// out of idle (making the peer's wake-ups cheap), and the peer's threads cannot slow ours.

const CHILD_ENV: &str = "CALLER_BENCH_CHILD";

/// A contender measured in a fresh child process per round (`scenario`/`name`/`n` tell
/// the child what to run).
fn in_child<'a>(scenario: &'static str, name: &'static str, n: usize) -> Contender<'a> {
    contender(name, move || run_child(scenario, name, n))
}

fn run_child(scenario: &str, name: &str, n: usize) -> Sample {
    let exe = std::env::current_exe().expect("the bench binary");
    let out = Command::new(exe)
        .env(CHILD_ENV, format!("{scenario}:{name}:{n}"))
        .output()
        .expect("the child process runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .map(|x| x.parse::<f64>());
    match (f.next(), f.next()) {
        (Some(Ok(wall)), Some(Ok(cpu))) if out.status.success() => Sample { wall, cpu },
        _ => panic!("child {scenario}:{name} failed: {out:?}"),
    }
}

/// The body of a child process: measure one contender, print `wall cpu`, exit at once
/// (no teardown: nothing of it is measured).
fn child_main(spec: &str) -> ! {
    let mut it = spec.splitn(3, ':');
    let (scenario, name, n) = (
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next()
            .and_then(|n| n.parse().ok())
            .expect("scenario:name:n"),
    );
    let _actix_system = actix_rt::System::new();
    let s = match scenario {
        "2" => c2_cross_thread(name, n),
        "3" => c3_async_requester(name, n),
        "4" => c4_to_thread(name, n),
        "5" => c5_queue_call(name, n),
        "7" => Sample {
            wall: memory_child(name, n),
            cpu: f64::NAN,
        },
        "8" => c8_cancel(name, n),
        "9a" => c9_spaced(name, n, SPACED_FAST),
        "9b" => c9_spaced(name, n, SPACED_SLOW),
        _ => panic!("no scenario {scenario}"),
    };
    println!("{} {}", s.wall, s.cpu);
    std::process::exit(0)
}

fn unknown(name: &str) -> ! {
    panic!("no contender {name}")
}

// ---------------------------------------------------------------------------------------
// 2. Cross-thread round trip from a plain thread
// ---------------------------------------------------------------------------------------

fn c2_cross_thread(name: &str, n: usize) -> Sample {
    match name {
        "caller" => {
            let target = Caller::new_thread("bench-target").expect("caller");
            warm(|| {
                timed(n, || {
                    for i in 0..n as u64 {
                        black_box(target.call_soon(move || i).wait_sync(None).expect("ok"));
                    }
                })
            })
        }
        "tokio" => {
            let tokio_loop = TokioLoop::start();
            warm(|| {
                timed(n, || {
                    for i in 0..n as u64 {
                        black_box(tokio_loop.call(move || i).blocking_recv().expect("ok"));
                    }
                })
            })
        }
        "actix" => {
            let actix = Actix::start();
            warm(|| {
                timed(n, || {
                    for i in 0..n as u64 {
                        black_box(actix.call(i).blocking_recv().expect("ok"));
                    }
                })
            })
        }
        _ => unknown(name),
    }
}

fn s2_cross_thread(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(4_000);
    let mut cs = [
        in_child("2", "caller", n),
        in_child("2", "tokio", n),
        in_child("2", "actix", n),
    ];
    let mut v = measure(cfg, &mut cs, false).into_iter();
    let (ours, tok, act) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    vec![
        Row {
            id: "2a",
            scenario: "cross-thread round trip, plain thread waits",
            ours: "`call_soon(f).wait_sync(None)`",
            peer: "hand-built tokio loop: unbounded mpsc + oneshot `blocking_recv`",
            unit: Unit::Time,
            ours_v: ours.clone(),
            peer_v: tok,
            target: Some(1.0),
            aim: Some(0.6),
            cpu_target: Some(1.5),
        },
        Row {
            id: "2b",
            scenario: "cross-thread round trip, plain thread waits",
            ours: "`call_soon(f).wait_sync(None)`",
            peer: "actix-rt `Arbiter::spawn` + oneshot `blocking_recv`",
            unit: Unit::Time,
            ours_v: ours,
            peer_v: act,
            target: Some(1.0),
            aim: Some(0.6),
            cpu_target: Some(1.5),
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 3. Cross-thread round trip from an async requester (a tokio runtime)
// ---------------------------------------------------------------------------------------

fn c3_async_requester(name: &str, n: usize) -> Sample {
    let rt = current_thread_rt();
    match name {
        "caller" => {
            let target = Caller::new_thread("bench-target").expect("caller");
            warm(|| {
                rt.block_on(async {
                    let t = Clock::start();
                    for i in 0..n as u64 {
                        black_box(target.call_soon(move || i).await.expect("ok"));
                    }
                    t.per(n)
                })
            })
        }
        "tokio" => {
            let tokio_loop = TokioLoop::start();
            warm(|| {
                rt.block_on(async {
                    let t = Clock::start();
                    for i in 0..n as u64 {
                        black_box(tokio_loop.call(move || i).await.expect("ok"));
                    }
                    t.per(n)
                })
            })
        }
        "actix" => {
            let actix = Actix::start();
            warm(|| {
                rt.block_on(async {
                    let t = Clock::start();
                    for i in 0..n as u64 {
                        black_box(actix.call(i).await.expect("ok"));
                    }
                    t.per(n)
                })
            })
        }
        _ => unknown(name),
    }
}

fn s3_async_requester(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(4_000);
    let mut cs = [
        in_child("3", "caller", n),
        in_child("3", "tokio", n),
        in_child("3", "actix", n),
    ];
    let mut v = measure(cfg, &mut cs, false).into_iter();
    let (ours, tok, act) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    vec![
        Row {
            id: "3a",
            scenario: "cross-thread round trip, a tokio task awaits",
            ours: "`call_soon(f).await`",
            peer: "hand-built tokio loop: unbounded mpsc + oneshot `.await`",
            unit: Unit::Time,
            ours_v: ours.clone(),
            peer_v: tok,
            target: Some(1.0),
            aim: Some(0.6),
            cpu_target: Some(1.5),
        },
        Row {
            id: "3b",
            scenario: "cross-thread round trip, a tokio task awaits",
            ours: "`call_soon(f).await`",
            peer: "actix-rt `Arbiter::spawn` + oneshot `.await`",
            unit: Unit::Time,
            ours_v: ours,
            peer_v: act,
            target: Some(1.0),
            aim: Some(0.6),
            cpu_target: Some(1.5),
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 4. to_thread round trip
// ---------------------------------------------------------------------------------------

fn c4_to_thread(name: &str, n: usize) -> Sample {
    let rt = current_thread_rt();
    match name {
        "to_thread" => warm(|| {
            rt.block_on(async {
                let t = Clock::start();
                for i in 0..n as u64 {
                    black_box(caller::to_thread(move || i).await.expect("ok"));
                }
                t.per(n)
            })
        }),
        "spawn_blocking" => warm(|| {
            rt.block_on(async {
                let t = Clock::start();
                for i in 0..n as u64 {
                    let h = tokio::task::spawn_blocking(move || i);
                    black_box(h.await.expect("ok"));
                }
                t.per(n)
            })
        }),
        "spawn_pinned" => {
            let pool = tokio_util::task::LocalPoolHandle::new(1);
            warm(|| {
                rt.block_on(async {
                    let t = Clock::start();
                    for i in 0..n as u64 {
                        let h = pool.spawn_pinned(move || async move { i });
                        black_box(h.await.expect("ok"));
                    }
                    t.per(n)
                })
            })
        }
        _ => unknown(name),
    }
}

fn s4_to_thread(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(4_000);
    let mut cs = [
        in_child("4", "to_thread", n),
        in_child("4", "spawn_blocking", n),
        in_child("4", "spawn_pinned", n),
    ];
    let mut v = measure(cfg, &mut cs, false).into_iter();
    let (ours, blocking, pinned) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    vec![
        Row {
            id: "4a",
            scenario: "worker-pool round trip, a tokio task awaits",
            ours: "`caller::to_thread(f).await`",
            peer: "tokio `spawn_blocking(f).await`",
            unit: Unit::Time,
            ours_v: ours.clone(),
            peer_v: blocking,
            target: Some(1.0),
            aim: Some(0.6),
            cpu_target: Some(1.5),
        },
        Row {
            id: "4b",
            scenario: "worker-pool round trip, a tokio task awaits",
            ours: "`caller::to_thread(f).await`",
            peer: "tokio-util `LocalPoolHandle::spawn_pinned` (1 worker)",
            unit: Unit::Time,
            ours_v: ours,
            peer_v: pinned,
            target: None,
            aim: None,
            cpu_target: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 5. queue_call throughput
// ---------------------------------------------------------------------------------------

static SINK: AtomicU64 = AtomicU64::new(0);

/// The work of one queued call (the same for both sides).
fn work(x: u64) {
    SINK.fetch_add(black_box(x), Ordering::Relaxed);
}

enum QMsg {
    Item(u64),
    Flush(tokio::sync::oneshot::Sender<()>),
}

fn c5_queue_call(name: &str, n: usize) -> Sample {
    match name {
        "queue_call" => {
            let target = Caller::new_thread("bench-queue").expect("caller");
            warm(|| {
                timed(n, || {
                    for i in 0..n as u64 {
                        target.queue_call(work, i).expect("queued");
                    }
                    target.call_soon(|| ()).wait_sync(None).expect("flushed");
                })
            })
        }
        "mpsc consumer" => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<QMsg>();
            std::thread::spawn(move || {
                current_thread_rt().block_on(async move {
                    while let Some(m) = rx.recv().await {
                        match m {
                            QMsg::Item(x) => work(x),
                            QMsg::Flush(done) => {
                                let _ = done.send(());
                            }
                        }
                    }
                })
            });
            warm(|| {
                timed(n, || {
                    for i in 0..n as u64 {
                        assert!(tx.send(QMsg::Item(i)).is_ok());
                    }
                    let (dtx, drx) = tokio::sync::oneshot::channel();
                    assert!(tx.send(QMsg::Flush(dtx)).is_ok());
                    drx.blocking_recv().expect("flushed");
                })
            })
        }
        _ => unknown(name),
    }
}

fn s5_queue_call(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(1_000_000);
    let mut cs = [
        in_child("5", "queue_call", n),
        in_child("5", "mpsc consumer", n),
    ];
    let mut v = measure(cfg, &mut cs, false).into_iter();
    vec![Row {
        id: "5",
        scenario: "queue throughput, 1,000,000 sync calls from one thread, time per call",
        ours: "`queue_call(work, x)` ×N, then one `call_soon` barrier",
        peer: "tokio current-thread consumer of an unbounded mpsc ×N, then a flush",
        unit: Unit::Time,
        ours_v: v.next().unwrap(),
        peer_v: v.next().unwrap(),
        target: Some(1.0),
        aim: None,
        cpu_target: None,
    }]
}

// ---------------------------------------------------------------------------------------
// 6. A group of 1,000 members
// ---------------------------------------------------------------------------------------

const MEMBERS: u64 = 1_000;

fn s6_group(cfg: &Cfg) -> Vec<Row> {
    let groups = cfg.n(20);
    let rt = current_thread_rt();
    let in_caller = |grouped: bool| {
        Caller::builder()
            .name("bench-group")
            .block_on(async {
                let me = Caller::current().expect("inside block_on");
                let t = Clock::start();
                for _ in 0..groups {
                    let body = async {
                        let ps: Vec<Pending<u64>> =
                            (0..MEMBERS).map(|i| me.call_soon(move || i)).collect();
                        for p in ps {
                            black_box(p.await.expect("ok"));
                        }
                    };
                    if grouped {
                        let g = PendingGroup::new(GroupMode::default());
                        g.run(body).await.expect("group").expect("body ran");
                    } else {
                        body.await;
                    }
                }
                t.per(groups)
            })
            .expect("block_on")
    };
    let mut cs = [
        contender("group", || in_caller(true)),
        contender("direct", || in_caller(false)),
        contender("JoinSet", || {
            tokio::task::LocalSet::new().block_on(&rt, async {
                let t = Clock::start();
                for _ in 0..groups {
                    let mut set = tokio::task::JoinSet::new();
                    for i in 0..MEMBERS {
                        set.spawn_local(async move { i });
                    }
                    while let Some(r) = set.join_next().await {
                        black_box(r.expect("ok"));
                    }
                }
                t.per(groups)
            })
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    let (group, direct, joinset) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    vec![
        Row {
            id: "6a",
            scenario: "1,000 same-thread calls in a group, time per group",
            ours: "`PendingGroup::run` around them",
            peer: "ours, awaiting the same 1,000 pendings directly",
            unit: Unit::Time,
            ours_v: group.clone(),
            peer_v: direct,
            target: Some(1.2),
            aim: None,
            cpu_target: None,
        },
        Row {
            id: "6b",
            scenario: "1,000 same-thread calls in a group, time per group",
            ours: "`PendingGroup::run` around them",
            peer: "tokio `JoinSet::spawn_local` ×1,000 + `join_next`",
            unit: Unit::Time,
            ours_v: group,
            peer_v: joinset,
            target: None,
            aim: None,
            cpu_target: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 7. Memory per in-flight call (measured in a child process, so that the heap is fresh)
// ---------------------------------------------------------------------------------------

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Resident set size in bytes (`/proc/self/statm`, second field, in 4 KiB pages).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// The parked future: counts its first poll, then never finishes.
async fn parked() {
    STARTED.fetch_add(1, Ordering::Relaxed);
    std::future::pending::<()>().await
}

/// Child process body: park `n` calls, return the RSS growth per call.
fn memory_child(which: &str, n: usize) -> f64 {
    let per_task = match which {
        "ours" => Caller::builder()
            .name("bench-memory")
            .block_on(async {
                let me = Caller::current().expect("inside block_on");
                let before = rss_bytes();
                let held: Vec<Pending<()>> = (0..n).map(|_| me.call_soon_async(parked)).collect();
                while STARTED.load(Ordering::Relaxed) < n {
                    tokio::task::yield_now().await;
                }
                let grown = rss_bytes().saturating_sub(before);
                black_box(&held);
                grown as f64 / n as f64
            })
            .expect("block_on"),
        _ => tokio::task::LocalSet::new().block_on(&current_thread_rt(), async {
            let before = rss_bytes();
            let held: Vec<tokio::task::JoinHandle<()>> =
                (0..n).map(|_| tokio::task::spawn_local(parked())).collect();
            while STARTED.load(Ordering::Relaxed) < n {
                tokio::task::yield_now().await;
            }
            let grown = rss_bytes().saturating_sub(before);
            black_box(&held);
            grown as f64 / n as f64
        }),
    };
    per_task
}

fn s7_memory(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(100_000);
    let mut cs = [in_child("7", "ours", n), in_child("7", "tokio", n)];
    let mut v = measure(cfg, &mut cs, false).into_iter();
    vec![Row {
        id: "7",
        scenario: "memory per in-flight call: 100,000 parked calls, RSS growth / call",
        ours: "`me.call_soon_async(f)` ×N, `Pending`s held",
        peer: "tokio `spawn_local(fut)` ×N, `JoinHandle`s held",
        unit: Unit::Bytes,
        ours_v: v.next().unwrap(),
        peer_v: v.next().unwrap(),
        target: Some(1.5),
        aim: None,
        cpu_target: None,
    }]
}

// ---------------------------------------------------------------------------------------
// 8. Cancel latency
// ---------------------------------------------------------------------------------------

/// How long a parked call sits before it is cancelled: long enough for the loop running
/// it to go idle, so that the cancel pays the real wake-up.
const IDLE_BEFORE_CANCEL: Duration = Duration::from_micros(300);

fn wait_started(want: usize) {
    while STARTED.load(Ordering::Acquire) < want {
        std::thread::yield_now();
    }
}

fn c8_cancel(name: &str, n: usize) -> Sample {
    match name {
        "cancel" => {
            let target = Caller::new_thread("bench-cancel").expect("caller");
            warm(|| {
                let mut total = Duration::ZERO;
                let c = cpu_now();
                for _ in 0..n {
                    let want = STARTED.load(Ordering::Acquire) + 1;
                    let p = target.call_soon_async(parked);
                    wait_started(want);
                    std::thread::sleep(IDLE_BEFORE_CANCEL);
                    let t = Instant::now();
                    p.cancel("bench");
                    p.wait_done_sync(None).expect("done");
                    total += t.elapsed();
                }
                Sample {
                    wall: total.as_nanos() as f64 / n as f64,
                    cpu: cpu_between(c, cpu_now()) / n as f64,
                }
            })
        }
        "abort" => {
            let rt = Arc::new(current_thread_rt());
            let (_stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            {
                let rt = rt.clone();
                std::thread::spawn(move || rt.block_on(stop_rx));
            }
            warm(|| {
                let mut total = Duration::ZERO;
                let c = cpu_now();
                for _ in 0..n {
                    let want = STARTED.load(Ordering::Acquire) + 1;
                    let h = rt.spawn(parked());
                    wait_started(want);
                    std::thread::sleep(IDLE_BEFORE_CANCEL);
                    let t = Instant::now();
                    h.abort();
                    let res = futures::executor::block_on(h);
                    total += t.elapsed();
                    assert!(res.expect_err("aborted").is_cancelled());
                }
                Sample {
                    wall: total.as_nanos() as f64 / n as f64,
                    cpu: cpu_between(c, cpu_now()) / n as f64,
                }
            })
        }
        _ => unknown(name),
    }
}

fn s8_cancel(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(400);
    let mut cs = [in_child("8", "cancel", n), in_child("8", "abort", n)];
    let mut v = measure(cfg, &mut cs, false).into_iter();
    vec![Row {
        id: "8",
        scenario: "cancel latency: parked call on an idle loop, cancelled from another thread",
        ours: "`cancel()` then `wait_done_sync` until done",
        peer: "tokio `JoinHandle::abort()` then await the handle",
        unit: Unit::Time,
        ours_v: v.next().unwrap(),
        peer_v: v.next().unwrap(),
        target: None,
        aim: None,
        cpu_target: None,
    }]
}

// ---------------------------------------------------------------------------------------
// 9. Spaced-out calls: one call every 200 µs or every 2 ms from another thread
// ---------------------------------------------------------------------------------------
//
// Latency is the time from scheduling a call to having its result, per call; CPU is the
// whole process's CPU time over the run (the sleeping requester included, the same on both
// sides) divided by the calls. This is where a spin before parking cannot pay: each call
// finds the loop idle, and any spinning shows as CPU per call.

const SPACED_FAST: Duration = Duration::from_micros(200);
const SPACED_SLOW: Duration = Duration::from_millis(2);

/// Call `call` `n` times, one every `period` (sleeping to the next deadline in between).
fn spaced(n: usize, period: Duration, mut call: impl FnMut(u64)) -> Sample {
    let mut total = Duration::ZERO;
    let c = cpu_now();
    let start = Instant::now();
    for i in 0..n as u64 {
        let due = start + period * (i as u32 + 1);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = Instant::now();
        call(i);
        total += t.elapsed();
    }
    Sample {
        wall: total.as_nanos() as f64 / n as f64,
        cpu: cpu_between(c, cpu_now()) / n as f64,
    }
}

fn c9_spaced(name: &str, n: usize, period: Duration) -> Sample {
    match name {
        "caller" => {
            let target = Caller::new_thread("bench-spaced").expect("caller");
            warm(|| {
                spaced(n, period, |i| {
                    black_box(target.call_soon(move || i).wait_sync(None).expect("ok"));
                })
            })
        }
        "tokio" => {
            let tokio_loop = TokioLoop::start();
            warm(|| {
                spaced(n, period, |i| {
                    black_box(tokio_loop.call(move || i).blocking_recv().expect("ok"));
                })
            })
        }
        _ => unknown(name),
    }
}

fn s9_spaced(cfg: &Cfg) -> Vec<Row> {
    let mut rows = Vec::new();
    for (id, n, scenario) in [
        (
            "9a",
            cfg.n(1_000),
            "spaced-out calls, one every 200 µs from a plain thread: latency and CPU per call",
        ),
        (
            "9b",
            cfg.n(200),
            "spaced-out calls, one every 2 ms from a plain thread: latency and CPU per call",
        ),
    ] {
        let mut cs = [in_child(id, "caller", n), in_child(id, "tokio", n)];
        let mut v = measure(cfg, &mut cs, false).into_iter();
        rows.push(Row {
            id,
            scenario,
            ours: "`call_soon(f).wait_sync(None)`",
            peer: "hand-built tokio loop: unbounded mpsc + oneshot `blocking_recv`",
            unit: Unit::Time,
            ours_v: v.next().unwrap(),
            peer_v: v.next().unwrap(),
            target: Some(1.0),
            aim: None,
            cpu_target: Some(1.1),
        });
    }
    rows
}

// ---------------------------------------------------------------------------------------
// The book page
// ---------------------------------------------------------------------------------------

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/book/src/performance.md");

fn section_key(m: &Machine) -> &'static str {
    if m.pinned() {
        "one-core"
    } else {
        "all-cores"
    }
}

/// Replace the text between `<!-- BEGIN key -->` and `<!-- END key -->` in the page.
fn write_page(key: &str, body: &str) -> std::io::Result<()> {
    let page = std::fs::read_to_string(PAGE)?;
    let (begin, end) = (
        format!("<!-- BEGIN {key} -->"),
        format!("<!-- END {key} -->"),
    );
    let (Some(b), Some(e)) = (page.find(&begin), page.find(&end)) else {
        return Err(std::io::Error::other(format!(
            "the page has no `{begin}` … `{end}` markers"
        )));
    };
    let mut out = String::with_capacity(page.len() + body.len());
    out.push_str(&page[..b + begin.len()]);
    out.push('\n');
    out.push_str(body);
    out.push_str(&page[e..]);
    std::fs::write(PAGE, out)
}

type Scenario = fn(&Cfg) -> Vec<Row>;

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_main(&spec);
    }
    let cfg = Cfg::from_env();
    let m = Machine::probe();
    let mut rows = Vec::new();
    let scenarios: [(&str, Scenario); 9] = [
        ("1", s1_same_thread),
        ("2", s2_cross_thread),
        ("3", s3_async_requester),
        ("4", s4_to_thread),
        ("5", s5_queue_call),
        ("6", s6_group),
        ("7", s7_memory),
        ("8", s8_cancel),
        ("9", s9_spaced),
    ];
    let mut seconds = BTreeMap::new();
    for (id, run) in scenarios {
        if cfg.wants(id) {
            let t = Instant::now();
            eprintln!("scenario {id} …");
            rows.extend(run(&cfg));
            seconds.insert(id, t.elapsed().as_secs_f64());
        }
    }
    let command = if m.pinned() {
        "taskset -c 0 cargo bench --bench compare"
    } else {
        "cargo bench --bench compare"
    };
    let body = format!(
        "Measured {date} on {cpu}, **{cores} core(s) available** to the run ({online} \
         online){pin}; load average {load} at the start; {rounds} rounds per scenario; \
         `{command}`.\n\n{table}",
        date = m.date,
        load = m.load,
        cpu = m.cpu,
        cores = m.cores,
        online = m.online,
        pin = if m.pinned() {
            ", every thread pinned to one core"
        } else {
            ""
        },
        rounds = cfg.rounds,
        table = table(&rows),
    );
    println!("\n{body}");
    eprintln!("seconds per scenario: {seconds:?}");
    let write = !cfg.quick
        && cfg.only.is_none()
        && cfg.contender.is_none()
        && std::env::var_os("NO_WRITE").is_none();
    if write {
        match write_page(section_key(&m), &body) {
            Ok(()) => eprintln!("written to {PAGE} ({})", section_key(&m)),
            Err(e) => eprintln!("cannot write {PAGE}: {e}"),
        }
    }
}
