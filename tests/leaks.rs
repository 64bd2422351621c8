//! Nothing kept: each public operation, repeated many times, leaves the live heap where it
//! was (a counting global allocator, `support/alloc.rs`) and the thread count too.
//!
//! The tests of this file share one heap, so they run one at a time (`SERIAL`). Each warms
//! the operation up first (lazily made statics, the timer thread, pool workers, capacities
//! that grow once), then measures `N` more runs of it.

#[path = "support/alloc.rs"]
mod alloc;
mod support;

use std::sync::Mutex;
use std::time::Duration;

use caller::Caller;
use support::{thread_count, LIMIT};

static SERIAL: Mutex<()> = Mutex::new(());

/// Test threads waiting for `SERIAL`: the harness starts them while another test counts
/// threads, so the count leaves them out.
static WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Take `SERIAL`, counted in `WAITING` while blocked.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    WAITING.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    WAITING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    guard
}

/// This process's threads, less the test threads waiting for their turn.
fn our_threads() -> usize {
    thread_count().saturating_sub(WAITING.load(std::sync::atomic::Ordering::SeqCst))
}

/// Growth of the live heap tolerated after all the runs, whatever their number: room for
/// a capacity that doubles once. A leak of 8 bytes per run over 4,000 runs exceeds it.
const SLACK: isize = 24 * 1024;

/// Run `op` `warm` times, then `n` times more, and check that the `n` runs kept no memory
/// and no thread.
fn keeps_nothing(what: &str, warm: usize, n: usize, op: impl FnMut(usize)) {
    let _serial = serial();
    measure(what, warm, n, op);
}

/// [`keeps_nothing`] for a caller that holds `SERIAL` already.
fn measure(what: &str, warm: usize, n: usize, mut op: impl FnMut(usize)) {
    for i in 0..warm {
        op(i);
    }
    let threads = our_threads();
    // Let the memory freed by threads that are still exiting come back before the base
    // is taken; a base taken too high would hide a leak.
    let _ = alloc::settle(0, isize::MIN, Duration::from_millis(50));
    let base = alloc::live_bytes();
    for i in 0..n {
        op(warm + i);
    }
    if let Err(grown) = alloc::settle(base, SLACK, LIMIT) {
        panic!(
            "{what}: {n} runs kept {grown} bytes ({} per run) after {LIMIT:?}",
            grown / n as isize
        );
    }
    support::eventually(&format!("{what}: threads back to {threads}"), || {
        our_threads() <= threads
    });
}

#[test]
fn a_started_and_stopped_caller_keeps_no_memory() {
    keeps_nothing("Caller::new_thread + stop", 10, 200, |i| {
        let c = Caller::new_thread(format!("leak-{i}")).unwrap();
        c.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
        c.stop(true);
        futures::executor::block_on(c.stopped()).unwrap();
    });
}

#[test]
fn a_block_on_caller_keeps_no_memory() {
    keeps_nothing("CallerBuilder::block_on", 10, 200, |i| {
        std::thread::spawn(move || {
            let out = Caller::builder()
                .name(format!("leak-entry-{i}"))
                .block_on(async move {
                    let me = Caller::current().unwrap();
                    me.call_soon(move || i).await.unwrap()
                });
            assert_eq!(out.unwrap(), i);
        })
        .join()
        .unwrap();
    });
}

#[test]
fn a_host_caller_keeps_no_memory() {
    keeps_nothing("CallerBuilder::host + drop", 10, 200, |i| {
        std::thread::spawn(move || {
            let host = Caller::builder()
                .name(format!("leak-host-{i}"))
                .backend(caller::Backend::Host)
                .host(|| ())
                .unwrap();
            let mut p = host.caller().call_soon(move || i);
            support::eventually("the host call", || {
                host.pump();
                p.done()
            });
            assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), i);
            drop(host);
        })
        .join()
        .unwrap();
    });
}

/// A caller that lives for the whole file (made once, never stopped: its memory is part
/// of every base).
fn worker() -> Caller {
    static WORKER: std::sync::OnceLock<Caller> = std::sync::OnceLock::new();
    if let Some(w) = WORKER.get() {
        return w.clone();
    }
    // Its thread must not appear while another test counts threads.
    let _serial = serial();
    WORKER
        .get_or_init(|| Caller::new_thread("leak-worker").unwrap())
        .clone()
}

