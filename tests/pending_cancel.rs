//! Cancellation: where a running future is dropped, calls that never start, message
//! accumulation, and sync calls that cannot be interrupted.

mod support;

use support::PanicOnDrop;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;

use caller::{Caller, Error};
use support::{recv, LIMIT};

/// Records the thread it is dropped on.
struct DropProbe {
    dropped_on: Arc<Mutex<Option<ThreadId>>>,
    // An `Rc` makes the future holding this !Send, as thread-confined resources are.
    _not_send: std::rc::Rc<()>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.dropped_on.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[test]
fn cancel_from_another_thread_drops_the_not_send_future_on_its_own_thread() {
    let c = Caller::new_thread("cancel-drop").unwrap();
    let dropped_on = Arc::new(Mutex::new(None));
    let (started_tx, started_rx) = mpsc::channel();
    let d = dropped_on.clone();
    let p = c.call_soon_async(move || async move {
        let _probe = DropProbe {
            dropped_on: d,
            _not_send: std::rc::Rc::new(()),
        };
        started_tx.send(std::thread::current().id()).unwrap();
        std::future::pending::<()>().await;
    });
    let caller_thread = recv(&started_rx, "the async call starting");
    let canceller = std::thread::spawn(move || p.cancel("from elsewhere"));
    assert!(canceller.join().unwrap());
    let mut p2 = c.call_soon(|| ());
    p2.wait_sync(Some(LIMIT)).unwrap();
    support::eventually("the future being dropped", || {
        dropped_on.lock().unwrap().is_some()
    });
    assert_eq!(*dropped_on.lock().unwrap(), Some(caller_thread));
    assert_ne!(caller_thread, std::thread::current().id());
    c.stop(true);
}

#[test]
fn a_call_cancelled_before_it_starts_never_runs() {
    let c = Caller::new_thread("cancel-before-start").unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    // Block the caller so the next calls stay queued.
    let blocker = c.call_soon(move || gate_rx.recv_timeout(LIMIT).is_ok());
    let ran = Arc::new(AtomicBool::new(false));
    let r1 = ran.clone();
    let sync_call = c.call_soon(move || r1.store(true, Ordering::SeqCst));
    let r2 = ran.clone();
    let async_call = c.call_soon_async(move || async move { r2.store(true, Ordering::SeqCst) });
    assert!(sync_call.cancel("not needed"));
    assert!(async_call.cancel("not needed"));
    // Done at once, without waiting for the caller.
    assert!(sync_call.done() && async_call.done());
    gate_tx.send(()).unwrap();
    let mut blocker = blocker;
    assert!(blocker.wait_sync(Some(LIMIT)).unwrap());
    // A later call on the same caller has finished, so the cancelled ones were skipped.
    c.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
    assert!(!ran.load(Ordering::SeqCst), "a cancelled call ran");
    c.stop(true);
}

#[test]
fn messages_accumulate_and_first_completion_wins() {
    let c = Caller::new_thread("cancel-messages").unwrap();
    // A running sync call stays cancel-requested (not done) until it returns, so every
    // message lands.
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut p = c.call_soon(move || {
        started_tx.send(()).unwrap();
        go_rx.recv_timeout(LIMIT).unwrap();
    });
    recv(&started_rx, "the sync call starting");
    assert!(p.cancel("one"));
    assert!(p.cancel(""));
    assert!(p.cancel("two"));
    go_tx.send(()).unwrap();
    let err = p.wait_sync(Some(LIMIT)).unwrap_err();
    assert_eq!(err.cancel_message(), Some("one\ntwo"));
    // Later cancels on a done-cancelled pending are no-ops that still say "cancelled".
    assert!(p.cancel("three"));
    assert_eq!(p.error().unwrap().cancel_message(), Some("one\ntwo"));

    let mut v = c.call_soon(|| 5);
    assert_eq!(v.wait_sync(Some(LIMIT)).unwrap(), 5);
    assert!(!v.cancel("too late"), "cancel on a value returns false");
    assert!(!v.cancelled());
    c.stop(true);
}

#[test]
fn a_running_sync_call_is_cancelled_before_it_is_done_and_its_value_discarded() {
    let c = Caller::new_thread("cancel-sync").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let saw_cancel = Arc::new(AtomicBool::new(false));
    let s = saw_cancel.clone();
    let mut p = c.call_soon(move || {
        started_tx.send(()).unwrap();
        go_rx
            .recv_timeout(LIMIT)
            .expect("the test to let the call finish");
        let me = Caller::current_pending().expect("inside a call");
        s.store(me.cancelled(), Ordering::SeqCst);
        99
    });
    recv(&started_rx, "the sync call starting");
    assert!(p.cancel("give up"));
    assert!(p.cancelled(), "cancelled() is true at once");
    assert!(
        !p.done(),
        "a running sync call is not done until it returns"
    );
    go_tx.send(()).unwrap();
    let err = p.wait_sync(Some(LIMIT)).unwrap_err();
    assert_eq!(err.cancel_message(), Some("give up"));
    assert!(
        saw_cancel.load(Ordering::SeqCst),
        "the call could see its own cancel"
    );
    c.stop(true);
}

#[test]
fn done_callbacks_run_in_order_even_when_one_panics() {
    let c = Caller::new_thread("callbacks").unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut p = c.call_soon(move || go_rx.recv_timeout(LIMIT).is_ok());
    let order = Arc::new(Mutex::new(Vec::new()));
    let (thread_tx, thread_rx) = mpsc::channel();
    for i in 0..4 {
        let order = order.clone();
        let thread_tx = thread_tx.clone();
        p.add_done_callback(move |_| {
            thread_tx.send(std::thread::current().id()).unwrap();
            order.lock().unwrap().push(i);
            if i == 1 {
                panic!("callback panics on purpose");
            }
        });
    }
    let removed = p.add_done_callback(|_| panic!("removed callback ran"));
    assert!(p.remove_done_callback(removed));
    go_tx.send(()).unwrap();
    assert!(p.wait_sync(Some(LIMIT)).unwrap());
    // Callbacks run before waiters are woken: all four have run by now.
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
    assert_eq!(
        recv(&thread_rx, "a callback"),
        c.thread().id(),
        "callbacks run where the pending completes"
    );
    // Added after done: runs at once, here.
    let here = Arc::new(AtomicUsize::new(0));
    let h = here.clone();
    p.add_done_callback(move |_| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(here.load(Ordering::SeqCst), 1);
    c.stop(true);
}

#[test]
fn cancelling_a_hand_made_pending_with_a_canceller_leaves_finishing_to_the_producer() {
    let p = caller::Pending::<u8>::new();
    let r = p.resolver();
    let r2 = r.clone();
    p.set_canceller(move |msg| {
        assert_eq!(msg, "stop");
        r2.set_error(Error::cancelled("producer gave up"));
    });
    assert!(p.cancel("stop"));
    assert!(p.done());
    assert!(!r.set_result(1), "first completion wins");
}

/// Regression: a cancel landing between the runner's flag check and storing its waker was
/// lost, leaving the pending "cancel requested" forever. Hammer that window.
#[test]
fn a_cancel_racing_the_first_poll_is_never_lost() {
    let c = Caller::new_thread("cancel-race").unwrap();
    let pendings: Vec<_> = (0..2000)
        .map(|i| {
            let p = c.call_soon_async(std::future::pending::<()>);
            if i % 2 == 0 {
                std::thread::yield_now();
            }
            p.cancel("race");
            p
        })
        .collect();
    for p in &pendings {
        support::done(p, "a pending cancelled right after it was scheduled");
    }
    c.stop(true);
}

/// Regression ("nothing is lost"): an async call picked up by the loop but not yet polled
/// when `stop` landed was dropped with its task and never finished.
#[test]
fn calls_picked_up_but_not_started_when_stop_lands_still_finish() {
    for i in 0..300 {
        let c = Caller::new_thread(format!("stop-race-{i}")).unwrap();
        let a = c.call_soon_async(std::future::pending::<()>);
        let b = c.call_later(std::time::Duration::from_secs(3600), || ());
        if i % 2 == 0 {
            std::thread::yield_now();
        }
        c.stop(true);
        support::done(&a, "an async call racing stop");
        support::done(&b, "a delayed call racing stop");
        assert!(a.cancelled() && b.cancelled());
    }
}

/// The claim of a call (`try_start`) is lock-free and races `cancel`: whichever wins, a
/// call that started is never done before it returned, and one that did not start never
/// runs.
#[test]
fn cancel_racing_the_start_of_sync_calls_never_finishes_a_running_call() {
    use std::sync::atomic::AtomicU8;
    let c = Caller::new_thread("claim-race").unwrap();
    let violations = Arc::new(AtomicUsize::new(0));
    let pendings: Vec<_> = (0..3000)
        .map(|_| {
            // 0: not started, 1: running, 2: returned
            let stage = Arc::new(AtomicU8::new(0));
            let s = stage.clone();
            let p = c.call_soon(move || {
                s.store(1, Ordering::SeqCst);
                std::hint::black_box((0..50).sum::<u32>());
                s.store(2, Ordering::SeqCst);
            });
            let v = violations.clone();
            p.add_done_callback(move |_| {
                if stage.load(Ordering::SeqCst) == 1 {
                    v.fetch_add(1, Ordering::SeqCst);
                }
            });
            p.cancel("race the claim");
            p
        })
        .collect();
    for p in &pendings {
        support::done(p, "a call whose cancel raced its start");
    }
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "a running call was finished early"
    );
    c.stop(true);
}

#[test]
fn a_canceller_sees_every_cancel_and_a_value_set_after_a_cancel_is_discarded() {
    let p = caller::Pending::<u8>::new();
    let r = p.resolver();
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = calls.clone();
    p.set_canceller(move |msg| c.lock().unwrap().push(msg.to_owned()));
    assert!(p.cancel("first"));
    assert!(p.cancel("second"));
    assert_eq!(*calls.lock().unwrap(), ["first", "first\nsecond"]);
    assert!(p.cancelled() && !p.done(), "the producer finishes it");
    assert!(
        r.set_result(5),
        "the producer's finish completes the pending"
    );
    assert!(
        p.done() && p.cancelled(),
        "cancelled() and the outcome agree"
    );
    let err = p.error().expect("a cancel asked before completion wins");
    assert_eq!(err.cancel_message(), Some("first\nsecond"));
}

/// Where a probe finds its pending (filled in once the call is scheduled).
type Slot = Arc<Mutex<Option<caller::AnyPending>>>;

/// Sends, when dropped, whether the pending in `slot` was already done: a future or closure
/// must be dropped before its pending says done.
struct DoneAtDrop {
    slot: Slot,
    seen: mpsc::Sender<Option<bool>>,
}

impl Drop for DoneAtDrop {
    fn drop(&mut self) {
        let done = self.slot.lock().unwrap().as_ref().map(|p| p.done());
        let _ = self.seen.send(done);
    }
}

fn probe() -> (DoneAtDrop, Slot, mpsc::Receiver<Option<bool>>) {
    let slot = Slot::default();
    let (seen, seen_rx) = mpsc::channel();
    let probe = DoneAtDrop {
        slot: slot.clone(),
        seen,
    };
    (probe, slot, seen_rx)
}

#[test]
fn stopped_caller_drops_the_future_before_done() {
    let c = Caller::new_thread("stop-drop-order").unwrap();
    let mut seen = Vec::new();
    // A running async call, a running delayed async call, an unstarted delayed call.
    for kind in ["running", "running delayed", "unstarted delayed"] {
        let (probe, slot, seen_rx) = probe();
        let (started_tx, started_rx) = mpsc::channel();
        let p = match kind {
            "running" => c.call_soon_async(move || async move {
                let _probe = probe;
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await;
            }),
            "running delayed" => {
                c.call_later_async(std::time::Duration::from_millis(1), move || async move {
                    let _probe = probe;
                    started_tx.send(()).unwrap();
                    std::future::pending::<()>().await;
                })
            }
            _ => {
                started_tx.send(()).unwrap();
                c.call_later(std::time::Duration::from_secs(3600), move || {
                    let _probe = probe;
                })
            }
        };
        *slot.lock().unwrap() = Some(p.any());
        recv(&started_rx, "the call starting");
        seen.push((kind, p, seen_rx));
    }
    c.stop(true);
    for (kind, p, seen_rx) in &seen {
        assert_eq!(
            recv(seen_rx, "the future being dropped"),
            Some(false),
            "the {kind} call's pending was done before its future was dropped"
        );
        support::done(p, "the stopped call");
        assert!(p.cancelled());
    }
}

#[test]
fn cancelled_call_drops_the_future_before_done() {
    let c = Caller::new_thread("cancel-drop-order").unwrap();
    let (probe, slot, seen_rx) = probe();
    let (started_tx, started_rx) = mpsc::channel();
    let p = c.call_soon_async(move || async move {
        let _probe = probe;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    *slot.lock().unwrap() = Some(p.any());
    recv(&started_rx, "the call starting");
    p.cancel("from the test");
    assert_eq!(recv(&seen_rx, "the future being dropped"), Some(false));
    support::done(&p, "the cancelled call");
    c.stop(true);
}

#[test]
fn a_panic_in_a_futures_drop_during_cancel_is_logged_and_in_the_outcome() {
    let c = Caller::new_thread("cancel-drop-panics").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let mut p = c.call_soon_async(move || async move {
        let _guard = PanicOnDrop("the future panics in Drop");
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    recv(&started_rx, "the async call starting");
    assert!(p.cancel("cancelled by the test"));
    let err = p.wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let message = err.cancel_message().unwrap();
    assert!(message.starts_with("cancelled by the test"), "{message}");
    assert!(
        message.contains("the future panics in Drop"),
        "the outcome does not say the future's Drop panicked: {message}"
    );
    assert!(!message.contains("stopped"), "{message}");
    assert!(c.running());
    assert_eq!(c.call_soon(|| 1).wait_sync(Some(LIMIT)).unwrap(), 1);
    c.stop(true);
}

#[test]
fn a_callback_id_only_removes_the_callback_it_was_returned_for() {
    let a = caller::Pending::<()>::new();
    let b = caller::Pending::<()>::new();
    let from_a = a.add_done_callback(|_| {});
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let on_b = b.add_done_callback(move |_| r.store(true, Ordering::SeqCst));
    assert!(
        !b.remove_done_callback(from_a),
        "an id from another pending removed a callback"
    );
    assert!(!a.remove_done_callback(on_b));
    b.set_result(());
    assert!(ran.load(Ordering::SeqCst), "b's callback did not run");
    assert!(a.remove_done_callback(from_a));
    assert!(!a.remove_done_callback(from_a), "removed twice");
}

#[test]
fn a_callback_id_cannot_remove_the_pools_own_hook() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut p = caller::to_thread(move || go_rx.recv_timeout(LIMIT).is_ok());
    // The first id handed out by a fresh pending: the number the pool's hook has on `p`.
    let foreign = caller::Pending::<()>::new().add_done_callback(|_| {});
    assert!(
        !p.remove_done_callback(foreign),
        "an id from another pending removed the pool's hook"
    );
    let own = p.add_done_callback(|_| {});
    assert!(p.remove_done_callback(own));
    go_tx.send(()).unwrap();
    assert!(p.wait_sync(Some(LIMIT)).unwrap());
}

#[test]
fn a_closure_cancelled_before_it_starts_is_dropped_before_done_even_with_a_canceller() {
    let c = Caller::new_thread("cancel-unstarted-canceller").unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let blocker = c.call_soon(move || go_rx.recv_timeout(LIMIT).is_ok());
    let guard = PanicOnDrop("the unstarted closure panics in Drop");
    let p = c.call_soon(move || {
        let _keep = &guard;
    });
    // With a canceller, a cancel leaves finishing to the producer: here, the caller.
    p.set_canceller(|_| {});
    assert!(p.cancel("before it starts"));
    assert!(!p.done());
    go_tx.send(()).unwrap();
    support::done(&blocker, "the blocking call");
    support::done(&p, "the cancelled call");
    let err = p.error().unwrap();
    assert!(err.is_cancelled(), "{err}");
    assert!(
        err.to_string()
            .contains("the closure panicked while being dropped: the unstarted closure"),
        "{err}"
    );
    assert_eq!(c.call_soon(|| 1).wait_sync(Some(LIMIT)).unwrap(), 1);
    c.stop(true);
}
