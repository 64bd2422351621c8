//! Fault injection: a panic at every place where user code runs or user data is dropped —
//! a called function, its closure, its value, its future, a done callback, a queue body,
//! a group body, a member failing as its group exits — and a stop with much work in
//! flight. None may kill a caller, lose a pending, or hang a stop; every outcome says
//! what happened.

mod support;

use support::{occupy, survives, PanicOnDrop};

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use caller::{job, AnyPending, Backend, Caller, CallerState, Error, GroupMode, PendingGroup};
use support::{recv, LIMIT};

/// A future that is ready at once and panics when dropped afterwards.
struct ReadyThenPanic {
    _guard: PanicOnDrop,
}

impl Future for ReadyThenPanic {
    type Output = u8;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u8> {
        Poll::Ready(7)
    }
}

/// The error `p` ended with, waiting for it within the limit.
fn outcome(p: &AnyPending, what: &str) -> Error {
    support::done(p, what);
    p.error()
        .unwrap_or_else(|| panic!("{what}: ended with a value, an error was expected"))
}

fn assert_panicked(p: &AnyPending, what: &str, message: &str) {
    let err = outcome(p, what);
    assert!(err.is_panic(), "{what}: {err}");
    assert!(err.to_string().contains(message), "{what}: {err}");
}

fn assert_cancelled_noting(p: &AnyPending, what: &str, note: &str) {
    let err = outcome(p, what);
    assert!(err.is_cancelled(), "{what}: {err}");
    assert!(
        err.to_string().contains(note),
        "{what}: the outcome does not say `{note}`: {err}"
    );
}

fn panics_in_called_functions(c: &Caller) {
    let sync = c.call_soon(|| -> u8 { panic!("sync body") });
    let not_sync = c.call_soon_async(|| async { panic!("async body") });
    let building = c.call_soon(job::future(|| -> std::future::Ready<u8> {
        panic!("building the future")
    }));
    let later = c.call_later(Duration::from_millis(1), || -> u8 {
        panic!("delayed body")
    });
    let later_async = c.call_later_async(Duration::from_millis(1), || async {
        panic!("delayed async body")
    });
    let fallible = c.call_soon(job::try_sync(|| -> Result<u8, &str> { panic!("try body") }));
    c.call_direct(|| panic!("direct body")).unwrap();
    assert_panicked(&sync, "a sync call", "sync body");
    assert_panicked(&not_sync, "an async call", "async body");
    assert_panicked(
        &building,
        "a call building its future",
        "building the future",
    );
    assert_panicked(&later, "a delayed call", "delayed body");
    assert_panicked(&later_async, "a delayed async call", "delayed async body");
    assert_panicked(&fallible, "a fallible call", "try body");
}

#[test]
fn a_panic_in_a_called_function_is_its_outcome_and_the_caller_goes_on() {
    let c = Caller::new_thread("fault-body").unwrap();
    panics_in_called_functions(&c);
    let pooled = caller::to_thread(|| -> u8 { panic!("pooled body") });
    assert_panicked(&pooled, "a pooled call", "pooled body");
    survives(&c);
}