#[test]
fn call_soon_and_wait_keep_no_memory() {
    let w = worker();
    keeps_nothing("call_soon + wait_sync", 200, 4000, |i| {
        assert_eq!(w.call_soon(move || i).wait_sync(Some(LIMIT)).unwrap(), i);
    });
}

#[test]
fn async_calls_awaited_keep_no_memory() {
    let w = worker();
    keeps_nothing("call_soon_async + await", 200, 4000, |i| {
        let p = w.call_soon_async(move || async move {
            tokio::task::yield_now().await;
            i
        });
        assert_eq!(futures::executor::block_on(p).unwrap(), i);
    });
}

#[test]
fn detached_calls_keep_no_memory() {
    let w = worker();
    keeps_nothing("call_soon, handle dropped", 200, 4000, |i| {
        drop(w.call_soon(move || i));
        if i % 100 == 99 {
            // Everything queued before has run once this returns.
            w.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
        }
    });
    w.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
}

#[test]
fn cancels_keep_no_memory() {
    let w = worker();
    keeps_nothing("cancel: queued, delayed, running async", 200, 3000, |i| {
        let p = match i % 3 {
            0 => w.call_later(Duration::from_secs(3600), move || i),
            1 => w.call_soon_async(std::future::pending::<usize>),
            _ => w.call_soon(move || i),
        };
        p.cancel(format!("cancel {i}"));
        support::done(&p, "the cancelled call");
        if i % 100 == 99 {
            // A call cancelled before the loop took it is done at once, its message still
            // queued: a round trip lets the loop drain them, so that the backlog (and the
            // queues' capacity, which they keep) stays bounded.
            w.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
        }
    });
}

#[test]
fn timed_out_and_abandoned_waits_keep_no_memory() {
    let w = worker();
    keeps_nothing("wait timeout + abandoned await", 50, 1000, |i| {
        let mut p = w.call_soon_async(std::future::pending::<()>);
        if i % 2 == 0 {
            let err = p.wait_sync(Some(Duration::from_micros(10))).unwrap_err();
            assert!(err.is_timeout(), "{err}");
        } else {
            // The timeout drops the wait unfinished: that cancels the pending.
            let res = futures::executor::block_on(caller::timeout(
                Duration::from_micros(10),
                p.wait(None),
            ));
            assert!(res.is_err(), "the future never completes");
        }
        support::done(&p, "the call whose wait timed out");
    });
}

#[test]
fn to_thread_keeps_no_memory() {
    keeps_nothing("to_thread (reused workers)", 200, 3000, |i| {
        assert_eq!(
            caller::to_thread(move || i).wait_sync(Some(LIMIT)).unwrap(),
            i
        );
    });
}

