//! The pool's lifetime: workers that stop leave it, and it can be shut down at once.
//! Pool settings are process-wide, so this file is its own test binary and its tests take
//! turns.

mod support;

use std::sync::Mutex;

use caller::PoolConfig;
use support::LIMIT;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn a_stopped_worker_leaves_the_idle_list_at_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    PoolConfig::set_idle_shutdown(None);
    let worker = caller::to_thread(|| caller::Caller::current().unwrap())
        .wait_sync(Some(LIMIT))
        .unwrap();
    support::eventually("the worker going back to the idle list", || {
        PoolConfig::idle_workers() >= 1
    });
    let before = PoolConfig::idle_workers();
    worker.stop(true);
    assert_eq!(
        PoolConfig::idle_workers(),
        before - 1,
        "a stopped worker is not counted as idle"
    );
}

#[test]
fn shutting_the_pool_down_leaves_every_pending_done() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    PoolConfig::set_idle_shutdown(None);
    let idle = caller::to_thread(|| 1).wait_sync(Some(LIMIT)).unwrap();
    assert_eq!(idle, 1);
    let busy: Vec<_> = (0..3)
        .map(|_| caller::to_thread_async(std::future::pending::<()>))
        .collect();
    let workers = PoolConfig::shutdown();
    assert!(workers.len() >= 3, "every worker, busy ones too");
    for p in &busy {
        support::done(p, "a pending on a worker of the shut-down pool");
        assert!(p.cancelled());
    }
    for w in &workers {
        futures::executor::block_on(caller::timeout(LIMIT, w.stopped()))
            .expect("within the limit: a worker did not stop")
            .unwrap();
    }
    assert_eq!(PoolConfig::idle_workers(), 0);
    assert_eq!(caller::to_thread(|| 2).wait_sync(Some(LIMIT)).unwrap(), 2);
}
