//! Thread-confined state: `Caller::new_thread_with` builds a value on the caller's thread,
//! calls receive `&mut` to it (sync and async, in turn), and it is dropped there when the
//! caller stops.

mod support;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::ThreadId;

use caller::{state, Caller, Error};
use support::{recv, LIMIT};

/// A `!Send` value that records where it was made and where it is dropped.
struct Confined {
    made_on: ThreadId,
    log: Rc<RefCell<Vec<String>>>,
    dropped: mpsc::Sender<ThreadId>,
}

impl Drop for Confined {
    fn drop(&mut self) {
        let _ = self.dropped.send(std::thread::current().id());
    }
}

#[test]
fn state_is_built_on_its_thread_and_dropped_there_before_stopped() {
    let (dropped_tx, dropped_rx) = mpsc::channel();
    let c = Caller::new_thread_with("state-confined", move || Confined {
        made_on: std::thread::current().id(),
        log: Rc::default(),
        dropped: dropped_tx,
    })
    .expect("the state was made");
    let thread = c.thread().id();
    // From another plain thread, a sync call with `&mut` to the state.
    let remote = c.clone();
    let (made_on, ran_on) = std::thread::spawn(move || {
        remote
            .call_with(|s: &mut Confined| {
                s.log.borrow_mut().push("from a thread".into());
                (s.made_on, std::thread::current().id())
            })
            .wait_sync(Some(LIMIT))
    })
    .join()
    .expect("the calling thread ended")
    .expect("the state call finished");
    assert_eq!(made_on, thread, "init ran on the caller's thread");
    assert_eq!(ran_on, thread, "the call ran there too");
    let log = c
        .call_with(|s: &mut Confined| s.log.borrow().clone())
        .wait_sync(Some(LIMIT))
        .expect("the second state call finished");
    assert_eq!(log, ["from a thread"]);
    c.stop(true);
    futures::executor::block_on(caller::timeout(LIMIT, c.stopped()))
        .expect("within LIMIT: the caller did not stop")
        .expect("the caller stopped");
    let dropped_on = dropped_rx
        .try_recv()
        .expect("the state was dropped before `stopped` was done");
    assert_eq!(
        dropped_on, thread,
        "the state was dropped on its own thread"
    );
}

#[test]
fn async_state_calls_hold_the_state_and_later_calls_wait_their_turn() {
    let c = Caller::new_thread_with("state-turns", Vec::<String>::new).expect("state");
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let (holding_tx, holding_rx) = mpsc::channel();
    let first = c.call_with_async(async move |log: &mut Vec<String>| {
        log.push("first: start".into());
        holding_tx.send(()).expect("the test listens");
        // Suspended while holding `&mut` to the state.
        release_rx.await.expect("the test releases");
        log.push("first: end".into());
    });
    recv(&holding_rx, "the async state call holding the state");
    let second = c.call_with(|log: &mut Vec<String>| {
        log.push("second".into());
        log.clone()
    });
    // Other calls of the caller go on while the state is held.
    assert_eq!(
        c.call_soon(|| 5)
            .wait_sync(Some(LIMIT))
            .expect("a plain call"),
        5
    );
    assert!(
        !second.done(),
        "the sync state call waits for the async one"
    );
    release_tx.send(()).expect("the first call listens");
    let mut second = second;
    let log = second.wait_sync(Some(LIMIT)).expect("the second call ran");
    assert_eq!(log, ["first: start", "first: end", "second"]);
    assert!(first.done());
    c.stop(true);
}

#[test]
fn a_caller_without_state_or_with_another_type_fails_the_call_clearly() {
    let plain = Caller::new_thread("state-none").expect("caller");
    let err = plain
        .call_with(|_: &mut u32| ())
        .wait_sync(Some(LIMIT))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { message }
            if message.contains("state-none") && message.contains("new_thread_with")),
        "unexpected error: {err}"
    );
    plain.stop(true);

    let typed = Caller::new_thread_with("state-typed", || String::from("x")).expect("state");
    let err = typed
        .call_with(|_: &mut u32| ())
        .wait_sync(Some(LIMIT))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { message }
            if message.contains("String") && message.contains("u32")),
        "unexpected error: {err}"
    );
    // The caller and its state are unharmed.
    assert_eq!(
        typed
            .call_with(|s: &mut String| s.clone())
            .wait_sync(Some(LIMIT))
            .expect("the right type works"),
        "x"
    );
    typed.stop(true);
}

#[test]
fn a_failing_or_panicking_init_is_returned_and_stops_the_caller() {
    let err = Caller::try_new_thread_with("state-init-fails", || "no".parse::<u8>()).unwrap_err();
    assert!(err.is_failure(), "unexpected error: {err}");
    assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());

    let err = Caller::new_thread_with("state-init-panics", || -> u8 {
        panic!("cannot open the thing")
    })
    .unwrap_err();
    assert!(
        err.is_panic() && err.to_string().contains("cannot open the thing"),
        "unexpected error: {err}"
    );
    support::eventually("the callers whose init failed to stop", || {
        Caller::all_callers(false)
            .iter()
            .all(|c| !c.name().starts_with("state-init-"))
    });
}