#[test]
fn pool_workers_started_and_stopped_keep_no_memory() {
    let _serial = serial();
    let before = caller::PoolConfig::max_idle();
    caller::PoolConfig::set_max_idle(0);
    let res = std::panic::catch_unwind(|| {
        measure("to_thread (no idle worker kept)", 10, 200, |i| {
            let mut p = caller::to_thread(move || i);
            assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), i);
        });
    });
    caller::PoolConfig::set_max_idle(before);
    if let Err(panic) = res {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn queue_calls_keep_no_memory() {
    let w = worker();
    fn work(n: usize) {
        std::hint::black_box(n);
    }
    async fn work_async(n: usize) {
        tokio::task::yield_now().await;
        std::hint::black_box(n);
    }
    keeps_nothing("queue_call + queue_close", 20, 1000, |i| {
        for n in 0..4 {
            w.queue_call(work, i + n).unwrap();
            w.queue_call_async(work_async, i + n).unwrap();
        }
        let q = w.queue_get(&work).unwrap();
        let qa = w.queue_get(&work_async).unwrap();
        // Everything queued so far has run once this returns.
        w.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
        assert!(w.queue_close(&work));
        assert!(w.queue_close(&work_async));
        support::done(&q, "the closed queue");
        support::done(&qa, "the closed async queue");
    });
}

#[test]
fn groups_keep_no_memory() {
    let w = worker();
    let modes = [
        caller::GroupMode::IgnoreCancelled,
        caller::GroupMode::CancelAndRaise,
        caller::GroupMode::CancelQuietly,
        caller::GroupMode::Raise,
        caller::GroupMode::Supervisor,
    ];
    keeps_nothing("PendingGroup::run with members", 50, 1000, |i| {
        let mode = modes[i % modes.len()];
        let group = caller::PendingGroup::builder().mode(mode).build();
        let w = w.clone();
        let cancels_group = matches!(
            mode,
            caller::GroupMode::CancelAndRaise | caller::GroupMode::CancelQuietly
        );
        let out = futures::executor::block_on(group.run(async move {
            let a = w.call_soon(move || i);
            let b = w.call_soon_async(move || async move { i + 1 });
            // Cancelled: in the modes where a cancelled member cancels the group, its
            // exit says so; the others ignore it.
            let never = w.call_soon_async(std::future::pending::<usize>);
            let inner = caller::PendingGroup::builder().shield(i % 2 == 0).build();
            let c = inner
                .run(async { w.call_soon(move || 2).await.unwrap() })
                .await;
            never.cancel("not needed");
            if cancels_group {
                // The group is cancelled by `never`: it drops the body here.
                std::future::pending::<()>().await;
            }
            a.await.unwrap() + b.await.unwrap() + c.unwrap().unwrap()
        }));
        match mode {
            caller::GroupMode::CancelAndRaise => assert!(out.unwrap_err().is_cancelled()),
            caller::GroupMode::CancelQuietly => assert_eq!(out.unwrap(), None),
            _ => assert_eq!(out.unwrap(), Some(2 * i + 3)),
        }
    });
}

#[test]
fn a_long_lived_group_keeps_no_memory_per_finished_member() {
    // One group that outlives thousands of members, each done before the next joins (a
    // server's supervisor group): what the group keeps of its finished members must not
    // grow with their number.
    let w = worker();
    let _serial = serial();
    let group = caller::PendingGroup::new(caller::GroupMode::Supervisor);
    let out = futures::executor::block_on(group.clone().run(async {
        // The calls made here join the group.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let mut held = w.call_soon(move || gate.recv_timeout(LIMIT).is_ok());
        assert_eq!(
            group.members(),
            vec![held.any()],
            "the call did not join the group"
        );
        release.send(()).unwrap();
        assert!(
            held.wait_sync(Some(LIMIT)).unwrap(),
            "the held call was not released"
        );
        measure("a group's finished members", 100, 4000, |i| {
            assert_eq!(w.call_soon(move || i).wait_sync(Some(LIMIT)).unwrap(), i);
        });
    }));
    out.unwrap().unwrap();
}

#[test]
fn managers_keep_no_memory() {
    let w = worker();
    keeps_nothing("PendingManager activate + wait_all", 50, 1000, |i| {
        let m = caller::PendingManager::new();
        {
            let _active = m.activate();
            drop(w.call_soon(move || i));
            drop(w.call_soon_async(move || async move { i }));
        }
        futures::executor::block_on(m.wait_all());
        assert!(m.pendings().is_empty());
    });
}

#[test]
fn as_completed_and_wait_keep_no_memory() {
    use futures::StreamExt;
    let w = worker();
    keeps_nothing("as_completed + wait", 50, 1000, |i| {
        let w2 = w.clone();
        let jobs = (0..4).map(move |n| w2.call_soon(move || n));
        let sum: usize = futures::executor::block_on(async {
            let mut sum = 0;
            let mut s = caller::as_completed(jobs).max_concurrent(2);
            while let Some(p) = s.next().await {
                sum += p.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, 6);
        let fast = w.call_soon(move || i);
        let slow = w.call_soon_async(std::future::pending::<usize>);
        let (done, not_done) = futures::executor::block_on(caller::wait(
            [fast, slow],
            Some(LIMIT),
            caller::ReturnWhen::FirstCompleted,
        ));
        assert_eq!((done.len(), not_done.len()), (1, 1));
        not_done[0].cancel("not needed");
        support::done(&not_done[0], "the cancelled slow call");
    });
}

#[test]
fn done_callbacks_keep_no_memory() {
    keeps_nothing("add/remove_done_callback + set_result", 200, 4000, |i| {
        let p = caller::Pending::new();
        let kept = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let k = kept.clone();
        p.add_done_callback(move |_| {
            k.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let removed = p.add_done_callback(|_| panic!("removed"));
        assert!(p.remove_done_callback(removed));
        p.set_result(i);
        assert_eq!(kept.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}

#[test]
fn child_callers_keep_no_memory() {
    let w = worker();
    keeps_nothing("Caller::get child + stop", 10, 200, |i| {
        let child = w.get(&format!("leak-child-{i}")).unwrap();
        assert_eq!(
            child.call_soon(move || i).wait_sync(Some(LIMIT)).unwrap(),
            i
        );
        child.stop(true);
        futures::executor::block_on(child.stopped()).unwrap();
        assert!(w.children().is_empty());
    });
}