/// Inject a panicking `Drop` at every point where the library drops user data on `c`'s
/// thread, and check each outcome. `pump` drives the loop when `c` is a host caller (which
/// runs nothing between pumps); a caller on its own thread is `occupied` while calls must
/// stay unstarted.
fn panicking_drops(c: &Caller, pump: &dyn Fn(&str, &dyn Fn() -> bool), occupied: bool) {
    // Detached results: nobody takes the value, the caller's thread drops it.
    drop(c.call_soon(|| PanicOnDrop("detached sync result")));
    drop(c.call_soon_async(|| async { PanicOnDrop("detached async result") }));
    drop(c.call_later(Duration::from_millis(1), || {
        PanicOnDrop("detached delayed result")
    }));
    // A future that returns, then panics when dropped: the call panicked.
    let ready_then_panic = c.call_soon(job::future(|| ReadyThenPanic {
        _guard: PanicOnDrop("dropped after it returned"),
    }));
    pump("the ready future", &|| ready_then_panic.done());
    assert_panicked(
        &ready_then_panic,
        "a future panicking in Drop after it returned",
        "dropped after it returned",
    );
    // Closures cancelled before they start (never run; dropped on the caller's thread).
    let gate = occupied.then(|| occupy(c));
    let unstarted: Vec<AnyPending> = vec![
        {
            let g = PanicOnDrop("unstarted sync closure");
            c.call_soon(move || drop(g)).any()
        },
        {
            let g = PanicOnDrop("unstarted async closure");
            c.call_soon_async(move || async move { drop(g) }).any()
        },
        {
            let g = PanicOnDrop("unstarted delayed closure");
            c.call_later(Duration::from_millis(1), move || drop(g))
                .any()
        },
        {
            let g = PanicOnDrop("unstarted delayed async closure");
            c.call_later_async(Duration::from_millis(1), move || async move { drop(g) })
                .any()
        },
    ];
    for p in &unstarted {
        assert!(p.cancel("before it starts"));
        assert!(
            p.done(),
            "a call cancelled before it starts is done at once"
        );
    }
    if let Some((occupying, go)) = gate {
        go.send(()).unwrap();
        support::done(&occupying, "the occupying call");
    }
    let after = c.call_soon(|| ());
    pump("a call after the unstarted ones", &|| after.done());
    // Futures dropped by a cancel while they run: the outcome says their Drop panicked.
    let (started_tx, started_rx) = mpsc::channel();
    let running = c.call_soon_async(move || async move {
        let _g = PanicOnDrop("a running future");
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    pump("the running future starting", &|| {
        started_rx.try_recv().is_ok()
    });
    running.cancel("cancelled by the test");
    pump("the cancelled future", &|| running.done());
    assert_cancelled_noting(
        &running,
        "a future panicking in Drop on cancel",
        "the future panicked while being dropped: a running future",
    );
}

#[test]
fn a_panicking_drop_anywhere_never_kills_a_caller() {
    let c = Caller::new_thread("fault-drop").unwrap();
    panicking_drops(&c, &|what, done| support::eventually(what, done), true);
    // A value discarded because its sync call was cancelled while it ran.
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let discarded = c.call_soon(move || {
        started_tx.send(()).unwrap();
        let _ = go_rx.recv_timeout(LIMIT);
        PanicOnDrop("a discarded value")
    });
    recv(&started_rx, "the sync call starting");
    discarded.cancel("cancelled while it runs");
    go_tx.send(()).unwrap();
    assert_cancelled_noting(
        &discarded.any(),
        "a discarded value panicking in Drop",
        "the discarded value panicked while being dropped: a discarded value",
    );
    survives(&c);
}

#[test]
fn a_panicking_drop_anywhere_never_unwinds_into_a_host_loop() {
    let (woken_tx, woken) = mpsc::channel();
    let host = Caller::builder()
        .name("fault-host")
        .backend(Backend::Host)
        .host(move || {
            let _ = woken_tx.send(());
        })
        .unwrap();
    let c = host.caller().clone();
    let pump = |what: &str, done: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !done() {
            assert!(
                start.elapsed() < LIMIT,
                "within {LIMIT:?}: {what} did not happen"
            );
            if host.pump() == 0 {
                let _ = woken.recv_timeout(Duration::from_millis(20));
            }
        }
    };
    let injected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        panicking_drops(&c, &pump, false);
        let later = c.call_soon(|| 1);
        pump("a later call", &|| later.done());
    }));
    if let Err(payload) = injected {
        // The loop may be broken: dropping it could pump for ever.
        std::mem::forget(host);
        std::panic::resume_unwind(payload);
    }
    assert!(c.running());
    drop(host);
    assert_eq!(c.state(), CallerState::Stopped);
}

