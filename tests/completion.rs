//! `as_completed` and `wait`.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use caller::{job, Caller, Error, Pending, ReturnWhen};
use futures::StreamExt;
use support::LIMIT;

#[test]
fn as_completed_with_a_lazy_source_never_exceeds_max_concurrent() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let (r, p, cr) = (running.clone(), peak.clone(), created.clone());
    let source = (0..100u32).map(move |i| {
        cr.fetch_add(1, Ordering::SeqCst);
        let (r, p) = (r.clone(), p.clone());
        caller::to_thread(move || {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            std::thread::yield_now();
            r.fetch_sub(1, Ordering::SeqCst);
            i
        })
    });
    let mut got = futures::executor::block_on(async {
        let mut s = caller::as_completed(source).max_concurrent(4);
        let mut got = Vec::new();
        while let Some(p) = s.next().await {
            assert!(s.in_flight() <= 4);
            got.push(p.await.unwrap());
        }
        got
    });
    got.sort();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(created.load(Ordering::SeqCst), 100);
    assert!(
        peak.load(Ordering::SeqCst) <= 4,
        "peak {} > 4",
        peak.load(Ordering::SeqCst)
    );
}

#[test]
fn dropping_as_completed_cancels_what_it_holds_unless_told_not_to() {
    let held: Vec<_> = (0..3)
        .map(|_| caller::to_thread_async(std::future::pending::<()>))
        .collect();
    let views: Vec<_> = held.iter().map(|p| p.any()).collect();
    let mut s = caller::as_completed(held).max_concurrent(usize::MAX);
    assert!(futures::executor::block_on(futures::future::poll_immediate(s.next())).is_none());
    drop(s);
    for v in &views {
        support::done(v, "a pending held by the dropped stream");
        assert!(v.cancelled());
    }
    let kept = vec![caller::to_thread_async(std::future::pending::<()>)];
    let view = kept[0].any();
    drop(caller::as_completed(kept).cancel_unfinished(false));
    assert!(!view.cancelled());
    view.cancel("cleanup");
}

#[test]
fn as_completed_refuses_to_wait_on_the_pending_running_it() {
    let c = Caller::new_thread("self-wait").unwrap();
    let (own_tx, own_rx) = std::sync::mpsc::channel::<Pending<u8>>();
    let (report_tx, report_rx) = std::sync::mpsc::channel();
    let p = c.call_soon_async(move || async move {
        // This call receives its own pending and iterates over it.
        let me = own_rx.recv_timeout(LIMIT).expect("the call's own pending");
        let mut s = caller::as_completed(vec![me]);
        let first = s.next().await.expect("one item");
        report_tx.send(first.await).unwrap();
        7u8
    });
    let view = p.any();
    own_tx.send(p).unwrap();
    let got = support::recv(&report_rx, "the iteration yielding");
    assert!(matches!(got, Err(Error::WouldDeadlock { .. })), "{got:?}");
    support::done(&view, "the iterating call");
    c.stop(true);
}

fn gate() -> (Pending<()>, caller::AnyPending) {
    let g = Pending::new();
    let v = g.any();
    (g, v)
}

#[test]
fn wait_returns_at_the_right_moment_for_each_return_when() {
    let c = Caller::new_thread("waiter").unwrap();
    let make = |fail: bool, g: caller::AnyPending| {
        c.call_soon(job::try_future(move || async move {
            let _ = g.wait_done(None).await;
            if fail {
                Err("fails on purpose")
            } else {
                Ok(1u8)
            }
        }))
    };
    let short = Some(Duration::from_millis(30));

    // FIRST_COMPLETED: returns with the first one done.
    let (g1, v1) = gate();
    let (g2, v2) = gate();
    let items = vec![make(false, v1), make(false, v2.clone())];
    g1.set_result(());
    let (done, not_done) =
        futures::executor::block_on(caller::wait(items, Some(LIMIT), ReturnWhen::FirstCompleted));
    assert_eq!((done.len(), not_done.len()), (1, 1));

    // FIRST_EXCEPTION: one success is not enough (the timeout ends the wait, without an
    // error), a failure is.
    let (g3, v3) = gate();
    let (g4, v4) = gate();
    let (_g5, v5) = gate();
    let items = vec![make(false, v3), make(true, v4), make(false, v5)];
    g3.set_result(());
    let (done, not_done) =
        futures::executor::block_on(caller::wait(items, short, ReturnWhen::FirstException));
    assert_eq!(
        (done.len(), not_done.len()),
        (1, 2),
        "returned early without a failure"
    );
    g4.set_result(());
    let (done, not_done) = futures::executor::block_on(caller::wait(
        not_done,
        Some(LIMIT),
        ReturnWhen::FirstException,
    ));
    assert_eq!((done.len(), not_done.len()), (1, 1));
    assert!(done[0].error().unwrap().is_failure());

    // ALL_COMPLETED: waits for everything; a timeout returns what is unfinished.
    let (g6, v6) = gate();
    let items = vec![make(false, v6), make(false, v2)];
    g6.set_result(());
    let (done, not_done) =
        futures::executor::block_on(caller::wait(items, short, ReturnWhen::AllCompleted));
    assert_eq!((done.len(), not_done.len()), (1, 1));
    g2.set_result(());
    let (done, not_done) = futures::executor::block_on(caller::wait(
        not_done,
        Some(LIMIT),
        ReturnWhen::AllCompleted,
    ));
    assert_eq!((done.len(), not_done.len()), (1, 0));
    c.stop(true);
}

