//! Shared helpers for the integration tests: bounded waits whose failure says what did not
//! happen.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

/// How long any test waits for an event before failing.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Receive from `rx` within [`LIMIT`], or panic saying `what` did not happen.
pub fn recv<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| panic!("within {LIMIT:?}: {what} did not happen"))
}

/// Wait until `cond` holds, polling, within [`LIMIT`]; panic saying `what` if it never does.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        if start.elapsed() > LIMIT {
            panic!("within {LIMIT:?}: {what} did not happen");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Wait until `p` is done, within [`LIMIT`].
pub fn done(p: &caller::AnyPending, what: &str) {
    p.wait_done_sync(Some(LIMIT))
        .unwrap_or_else(|e| panic!("within {LIMIT:?}: {what} did not finish ({e}): {p:?}"));
}

/// Number of threads of this process (Linux).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}