#[test]
fn a_stop_with_panicking_drops_finishes_every_call_and_says_why() {
    let c = Caller::new_thread("fault-stop").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let running = c.call_soon_async(move || async move {
        let _g = PanicOnDrop("running when the caller stopped");
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    recv(&started_rx, "the async call starting");
    let g = PanicOnDrop("delayed when the caller stopped");
    let delayed = c.call_later(Duration::from_secs(3600), move || drop(g));
    let (occupied, go) = occupy(&c);
    let g = PanicOnDrop("queued when the caller stopped");
    let queued = c.call_soon(move || drop(g));
    let stop = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.stop(true)));
    assert!(stop.is_ok(), "stop() let a panic out");
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
    for (p, what, note) in [
        (
            running.any(),
            "a running future",
            "the future panicked while being dropped: running when the caller stopped",
        ),
        (
            delayed.any(),
            "a delayed closure",
            "the closure panicked while being dropped: delayed when the caller stopped",
        ),
        (
            queued.any(),
            "a queued closure",
            "the closure panicked while being dropped: queued when the caller stopped",
        ),
    ] {
        assert_cancelled_noting(&p, what, "caller 'fault-stop' stopped");
        assert_cancelled_noting(&p, what, note);
    }
    support::eventually("the caller stopping", || c.state() == CallerState::Stopped);
}

#[test]
fn a_panicking_done_callback_never_kills_the_caller() {
    let c = Caller::new_thread("fault-callback").unwrap();
    let (occupied, go) = occupy(&c);
    let p = c.call_soon(|| 3);
    let ran = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let ran = ran.clone();
        p.add_done_callback(move |_| {
            ran.lock().unwrap().push((i, std::thread::current().id()));
            if i == 1 {
                panic!("a done callback");
            }
        });
    }
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
    let mut p = p;
    assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), 3, "the outcome is kept");
    let ran = ran.lock().unwrap().clone();
    assert_eq!(
        ran.iter().map(|r| r.0).collect::<Vec<_>>(),
        [0, 1, 2],
        "the callbacks after the panicking one still ran"
    );
    assert!(ran.iter().all(|r| r.1 == c.thread().id()));
    survives(&c);
}

static QUEUE_LOG: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn queue_body(n: u32) {
    QUEUE_LOG.lock().unwrap().push(n);
    if n % 3 == 1 {
        panic!("queue body {n}");
    }
}

async fn async_queue_body(n: u32) {
    caller::sleep(Duration::from_millis(1)).await;
    QUEUE_LOG.lock().unwrap().push(100 + n);
    if n % 3 == 1 {
        panic!("async queue body {n}");
    }
}

fn holds_panicking_data(_: PanicOnDrop) {}

#[test]
fn a_panicking_queue_body_never_stops_its_queue_or_the_caller() {
    let c = Caller::new_thread("fault-queue").unwrap();
    for n in 0..6 {
        c.queue_call(queue_body, n).unwrap();
        c.queue_call_async(async_queue_body, n).unwrap();
    }
    support::eventually("every queued call running", || {
        QUEUE_LOG.lock().unwrap().len() == 12
    });
    let log = QUEUE_LOG.lock().unwrap().clone();
    let sync: Vec<u32> = log.iter().copied().filter(|n| *n < 100).collect();
    let not_sync: Vec<u32> = log.iter().copied().filter(|n| *n >= 100).collect();
    assert_eq!(sync, [0, 1, 2, 3, 4, 5], "the sync queue went on in order");
    assert_eq!(
        not_sync,
        [100, 101, 102, 103, 104, 105],
        "the async queue went on"
    );
    assert!(!c.queue_get(&queue_body).unwrap().done());
    // Arguments whose queue closed before they ran are dropped on the caller's thread.
    let (occupied, go) = occupy(&c);
    c.queue_call(
        holds_panicking_data,
        PanicOnDrop("a closed queue's argument"),
    )
    .unwrap();
    assert!(c.queue_close(&holds_panicking_data));
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
    survives(&c);
}

