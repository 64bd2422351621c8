//! The `to_thread` worker pool: reuse and idle shutdown. Pool settings are process-wide,
//! so this file is its own test binary and runs its checks in one test.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use caller::{Pending, PoolConfig};
use support::LIMIT;

fn thread_ids(n: usize) -> HashSet<String> {
    let pending: Vec<Pending<String>> = (0..n)
        .map(|_| {
            caller::to_thread(|| {
                std::thread::sleep(Duration::from_millis(5));
                std::thread::current().name().unwrap().to_owned()
            })
        })
        .collect();
    pending
        .into_iter()
        .map(|mut p| p.wait_sync(Some(LIMIT)).expect("a to_thread call finished"))
        .collect()
}

#[test]
fn workers_are_reused_and_idle_ones_stop() {
    PoolConfig::set_max_idle(3);
    PoolConfig::set_idle_shutdown(None);
    // The crate's timer thread starts on first use and stays: start it before counting.
    futures::executor::block_on(caller::sleep(Duration::from_millis(1)));
    let baseline = support::thread_count();

    let first = thread_ids(3);
    assert_eq!(first.len(), 3);
    support::eventually("three idle workers", || PoolConfig::idle_workers() == 3);
    let second = thread_ids(3);
    assert_eq!(first, second, "the same worker threads come back");

    // More than max_idle at once: the extra workers stop when they finish.
    let many = thread_ids(6);
    assert!(many.len() > 3);
    support::eventually("the pool shrinking to max_idle", || {
        PoolConfig::idle_workers() == 3
    });

    // Idle shutdown: workers that become idle now stop after the duration.
    PoolConfig::set_idle_shutdown(Some(Duration::from_millis(50)));
    let _ = thread_ids(3);
    support::eventually("idle workers stopping", || PoolConfig::idle_workers() == 0);
    support::eventually("the thread count returning to the baseline", || {
        support::thread_count() <= baseline
    });
}
