//! `queue_call`: per-function sequential queues.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use caller::{Caller, PendingManager};
use support::LIMIT;

type Log = Arc<Mutex<Vec<(usize, usize)>>>;

struct Probe {
    log: Log,
    active: Arc<AtomicUsize>,
    overlaps: Arc<AtomicUsize>,
}

async fn record((probe, thread, seq): (Arc<Probe>, usize, usize)) {
    if probe.active.fetch_add(1, Ordering::SeqCst) != 0 {
        probe.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    tokio::task::yield_now().await;
    probe.log.lock().unwrap().push((thread, seq));
    probe.active.fetch_sub(1, Ordering::SeqCst);
    if thread == 0 && seq == 1234 {
        panic!("a queued call panics on purpose");
    }
}

#[test]
fn ten_thousand_calls_from_four_threads_run_in_order_one_at_a_time() {
    let c = Caller::new_thread("queue").unwrap();
    let probe = Arc::new(Probe {
        log: Arc::default(),
        active: Arc::default(),
        overlaps: Arc::default(),
    });
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (c, probe) = (c.clone(), probe.clone());
            std::thread::spawn(move || {
                for seq in 0..2500 {
                    c.queue_call_async(record, (probe.clone(), t, seq)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    support::eventually("all 10,000 queued calls running", || {
        probe.log.lock().unwrap().len() == 10_000
    });
    assert_eq!(
        probe.overlaps.load(Ordering::SeqCst),
        0,
        "queued calls overlapped"
    );
    let log = probe.log.lock().unwrap().clone();
    for t in 0..4 {
        let seqs: Vec<usize> = log
            .iter()
            .filter(|(th, _)| *th == t)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(
            seqs,
            (0..2500).collect::<Vec<_>>(),
            "thread {t}'s calls out of order"
        );
    }
    assert!(c.queue_close(&record));
    assert!(!c.queue_close(&record));
    c.stop(true);
}

fn sync_append((log, n): (Arc<Mutex<Vec<u32>>>, u32)) -> Result<(), String> {
    log.lock().unwrap().push(n);
    if n == 2 {
        return Err("an error is logged, not propagated".into());
    }
    Ok(())
}

#[test]
fn sync_queues_keep_order_with_other_calls_join_managers_and_end_on_stop() {
    let c = Caller::new_thread("queue-sync").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let m = PendingManager::new();
    let guard = m.activate();
    for n in 0..3 {
        c.queue_call(sync_append, (log.clone(), n)).unwrap();
        let l = log.clone();
        drop(c.call_soon(move || l.lock().unwrap().push(100 + n)));
    }
    drop(guard);
    c.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
    assert_eq!(*log.lock().unwrap(), [0, 100, 1, 101, 2, 102]);
    let queue = c.queue_get(&sync_append).expect("the queue exists");
    assert_eq!(
        m.pendings(),
        vec![queue.clone()],
        "the queue's pending joins managers"
    );
    c.stop(true);
    support::done(&queue, "the queue's pending after stop");
    assert!(queue.cancelled());
    assert!(
        c.queue_call(sync_append, (log, 9)).is_err(),
        "a stopped caller refuses"
    );
}

#[test]
fn cancelling_the_queue_pending_closes_the_queue() {
    let c = Caller::new_thread("queue-cancel").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    c.queue_call(sync_append, (log.clone(), 0)).unwrap();
    let q = c.queue_get(&sync_append).unwrap();
    assert!(q.cancel("no more"));
    support::done(&q, "the cancelled queue");
    assert!(c.queue_get(&sync_append).is_none());
    // A new call starts a new queue.
    c.queue_call(sync_append, (log, 1)).unwrap();
    assert!(c.queue_get(&sync_append).is_some());
    c.stop(true);
}

async fn wait_for_gate(gate: caller::AnyPending) {
    let _ = gate.wait_done(None).await;
}

/// Regression: an async queued call waiting behind a busy queue counted as "not started"
/// work, so the caller's later sync calls waited (spinning) for the whole queue.
#[test]
fn a_busy_async_queue_does_not_hold_up_the_callers_other_calls() {
    let c = Caller::new_thread("queue-busy").unwrap();
    let gate = caller::Pending::<()>::new();
    c.queue_call_async(wait_for_gate, gate.any()).unwrap();
    c.queue_call_async(wait_for_gate, gate.any()).unwrap();
    let mut other = c.call_soon(|| "not held up");
    assert_eq!(other.wait_sync(Some(LIMIT)).unwrap(), "not held up");
    gate.set_result(());
    c.stop(true);
}

async fn queued_member((tx, n): (std::sync::mpsc::Sender<(u32, bool)>, u32)) {
    // Each item makes a call of its own: it must not be cancelled by an exited group.
    let mut made = caller::to_thread(move || n);
    let res = made.wait(Some(LIMIT)).await;
    tx.send((n, res.is_ok())).unwrap();
}

#[test]
fn a_queue_first_used_inside_a_group_outlives_the_group() {
    use caller::{GroupMode, PendingGroup};
    let c = Caller::new_thread("queue-group").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (c2, tx2) = (c.clone(), tx.clone());
    let out = futures::executor::block_on(PendingGroup::new(GroupMode::CancelAndRaise).run(
        async move {
            c2.queue_call_async(queued_member, (tx2, 1)).unwrap();
        },
    ));
    assert!(out.is_ok(), "{out:?}");
    assert_eq!(
        support::recv(&rx, "the item queued inside the group"),
        (1, true)
    );
    let queue = c
        .queue_get(&queued_member)
        .expect("the queue is still open");
    assert!(!queue.done(), "the group's exit left the queue alone");
    c.queue_call_async(queued_member, (tx, 2)).unwrap();
    assert_eq!(
        support::recv(&rx, "an item queued after the group exited"),
        (2, true),
        "later items and the calls they make are not cancelled"
    );
    c.stop(true);
}

struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn stuck_item(
    (started, dropped): (
        std::sync::mpsc::Sender<()>,
        Arc<std::sync::atomic::AtomicBool>,
    ),
) {
    let _flag = DropFlag(dropped);
    started.send(()).unwrap();
    std::future::pending::<()>().await;
}

#[test]
fn closing_a_queue_cancels_the_running_item_and_is_done_only_when_it_stopped() {
    let c = Caller::new_thread("queue-close-running").unwrap();
    for by_cancel in [false, true] {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        c.queue_call_async(stuck_item, (started_tx.clone(), dropped.clone()))
            .unwrap();
        let never = Arc::new(std::sync::atomic::AtomicBool::new(false));
        c.queue_call_async(stuck_item, (started_tx, never.clone()))
            .unwrap();
        support::recv(&started_rx, "the first item starting");
        let queue = c.queue_get(&stuck_item).unwrap();
        // The queue's pending is done only after the running item's future was dropped.
        let d = dropped.clone();
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        queue.add_done_callback(move |_| seen_tx.send(d.load(Ordering::SeqCst)).unwrap());
        if by_cancel {
            assert!(queue.cancel("enough"));
        } else {
            assert!(c.queue_close(&stuck_item));
        }
        assert!(
            support::recv(&seen_rx, "the closed queue finishing"),
            "the running item's future was dropped before the queue was done"
        );
        assert_eq!(
            queue.cancelled(),
            by_cancel,
            "outcome agrees with how it ended"
        );
        // Everything sent to the caller before this call has been handled when it runs.
        c.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
        assert!(
            started_rx.try_recv().is_err(),
            "the waiting item never starts"
        );
        assert!(!never.load(Ordering::SeqCst));
    }
    c.stop(true);
}

fn numbered<const N: usize>(_: ()) {}

/// Make the queue of `numbered::<N>` on `c`; after `c` stopped, its queue must be closed.
fn make_queue<const N: usize>(c: &Caller) -> fn(&Caller) -> Option<caller::AnyPending> {
    let _ = c.queue_call(numbered::<N>, ());
    |c| c.queue_get(&numbered::<N>)
}

#[test]
fn a_queue_created_while_its_caller_stops_is_closed_too() {
    let (to_stop, stop_rx) = std::sync::mpsc::channel::<Caller>();
    let (stopped_tx, stopped) = std::sync::mpsc::channel();
    let stopper = std::thread::spawn(move || {
        for c in stop_rx {
            c.stop(true);
            stopped_tx.send(c).unwrap();
        }
    });
    // Looks the queues up all the time: a queue creation that passed its checks may then
    // wait for the map while the stop goes by.
    let current: Arc<Mutex<Option<Caller>>> = Arc::default();
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (cur, fin) = (current.clone(), finished.clone());
    let looker = std::thread::spawn(move || {
        while !fin.load(Ordering::Relaxed) {
            let c = cur.lock().unwrap().clone();
            if let Some(c) = c {
                for _ in 0..64 {
                    let _ = c.queue_get(&numbered::<0>);
                }
            }
        }
    });
    let start = std::time::Instant::now();
    let mut rounds = 0;
    // Bounded: as many stops as fit in ~1.5 s, each racing sixteen queue creations.
    while start.elapsed() < std::time::Duration::from_millis(1500) {
        rounds += 1;
        let c = Caller::new_thread("queue-vs-stop").unwrap();
        *current.lock().unwrap() = Some(c.clone());
        to_stop.send(c.clone()).unwrap();
        let gets = [
            make_queue::<0>(&c),
            make_queue::<1>(&c),
            make_queue::<2>(&c),
            make_queue::<3>(&c),
            make_queue::<4>(&c),
            make_queue::<5>(&c),
            make_queue::<6>(&c),
            make_queue::<7>(&c),
            make_queue::<8>(&c),
            make_queue::<9>(&c),
            make_queue::<10>(&c),
            make_queue::<11>(&c),
            make_queue::<12>(&c),
            make_queue::<13>(&c),
            make_queue::<14>(&c),
            make_queue::<15>(&c),
        ];
        let c = stopped
            .recv_timeout(LIMIT)
            .expect("the stopper thread stopping the caller");
        for (n, get) in gets.iter().enumerate() {
            if let Some(queue) = get(&c) {
                assert!(
                    queue.done(),
                    "round {rounds}: queue {n} made while its caller stopped stayed open: {queue:?} {:?}", c.state()
                );
            }
        }
    }
    drop(to_stop);
    stopper.join().unwrap();
    finished.store(true, Ordering::Relaxed);
    looker.join().unwrap();
}

async fn gated_append((gate, log, n): (caller::AnyPending, Arc<Mutex<Vec<u32>>>, u32)) {
    let _ = gate.wait_done(None).await;
    log.lock().unwrap().push(n);
}

#[test]
fn a_flush_waits_until_every_call_sent_before_it_has_run() {
    let c = Caller::new_thread("queue-flush").unwrap();
    let gate = caller::Pending::<()>::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    for n in 0..3 {
        c.queue_call_async(gated_append, (gate.any(), log.clone(), n))
            .unwrap();
    }
    let mut flush = c.queue_flush(&gated_append);
    // Sent after the flush: the flush does not wait for it.
    let late_gate = caller::Pending::<()>::new();
    c.queue_call_async(gated_append, (late_gate.any(), log.clone(), 99))
        .unwrap();
    // The caller's other calls run meanwhile: the flush has arrived and waits.
    c.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
    assert!(!flush.done(), "the flush waits for the gated calls");
    gate.set_result(());
    flush
        .wait_sync(Some(LIMIT))
        .expect("the flush finished once the calls before it ran");
    assert_eq!(
        *log.lock().unwrap(),
        [0, 1, 2],
        "not the call sent after it"
    );
    // A queue that does not exist has nothing to flush.
    fn never_queued(_: ()) {}
    assert!(c.queue_flush(&never_queued).done());
    // Closing the queue cancels a flush still waiting.
    let mut stuck = c.queue_flush(&gated_append);
    c.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
    assert!(c.queue_close(&gated_append));
    let err = stuck.wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_cancelled(), "unexpected error: {err}");
    late_gate.set_result(());
    c.stop(true);
}

#[test]
fn a_flush_of_a_sync_queue_is_done_when_it_arrives() {
    let c = Caller::new_thread("queue-flush-sync").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    for n in 0..4 {
        c.queue_call(sync_append, (log.clone(), n)).unwrap();
    }
    c.queue_flush(&sync_append)
        .wait_sync(Some(LIMIT))
        .expect("the flush finished");
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3], "errors do not stop it");
    c.stop(true);
}

type Words = Arc<Mutex<Vec<&'static str>>>;

fn note((log, word): (Words, &'static str)) {
    log.lock().unwrap().push(word);
}

#[test]
fn a_burst_of_queued_calls_keeps_its_place_among_the_callers_other_calls() {
    // Calls sent while the caller is busy wait in its inbox together: a burst of one
    // queue's calls travels as one message, and must still run where each call was sent.
    let c = Caller::new_thread("queue-burst-order").unwrap();
    let (_busy, go) = support::occupy(&c);
    let log = Words::default();
    c.queue_call(note, (log.clone(), "a")).unwrap();
    c.queue_call(note, (log.clone(), "b")).unwrap();
    let l = log.clone();
    let x = c.call_soon(move || l.lock().unwrap().push("x"));
    c.queue_call(note, (log.clone(), "c")).unwrap();
    c.queue_call(note, (log.clone(), "d")).unwrap();
    go.send(()).unwrap();
    c.queue_flush(&note).wait_sync(Some(LIMIT)).unwrap();
    support::done(&x, "the call between the queued ones");
    assert_eq!(*log.lock().unwrap(), ["a", "b", "x", "c", "d"]);
    c.stop(true);
}

/// Arguments whose `Drop` panics, and say so each time it does (quiet while its thread
/// already unwinds, as `support::PanicOnDrop`).
struct CountedPanic(Arc<AtomicUsize>);

impl Drop for CountedPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("queued arguments panic in Drop on purpose");
        }
    }
}

fn never_runs(_: CountedPanic) {
    unreachable!("a call refused by the stop runs");
}

#[test]
fn a_refused_burst_drops_each_calls_arguments_on_their_own() {
    // Five calls wait in the inbox as one message when the caller stops; each argument is
    // dropped by itself, its panic caught and logged (dropped together, the first panic
    // would unwind through the others: their panics lost, or the process aborted).
    let c = Caller::new_thread("queue-burst-refused").unwrap();
    let (_busy, go) = support::occupy(&c);
    let panicked = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        c.queue_call(never_runs, CountedPanic(panicked.clone()))
            .unwrap();
    }
    c.stop(true);
    assert_eq!(
        panicked.load(Ordering::SeqCst),
        5,
        "every refused argument's Drop ran, each outside another's unwinding"
    );
    drop(go);
    support::eventually("the caller stopping", || {
        c.state() == caller::CallerState::Stopped
    });
}