#[test]
fn a_panicking_group_body_cancels_its_members_and_spares_the_caller() {
    let c = Caller::new_thread("fault-group").unwrap();
    let members: Arc<Mutex<Vec<AnyPending>>> = Arc::default();
    let m = members.clone();
    let here = c.clone();
    let body = c.call_soon_async(move || async move {
        PendingGroup::new(GroupMode::IgnoreCancelled)
            .run(async move {
                let on_caller = here.call_soon_async(std::future::pending::<()>);
                let pooled = caller::to_thread_async(std::future::pending::<()>);
                m.lock().unwrap().extend([on_caller.any(), pooled.any()]);
                panic!("a group body");
            })
            .await
    });
    assert_panicked(&body.any(), "the call running the group", "a group body");
    for p in members.lock().unwrap().iter() {
        support::done(p, "a member of the panicked group");
        assert!(p.cancelled());
    }
    survives(&c);
}

#[test]
fn a_member_failing_while_its_group_exits_fails_the_group() {
    for round in 0..200 {
        let exit = Arc::new(Barrier::new(2));
        let member_view: Arc<Mutex<Option<AnyPending>>> = Arc::default();
        let (e, m) = (exit.clone(), member_view.clone());
        let out = futures::executor::block_on(PendingGroup::new(GroupMode::IgnoreCancelled).run(
            async move {
                let member = caller::to_thread(job::try_sync(move || {
                    e.wait();
                    Err::<(), _>("the member fails as the group exits")
                }));
                *m.lock().unwrap() = Some(member.any());
                drop(member);
                // The member fails while the body returns.
                exit.wait();
            },
        ));
        let member = member_view.lock().unwrap().clone().unwrap();
        assert!(
            member.done(),
            "round {round}: the group exited before its member"
        );
        let err = out.expect_err("the group exited without its member's failure");
        assert!(err.is_failure(), "round {round}: {err}");
        assert!(
            err.to_string()
                .contains("the member fails as the group exits"),
            "round {round}: {err}"
        );
    }
}

/// Sends, when dropped, the thread it is dropped on and whether its pending was done.
struct DropProbe {
    me: AnyPending,
    seen: mpsc::Sender<(ThreadId, bool)>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        let _ = self
            .seen
            .send((std::thread::current().id(), self.me.done()));
    }
}

#[test]
fn stop_with_ten_thousand_queued_and_a_hundred_running_finishes_every_one() {
    let c = Caller::new_thread("fault-busy-stop").unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let (seen_tx, seen_rx) = mpsc::channel();
    let running: Vec<AnyPending> = (0..100)
        .map(|_| {
            let (started, seen) = (started.clone(), seen_tx.clone());
            c.call_soon_async(move || async move {
                let _probe = DropProbe {
                    me: Caller::current_pending().unwrap(),
                    seen,
                };
                started.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            })
            .any()
        })
        .collect();
    drop(seen_tx);
    support::eventually("a hundred async calls running", || {
        started.load(Ordering::SeqCst) == 100
    });
    let caller_thread = c.thread().id();
    let (occupied, go) = occupy(&c);
    let queued: Vec<AnyPending> = (0..10_000u32)
        .map(|i| match i % 4 {
            0 => c.call_soon(move || i).any(),
            1 => c.call_soon_async(move || async move { i }).any(),
            2 => c.call_later(Duration::from_millis(1), move || i).any(),
            _ => c.call_soon(job::try_sync(move || Ok::<_, Error>(i))).any(),
        })
        .collect();
    // Queued calls and direct calls behind them: refused, never run.
    let ran = Arc::new(AtomicUsize::new(0));
    for _ in 0..500 {
        c.queue_call(count_run, ran.clone()).unwrap();
        let ran = ran.clone();
        c.call_direct(move || count_run(ran)).unwrap();
    }
    // Stopped from another thread while the caller is busy.
    let stopper = {
        let c = c.clone();
        std::thread::spawn(move || c.stop(false))
    };
    assert_eq!(stopper.join().unwrap(), CallerState::Stopping);
    go.send(()).unwrap();
    for p in queued.iter().chain(&running) {
        let err = outcome(p, "a call of the stopped caller");
        assert!(
            err.cancel_message()
                .is_some_and(|m| m.contains("caller 'fault-busy-stop' stopped")),
            "{err}"
        );
    }
    support::done(&occupied, "the occupying call");
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a refused call ran");
    for _ in 0..100 {
        let (thread, done) = recv(&seen_rx, "a running future being dropped");
        assert_eq!(thread, caller_thread, "a future was dropped off its thread");
        assert!(!done, "a pending was done before its future was dropped");
    }
    support::eventually("the caller stopping", || c.state() == CallerState::Stopped);
    assert!(
        Caller::get_existing(c.id()).is_none(),
        "the caller left the registry"
    );
}