#[test]
fn fallible_state_jobs_fail_their_pending_and_the_group() {
    let c = Caller::new_thread_with("state-fallible", || 1u8).expect("state");
    let mut failed = c.call_soon(state::try_with_state(|n: &mut u8| {
        n.checked_sub(2).ok_or("below zero")
    }));
    let err = failed.wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_failure(), "unexpected error: {err}");

    let group = caller::PendingGroup::builder()
        .mode(caller::GroupMode::CancelAndRaise)
        .build();
    let c2 = c.clone();
    let out = futures::executor::block_on(group.run(async move {
        let ok = c2.call_soon(state::try_with_state_async(async |n: &mut u8| {
            *n += 1;
            Ok::<_, std::num::ParseIntError>(*n)
        }));
        let bad = c2.call_soon(state::try_with_state_async(async |_: &mut u8| {
            "x".parse::<u8>()
        }));
        (ok.await, bad.await)
    }));
    let err = out.unwrap_err();
    assert!(
        matches!(err, Error::Group(_)),
        "a failing state call fails its group: {err}"
    );
    c.stop(true);
}

// ---------------------------------------------------------------------------------------
// `#[caller::on_thread(state = ..)]`
// ---------------------------------------------------------------------------------------

static LEDGER: std::sync::OnceLock<Caller> = std::sync::OnceLock::new();

fn ledger() -> &'static Caller {
    LEDGER.get_or_init(|| {
        Caller::new_thread_with("state-ledger", || Rc::new(RefCell::new(Vec::<u32>::new())))
            .expect("the ledger caller")
    })
}

type Entries = Rc<RefCell<Vec<u32>>>;

/// The state parameter leaves the signature: callers pass `amount` only.
#[caller::on_thread(caller = LEDGER.get(), state = entries)]
fn record(entries: &mut Entries, amount: u32) -> usize {
    entries.borrow_mut().push(amount);
    entries.borrow().len()
}

#[caller::on_thread(caller = LEDGER.get(), state = entries)]
async fn total_later(entries: &mut Entries) -> u32 {
    tokio::task::yield_now().await;
    entries.borrow().iter().sum()
}

#[caller::on_thread(caller = LEDGER.get(), state = entries)]
fn take(entries: &mut Entries, amount: u32) -> Result<u32, String> {
    let mut entries = entries.borrow_mut();
    let at = entries
        .iter()
        .position(|&e| e == amount)
        .ok_or_else(|| format!("no entry of {amount}"))?;
    Ok(entries.remove(at))
}

#[caller::on_thread(caller = LEDGER.get(), state = entries)]
async fn take_later(entries: &mut Entries, amount: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    let mut entries = entries.borrow_mut();
    match entries.iter().position(|&e| e == amount) {
        Some(at) => Ok(entries.remove(at)),
        None => Err(format!("no entry of {amount}")),
    }
}

#[caller::on_thread(name = "state-by-name", state = n)]
fn bump(n: &mut u64) -> u64 {
    *n += 1;
    *n
}

#[test]
fn on_thread_state_functions_receive_the_callers_state() {
    let thread = ledger().thread().id();
    assert_eq!(record(5).wait_sync(Some(LIMIT)).expect("record 5"), 1);
    // From several threads: the calls take turns on the ledger's thread.
    let handles: Vec<_> = (1..=4)
        .map(|n| std::thread::spawn(move || record(n).wait_sync(Some(LIMIT))))
        .collect();
    for h in handles {
        h.join()
            .expect("a recording thread")
            .expect("a record call");
    }
    let total = futures::executor::block_on(total_later()).expect("the async state call");
    assert_eq!(total, 5 + 1 + 2 + 3 + 4);
    assert_eq!(take(5).wait_sync(Some(LIMIT)).expect("take 5"), 5);
    let err = take(99).wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_failure(), "an Err is a failure: {err}");
    assert_eq!(
        futures::executor::block_on(take_later(4)).expect("take 4 later"),
        4
    );
    assert!(futures::executor::block_on(take_later(99))
        .unwrap_err()
        .is_failure());
    let on = ledger()
        .call_soon(|| std::thread::current().id())
        .wait_sync(Some(LIMIT))
        .expect("a plain call");
    assert_eq!(on, thread);
}

#[test]
fn on_thread_state_by_name_finds_the_top_level_caller_made_with_new_thread_with() {
    let counter = Caller::new_thread_with("state-by-name", || 10u64).expect("the counter");
    // No caller on this thread or the main one: `name` finds the top-level caller.
    assert_eq!(bump().wait_sync(Some(LIMIT)).expect("bump"), 11);
    assert_eq!(bump().wait_sync(Some(LIMIT)).expect("bump"), 12);
    counter.stop(true);
}

#[caller::on_thread(name = "state-named-missing", state = n)]
fn bump_missing(n: &mut u64) -> u64 {
    *n += 1;
    *n
}

#[caller::on_thread(name = "state-named-child", state = n)]
fn bump_child(n: &mut u64) -> u64 {
    *n += 1;
    *n
}

#[test]
fn on_thread_state_by_name_never_creates_a_caller_without_state() {
    // Under an entry caller, `name` alone would make a child; with `state` it only finds.
    Caller::builder()
        .name("state-entry")
        .block_on(async {
            let err = bump_missing().wait(Some(LIMIT)).await.unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { message }
                    if message.contains("new_thread_with(\"state-named-missing\"")),
                "unexpected error: {err}"
            );
            let me = Caller::current().expect("the entry caller");
            assert!(me.children().is_empty(), "no stateless child was made");
            // A top-level caller with state, made by the program, is found by name.
            let top = Caller::new_thread_with("state-named-child", || 0u64).expect("state");
            assert_eq!(bump_child().wait(Some(LIMIT)).await.expect("bump"), 1);
            top.stop(true);
        })
        .expect("the entry caller ran");
}
