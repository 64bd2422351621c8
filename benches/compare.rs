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
//! rounds (interleaved, so machine noise hits both alike) and reported as a ratio, two
//! scenarios are not timings at all (memory from a child process, latency of a cancel from
//! another thread), and the whole table is written into `book/src/performance.md`. A
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

/// One side of a comparison: runs one round, returns its metric (ns/op or bytes/task).
struct Contender<'a> {
    name: &'static str,
    run: Box<dyn FnMut() -> f64 + 'a>,
}

fn contender<'a>(name: &'static str, run: impl FnMut() -> f64 + 'a) -> Contender<'a> {
    Contender {
        name,
        run: Box::new(run),
    }
}

/// Run every contender once (warm-up), then `rounds` rounds; within a round every contender
/// runs once, in alternating order, so that drift of the machine hits all of them alike.
fn measure(cfg: &Cfg, cs: &mut [Contender<'_>], warmup: bool) -> Vec<Vec<f64>> {
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
                f64::NAN
            } else {
                (cs[i].run)()
            };
            out[i].push(v);
        }
    }
    for (c, v) in cs.iter().zip(&out) {
        eprintln!("  {:<16} median {:>12.0}", c.name, stats(v).0);
    }
    out
}

struct Row {
    id: &'static str,
    scenario: &'static str,
    ours: &'static str,
    peer: &'static str,
    unit: Unit,
    ours_v: Vec<f64>,
    peer_v: Vec<f64>,
    /// The issue's target for ours/peer, and the stretch aim if there is one.
    target: Option<f64>,
    aim: Option<f64>,
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

impl Row {
    fn ratios(&self) -> Vec<f64> {
        self.ours_v
            .iter()
            .zip(&self.peer_v)
            .map(|(o, p)| o / p)
            .collect()
    }

    fn cells(&self) -> Vec<String> {
        if self.ours_v.iter().chain(&self.peer_v).any(|v| v.is_nan()) {
            let mut cells = vec![
                self.id.to_owned(),
                self.scenario.to_owned(),
                self.ours.to_owned(),
                self.peer.to_owned(),
            ];
            cells.extend(std::iter::repeat_n("skipped".to_owned(), 5));
            return cells;
        }
        let (om, os) = stats(&self.ours_v);
        let (pm, ps) = stats(&self.peer_v);
        let (rm, rs) = stats(&self.ratios());
        // Judge the ratio as it is printed (two decimals).
        let rm = (rm * 100.0).round() / 100.0;
        let target = match (self.target, self.aim) {
            (Some(t), Some(a)) => format!("≤ {t} (aim ≤ {a})"),
            (Some(t), None) => format!("≤ {t}"),
            _ => "—".into(),
        };
        let verdict = match self.target {
            None => "info".to_owned(),
            Some(t) if rm <= t => match self.aim {
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
        vec![
            self.id.to_owned(),
            self.scenario.to_owned(),
            self.ours.to_owned(),
            self.peer.to_owned(),
            format!("{} ±{:.0}%", fmt_val(om, self.unit), os * 100.0),
            format!("{} ±{:.0}%", fmt_val(pm, self.unit), ps * 100.0),
            format!("**{rm:.2}** ±{:.0}%", rs * 100.0),
            target,
            verdict,
        ]
    }
}

fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| # | scenario | ours | peer | ours (median ±spread) | peer (median ±spread) \
         | ratio ours/peer | target | verdict |\n|---|---|---|---|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!("| {} |\n", r.cells().join(" | ")));
    }
    s
}