fn count_run(ran: Arc<AtomicUsize>) {
    ran.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn dropping_a_host_loop_with_ten_thousand_queued_and_a_hundred_running_finishes_every_one() {
    let (woken_tx, woken) = mpsc::channel();
    let host = Caller::builder()
        .name("fault-busy-host")
        .backend(Backend::Host)
        .host(move || {
            let _ = woken_tx.send(());
        })
        .unwrap();
    let c = host.caller().clone();
    let started = Arc::new(AtomicUsize::new(0));
    let (seen_tx, seen_rx) = mpsc::channel();
    let running: Vec<AnyPending> = (0..100)
        .map(|_| {
            let (started, seen) = (started.clone(), seen_tx.clone());
            c.call_soon_async(move || async move {
                let _probe = DropProbe {
                    me: Caller::current_pending().unwrap(),
                    seen,
                };
                started.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            })
            .any()
        })
        .collect();
    drop(seen_tx);
    let start = std::time::Instant::now();
    while started.load(Ordering::SeqCst) < 100 {
        assert!(
            start.elapsed() < LIMIT,
            "a hundred async calls did not start"
        );
        if host.pump() == 0 {
            let _ = woken.recv_timeout(Duration::from_millis(20));
        }
    }
    // A host caller runs nothing between pumps: these stay queued.
    let queued: Vec<AnyPending> = (0..10_000u32)
        .map(|i| match i % 3 {
            0 => c.call_soon(move || i).any(),
            1 => c.call_soon_async(move || async move { i }).any(),
            _ => c.call_later(Duration::from_millis(1), move || i).any(),
        })
        .collect();
    drop(host);
    assert_eq!(c.state(), CallerState::Stopped);
    for p in queued.iter().chain(&running) {
        assert!(p.done(), "a pending of the stopped host caller is not done");
        let err = p.error().unwrap();
        assert!(
            err.cancel_message()
                .is_some_and(|m| m.contains("caller 'fault-busy-host' stopped")),
            "{err}"
        );
    }
    for _ in 0..100 {
        let (thread, done) = recv(&seen_rx, "a running future being dropped");
        assert_eq!(
            thread,
            std::thread::current().id(),
            "a future was dropped off its thread"
        );
        assert!(!done, "a pending was done before its future was dropped");
    }
}

/// The text of every ERROR event logged in this process once [`capture_errors`] ran.
static ERRORS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Install (once) a global `tracing` subscriber that keeps every ERROR event's fields.
fn capture_errors() {
    struct Capture;
    struct Fields(String);
    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            use std::fmt::Write;
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }
    impl tracing::Subscriber for Capture {
        fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
            *meta.level() == tracing::Level::ERROR
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            ERRORS.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| tracing::subscriber::set_global_default(Capture).unwrap());
}

