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

/// Growth of the live heap tolerated after all the runs, whatever their number: room for
/// a capacity that doubles once. A leak of 8 bytes per run over 4,000 runs exceeds it.
const SLACK: isize = 24 * 1024;

/// Run `op` `warm` times, then `n` times more, and check that the `n` runs kept no memory
/// and no thread.
fn keeps_nothing(what: &str, warm: usize, n: usize, mut op: impl FnMut(usize)) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..warm {
        op(i);
    }
    let threads = thread_count();
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
        thread_count() <= threads
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
