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

/// User data whose `Drop` panics (a broken destructor). It stays quiet while its thread is
/// already unwinding, so that a second panic never aborts the test process.
#[derive(Debug)]
pub struct PanicOnDrop(pub &'static str);

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{}", self.0);
        }
    }
}

/// Occupy `c`'s thread with a call until the sender is used (or the limit passes): calls
/// scheduled meanwhile wait behind it.
pub fn occupy(c: &caller::Caller) -> (caller::AnyPending, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let p = c.call_soon(move || {
        started_tx.send(()).unwrap();
        let _ = go_rx.recv_timeout(LIMIT);
    });
    recv(&started_rx, "the occupying call starting");
    (p.any(), go_tx)
}

/// `c` still serves calls; then it stops when asked and its loop ends.
pub fn survives(c: &caller::Caller) {
    assert_eq!(
        c.call_soon(|| "still here").wait_sync(Some(LIMIT)).unwrap(),
        "still here",
        "caller '{}' stopped serving calls",
        c.name()
    );
    assert!(c.running());
    c.stop(true);
    eventually("the caller stopping", || {
        c.state() == caller::CallerState::Stopped
    });
}