fn ns_per(t: Instant, n: usize) -> f64 {
    t.elapsed().as_nanos() as f64 / n as f64
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
                    let t = Instant::now();
                    for i in 0..n as u64 {
                        black_box(me.call_soon(move || i).await.expect("ok"));
                    }
                    ns_per(t, n)
                })
                .expect("block_on")
        }),
        contender("call_soon_async", || {
            Caller::builder()
                .name("bench-same-thread")
                .block_on(async {
                    let me = Caller::current().expect("inside block_on");
                    let t = Instant::now();
                    for i in 0..n as u64 {
                        let p = me.call_soon_async(move || async move { i });
                        black_box(p.await.expect("ok"));
                    }
                    ns_per(t, n)
                })
                .expect("block_on")
        }),
        contender("spawn_local", || {
            tokio::task::LocalSet::new().block_on(&rt, async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    let h = tokio::task::spawn_local(async move { i });
                    black_box(h.await.expect("ok"));
                }
                ns_per(t, n)
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

fn stop_caller(c: Caller) {
    c.stop(true);
    let _ = futures::executor::block_on(c.stopped());
}

// ---------------------------------------------------------------------------------------
// 2. Cross-thread round trip from a plain thread
// ---------------------------------------------------------------------------------------

fn s2_cross_thread(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(4_000);
    let target = Caller::new_thread("bench-target").expect("caller");
    let tokio_loop = TokioLoop::start();
    let actix = Actix::start();
    let mut cs = [
        contender("caller", || {
            let t = Instant::now();
            for i in 0..n as u64 {
                black_box(target.call_soon(move || i).wait_sync(None).expect("ok"));
            }
            ns_per(t, n)
        }),
        contender("tokio", || {
            let t = Instant::now();
            for i in 0..n as u64 {
                black_box(tokio_loop.call(move || i).blocking_recv().expect("ok"));
            }
            ns_per(t, n)
        }),
        contender("actix", || {
            let t = Instant::now();
            for i in 0..n as u64 {
                black_box(actix.call(i).blocking_recv().expect("ok"));
            }
            ns_per(t, n)
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    drop(cs);
    let (ours, tok, act) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    drop((tokio_loop, actix));
    stop_caller(target);
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
            aim: Some(0.2),
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
            aim: Some(0.2),
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 3. Cross-thread round trip from an async requester (a tokio runtime)
// ---------------------------------------------------------------------------------------

fn s3_async_requester(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(4_000);
    let target = Caller::new_thread("bench-target").expect("caller");
    let tokio_loop = TokioLoop::start();
    let actix = Actix::start();
    let rt = current_thread_rt();
    let mut cs = [
        contender("caller", || {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    black_box(target.call_soon(move || i).await.expect("ok"));
                }
                ns_per(t, n)
            })
        }),
        contender("tokio", || {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    black_box(tokio_loop.call(move || i).await.expect("ok"));
                }
                ns_per(t, n)
            })
        }),
        contender("actix", || {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    black_box(actix.call(i).await.expect("ok"));
                }
                ns_per(t, n)
            })
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    drop(cs);
    let (ours, tok, act) = (v.next().unwrap(), v.next().unwrap(), v.next().unwrap());
    drop((tokio_loop, actix));
    stop_caller(target);
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
            aim: None,
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
            aim: None,
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 4. to_thread round trip
// ---------------------------------------------------------------------------------------

fn s4_to_thread(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(4_000);
    let rt = current_thread_rt();
    let pool = tokio_util::task::LocalPoolHandle::new(1);
    let mut cs = [
        contender("to_thread", || {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    black_box(caller::to_thread(move || i).await.expect("ok"));
                }
                ns_per(t, n)
            })
        }),
        contender("spawn_blocking", || {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    let h = tokio::task::spawn_blocking(move || i);
                    black_box(h.await.expect("ok"));
                }
                ns_per(t, n)
            })
        }),
        contender("spawn_pinned", || {
            rt.block_on(async {
                let t = Instant::now();
                for i in 0..n as u64 {
                    let h = pool.spawn_pinned(move || async move { i });
                    black_box(h.await.expect("ok"));
                }
                ns_per(t, n)
            })
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    drop(cs);
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
            aim: None,
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

fn s5_queue_call(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(1_000_000);
    let target = Caller::new_thread("bench-queue").expect("caller");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<QMsg>();
    let consumer = std::thread::spawn(move || {
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
    let mut cs = [
        contender("queue_call", || {
            let t = Instant::now();
            for i in 0..n as u64 {
                target.queue_call(work, i).expect("queued");
            }
            target.call_soon(|| ()).wait_sync(None).expect("flushed");
            ns_per(t, n)
        }),
        contender("mpsc consumer", || {
            let t = Instant::now();
            for i in 0..n as u64 {
                assert!(tx.send(QMsg::Item(i)).is_ok());
            }
            let (dtx, drx) = tokio::sync::oneshot::channel();
            assert!(tx.send(QMsg::Flush(dtx)).is_ok());
            drx.blocking_recv().expect("flushed");
            ns_per(t, n)
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    drop(cs);
    drop(tx);
    let _ = consumer.join();
    stop_caller(target);
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
                let t = Instant::now();
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
                ns_per(t, groups)
            })
            .expect("block_on")
    };
    let mut cs = [
        contender("group", || in_caller(true)),
        contender("direct", || in_caller(false)),
        contender("JoinSet", || {
            tokio::task::LocalSet::new().block_on(&rt, async {
                let t = Instant::now();
                for _ in 0..groups {
                    let mut set = tokio::task::JoinSet::new();
                    for i in 0..MEMBERS {
                        set.spawn_local(async move { i });
                    }
                    while let Some(r) = set.join_next().await {
                        black_box(r.expect("ok"));
                    }
                }
                ns_per(t, groups)
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
        },
    ]
}

// ---------------------------------------------------------------------------------------
// 7. Memory per in-flight call (measured in a child process, so that the heap is fresh)
// ---------------------------------------------------------------------------------------

const CHILD_ENV: &str = "CALLER_BENCH_CHILD";
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

/// Child process body: park `n` calls, print the RSS growth per call, exit at once.
fn memory_child(which: &str, n: usize) -> ! {
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
    println!("{per_task}");
    std::process::exit(0)
}

fn run_memory_child(which: &str, n: usize) -> f64 {
    let exe = std::env::current_exe().expect("the bench binary");
    let out = Command::new(exe)
        .env(CHILD_ENV, format!("{which}:{n}"))
        .output()
        .expect("the memory child runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("memory child failed: {out:?}"))
}

fn s7_memory(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(100_000);
    let mut cs = [
        contender("ours", || run_memory_child("ours", n)),
        contender("tokio", || run_memory_child("tokio", n)),
    ];
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

fn s8_cancel(cfg: &Cfg) -> Vec<Row> {
    let n = cfg.n(400);
    let target = Caller::new_thread("bench-cancel").expect("caller");
    let rt = Arc::new(current_thread_rt());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.block_on(stop_rx))
    };
    let mut cs = [
        contender("cancel", || {
            let mut total = Duration::ZERO;
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
            total.as_nanos() as f64 / n as f64
        }),
        contender("abort", || {
            let mut total = Duration::ZERO;
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
            total.as_nanos() as f64 / n as f64
        }),
    ];
    let mut v = measure(cfg, &mut cs, true).into_iter();
    drop(cs);
    let _ = stop_tx.send(());
    let _ = driver.join();
    stop_caller(target);
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
    }]
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
        let (which, n) = spec.split_once(':').expect("which:n");
        memory_child(which, n.parse().expect("a count"));
    }
    let cfg = Cfg::from_env();
    let _actix_system = actix_rt::System::new();
    let m = Machine::probe();
    let mut rows = Vec::new();
    let scenarios: [(&str, Scenario); 8] = [
        ("1", s1_same_thread),
        ("2", s2_cross_thread),
        ("3", s3_async_requester),
        ("4", s4_to_thread),
        ("5", s5_queue_call),
        ("6", s6_group),
        ("7", s7_memory),
        ("8", s8_cancel),
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