#[test]
fn an_eager_collection_yields_each_item_as_it_finishes_whatever_their_number() {
    // Twelve pendings, more than the default pool size: the last one finishes first and
    // must come out first, not wait behind ten unfinished ones.
    let gates: Vec<Pending<()>> = (0..12).map(|_| Pending::new()).collect();
    let items: Vec<Pending<usize>> = gates
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let g = g.any();
            caller::to_thread_async(move || async move {
                let _ = g.wait_done(None).await;
                i
            })
        })
        .collect();
    let mut s = caller::as_completed(items);
    gates[11].set_result(());
    let first = futures::executor::block_on(async { caller::timeout(LIMIT, s.next()).await })
        .expect("within the limit: the finished 12th item was not handed back")
        .expect("an item");
    assert_eq!(futures::executor::block_on(first).unwrap(), 11);
    for g in &gates {
        g.set_result(());
    }
    let rest: Vec<_> = futures::executor::block_on(s.collect::<Vec<_>>());
    assert_eq!(rest.len(), 11);
}

#[test]
fn first_exception_counts_a_cancelled_item() {
    let stuck = caller::to_thread_async(std::future::pending::<u8>);
    let other = caller::to_thread_async(std::future::pending::<u8>);
    stuck.cancel("cancelled on purpose");
    // No timeout of its own: only the cancelled item can end this wait.
    let (done, not_done) = futures::executor::block_on(caller::timeout(
        LIMIT,
        caller::wait(vec![stuck, other], None, ReturnWhen::FirstException),
    ))
    .expect("within the limit: wait did not return at the cancelled item");
    assert_eq!((done.len(), not_done.len()), (1, 1));
    assert!(done[0].cancelled());
    assert!(!not_done[0].done(), "the other one keeps running");
    not_done[0].cancel("cleanup");
}

#[test]
fn as_completed_and_wait_take_boxed_futures_and_type_erased_pendings() {
    use futures::FutureExt;
    // Mixed value types, through views.
    let a = caller::to_thread(|| 1u8);
    let b = caller::to_thread(|| "two");
    let views = vec![a.any(), b.any()];
    let got: Vec<caller::AnyPending> =
        futures::executor::block_on(caller::as_completed(views).collect());
    assert!(got.iter().all(|v| v.done()));
    assert_eq!(got.len(), 2);
    // Any future, boxed: its output is handed back.
    let futs = vec![async { 1 }.boxed(), async { 2 }.boxed()];
    let mut outs: Vec<i32> = futures::executor::block_on(caller::as_completed(futs).collect());
    outs.sort();
    assert_eq!(outs, [1, 2]);
    // A lazy source borrowing from this stack, polled in place.
    let inputs = [3u64, 4, 5];
    let squares = futures::executor::block_on(async {
        let lazy = inputs.iter().map(|&n| caller::to_thread(move || n * n));
        let mut s = caller::as_completed(lazy).max_concurrent(1);
        let mut out = Vec::new();
        while let Some(p) = s.next().await {
            out.push(p.await.unwrap());
        }
        out
    });
    assert_eq!(squares, [9, 16, 25]);
    // `wait` hands back the unfinished items themselves.
    let slow = async { std::future::pending::<u8>().await }.boxed();
    let fast = async { 7u8 }.boxed();
    let (done, not_done) = futures::executor::block_on(caller::wait(
        vec![slow, fast],
        Some(Duration::from_millis(20)),
        ReturnWhen::AllCompleted,
    ));
    assert_eq!(done, [7]);
    assert_eq!(not_done.len(), 1);
}

/// `AsCompleted` is a `FusedStream`: `futures::select!` takes it as it is, with
/// `select_next_some`, until `complete`.
#[test]
fn select_takes_as_completed_as_it_is() {
    use futures::stream::FusedStream;
    let mut evens = caller::as_completed((0..3u32).map(|n| caller::to_thread(move || n * 2)));
    let mut odds = caller::as_completed((0..3u32).map(|n| caller::to_thread(move || n * 2 + 1)));
    let mut got = Vec::new();
    futures::executor::block_on(caller::timeout(LIMIT, async {
        loop {
            futures::select! {
                p = evens.select_next_some() => got.push(p.await.expect("an even value")),
                p = odds.select_next_some() => got.push(p.await.expect("an odd value")),
                complete => break,
            }
        }
    }))
    .expect("select! saw both streams end");
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert!(evens.is_terminated() && odds.is_terminated());
}