fn logged(what: &str, needle: &str) {
    support::eventually(what, || {
        ERRORS
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.contains("panicked in Drop") && e.contains(needle))
    });
}

#[test]
fn every_caught_drop_panic_is_logged() {
    capture_errors();
    let c = Caller::new_thread("fault-logged").unwrap();
    drop(c.call_soon(|| PanicOnDrop("logged: detached value")));
    logged(
        "the detached value's panic being logged",
        "logged: detached value",
    );
    let (started_tx, started_rx) = mpsc::channel();
    let running = c.call_soon_async(move || async move {
        let _g = PanicOnDrop("logged: cancelled future");
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    recv(&started_rx, "the async call starting");
    running.cancel("cancelled by the test");
    support::done(&running, "the cancelled call");
    logged(
        "the cancelled future's panic being logged",
        "logged: cancelled future",
    );
    let (occupied, go) = occupy(&c);
    let g = PanicOnDrop("logged: refused closure");
    let refused = c.call_soon(move || drop(g));
    c.stop(true);
    support::done(&refused, "the refused call");
    logged(
        "the refused closure's panic being logged",
        "logged: refused closure",
    );
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
}

/// Whether thread `tid` of this process is asleep (state `S` in its `/proc` stat line).
fn asleep(tid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state == 'S')
        })
        .unwrap_or(false)
}

#[test]
fn a_value_discarded_by_a_cancel_with_a_panicking_drop_still_wakes_the_waiters() {
    // A cancel asked of a pending whose producer finishes it: a value set afterwards is
    // discarded (the cancel wins). Its `Drop` panics: the panic is caught, and a thread
    // asleep waiting on the pending is woken all the same (it was not: the notification
    // came after the drop, which unwound past it).
    let p = caller::Pending::<PanicOnDrop>::new();
    p.set_canceller(|_| {});
    assert!(p.cancel("not needed"));
    let view = p.any();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let me = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
        let tid = me.file_name().unwrap().to_string_lossy().into_owned();
        tid_tx.send(tid).unwrap();
        done_tx.send(view.wait_done_sync(Some(LIMIT))).unwrap();
    });
    let tid = recv(&tid_rx, "the waiter's thread id");
    support::eventually("the waiter asleep on the pending", || asleep(&tid));
    let set = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.resolver().set_result(PanicOnDrop("the discarded value"))
    }));
    assert!(set.is_ok(), "the value's Drop panicked out of set_result");
    assert!(recv(&done_rx, "the waiter woken").is_ok());
    waiter.join().unwrap();
    assert!(p.cancelled(), "the cancel did not win");
}

#[test]
fn a_canceller_that_panics_during_a_groups_cancel_does_not_hold_the_group_open() {
    // Mode 1: a failing member cancels the group, which calls the other member's
    // canceller, which panics. The failed member still leaves the group's count: once
    // the other member ends, the group exits at once (it used to wait out its whole
    // cancellation timeout, one member short).
    let group = PendingGroup::builder()
        .mode(GroupMode::CancelAndRaise)
        .cancellation_timeout(Duration::from_secs(600))
        .build();
    let other = caller::Pending::<()>::new();
    other.set_canceller(|_| panic!("the canceller panics"));
    group.add(&other.any());
    let failing = caller::Pending::<()>::new();
    group.add(&failing.any());
    let (started_tx, started) = mpsc::channel();
    let (out_tx, out) = mpsc::channel();
    let g = group.clone();
    let runner = std::thread::spawn(move || {
        let run = g.run(async move {
            started_tx.send(()).unwrap();
        });
        out_tx.send(futures::executor::block_on(run)).unwrap();
    });
    recv(&started, "the group's body ran");
    assert!(failing.any().set_error(Error::failed("boom")));
    assert!(
        other.cancelled(),
        "the group's cancel did not reach the other member"
    );
    assert!(other.set_result(()));
    let err = recv(&out, "the group's exit").unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    runner.join().unwrap();
}
