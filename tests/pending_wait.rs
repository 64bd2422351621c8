//! Waiting: timeouts, protection, abandoned waits, detaching, waiters on many threads,
//! and synchronous waits on a caller's own thread.

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use caller::{Caller, Error, Pending};
use support::{recv, LIMIT};

const SHORT: Duration = Duration::from_millis(20);

fn forever(c: &Caller) -> Pending<()> {
    c.call_soon_async(std::future::pending::<()>)
}

#[test]
fn a_timed_out_sync_wait_cancels_unless_protected() {
    let c = Caller::new_thread("wait-timeout").unwrap();
    let mut p = forever(&c);
    assert!(p.wait_sync(Some(SHORT)).unwrap_err().is_timeout());
    support::done(&p, "the timed-out pending");
    assert!(p
        .error()
        .unwrap()
        .cancel_message()
        .unwrap()
        .contains("timed out"));

    let mut q = forever(&c).protect();
    assert!(q.wait_sync(Some(SHORT)).unwrap_err().is_timeout());
    assert!(
        !q.cancelled(),
        "a protected pending survives a timed-out wait"
    );
    q.cancel("cleanup");
    c.stop(true);
}

#[test]
fn a_timed_out_sync_wait_says_how_long_it_waited() {
    let c = Caller::new_thread("timed-out-message").unwrap();
    let mut p = forever(&c);
    let err = p.wait_sync(Some(Duration::from_millis(10))).unwrap_err();
    assert_eq!(err.to_string(), "timed out after 10ms");
    support::done(&p, "the timed-out pending");
    assert_eq!(
        p.error().unwrap().cancel_message(),
        Some("a synchronous wait timed out after 10ms"),
        "the message names the duration, not an Option"
    );
    c.stop(true);
}

#[test]
fn a_timed_out_await_cancels_unless_protected() {
    let c = Caller::new_thread("await-timeout").unwrap();
    let mut p = forever(&c);
    let res = futures::executor::block_on(p.wait(Some(SHORT)));
    assert!(res.unwrap_err().is_timeout());
    support::done(&p, "the timed-out pending");

    let mut q = forever(&c).protect();
    let res = futures::executor::block_on(q.wait(Some(SHORT)));
    assert!(res.unwrap_err().is_timeout());
    assert!(!q.cancelled());

    // tokio's timeout drops the pending it was awaiting: that abandons the wait.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = forever(&c);
    let view = r.any();
    assert!(rt
        .block_on(async { tokio::time::timeout(SHORT, r).await })
        .is_err());
    support::done(
        &view,
        "the pending whose await was dropped by tokio::time::timeout",
    );
    assert!(view.cancelled());
    q.cancel("cleanup");
    c.stop(true);
}

#[test]
fn dropping_an_unfinished_wait_cancels_but_dropping_the_handle_detaches() {
    let c = Caller::new_thread("wait-drop").unwrap();
    // An abandoned select!: the pending was polled, then dropped.
    let p = forever(&c);
    let view = p.any();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::select! {
            _ = p => panic!("never finishes"),
            _ = tokio::task::yield_now() => {}
        }
    });
    support::done(&view, "the pending whose wait select! dropped");
    assert!(view.cancelled());

    // Never waited on: dropping the handle only detaches; the call runs to the end.
    let (tx, rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    drop(c.call_soon(move || {
        go_rx.recv_timeout(LIMIT).unwrap();
        tx.send("ran to the end").unwrap();
    }));
    go_tx.send(()).unwrap();
    assert_eq!(recv(&rx, "the detached call finishing"), "ran to the end");

    // A dropped `wait` future cancels too.
    let mut w = forever(&c);
    {
        let fut = w.wait(None);
        drop(fut);
    }
    support::done(&w, "the pending whose wait future was dropped");
    c.stop(true);
}

#[test]
fn wait_sync_on_the_callers_own_thread_never_hangs() {
    let c = Caller::new_thread("own-thread").unwrap();
    let c2 = c.clone();
    let res = c
        .call_soon(move || {
            let mut inner = c2.call_soon(|| 1);
            let first = inner.wait_sync(None);
            (first, inner)
        })
        .wait_sync(Some(LIMIT))
        .unwrap();
    let (first, mut inner) = res;
    assert!(
        matches!(first, Err(Error::WouldDeadlock { .. })),
        "{first:?}"
    );
    // The inner call itself still completes once the loop is free.
    assert_eq!(inner.wait_sync(Some(LIMIT)).unwrap(), 1);
    c.stop(true);
}

struct CountingWaker(AtomicUsize);
impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn thirty_two_waiters_on_eight_threads_are_all_woken_exactly_once() {
    let c = Caller::new_thread("many-waiters").unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let p = c.call_soon(move || {
        go_rx.recv_timeout(LIMIT).unwrap();
        42
    });
    let view = p.any();
    let (registered_tx, registered_rx) = mpsc::channel();
    let mut threads = Vec::new();
    for t in 0..8 {
        let view = view.clone();
        let registered_tx = registered_tx.clone();
        threads.push(std::thread::spawn(move || {
            // 3 async waiters polled once with counting wakers, 1 sync waiter.
            let wakers: Vec<_> = (0..3)
                .map(|_| Arc::new(CountingWaker(AtomicUsize::new(0))))
                .collect();
            let mut futs: Vec<_> = (0..3).map(|_| Box::pin(view.wait_done(None))).collect();
            for (f, w) in futs.iter_mut().zip(&wakers) {
                let waker = Waker::from(w.clone());
                assert!(
                    f.as_mut()
                        .poll(&mut Context::from_waker(&waker))
                        .is_pending(),
                    "thread {t}"
                );
            }
            registered_tx.send(()).unwrap();
            view.wait_done_sync(Some(LIMIT))
                .expect("the sync waiter woke");
            let mut woken = 0;
            for (f, w) in futs.iter_mut().zip(&wakers) {
                support::eventually("an async waiter being woken", || {
                    w.0.load(Ordering::SeqCst) >= 1
                });
                let waker = Waker::from(w.clone());
                assert!(matches!(
                    f.as_mut().poll(&mut Context::from_waker(&waker)),
                    Poll::Ready(Ok(()))
                ));
                woken += w.0.load(Ordering::SeqCst);
            }
            woken + 1
        }));
    }
    for _ in 0..8 {
        recv(&registered_rx, "a waiter thread registering");
    }
    go_tx.send(()).unwrap();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 32, "every waiter woken exactly once");
    let mut p = p;
    assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), 42);
    c.stop(true);
}

#[test]
fn metadata_is_shown_by_debug() {
    let c = Caller::new_thread("meta").unwrap();
    let mut p = c.schedule_call(
        || (),
        caller::CallOptions::new().name("load").meta("user", "7"),
    );
    p.wait_sync(Some(LIMIT)).unwrap();
    let dbg = format!("{p:?}");
    for needle in ["load", "meta", "user", "done: value"] {
        assert!(dbg.contains(needle), "{needle} missing from {dbg}");
    }
    assert_eq!(p.metadata().caller().unwrap().1, "meta");
    c.stop(true);
}

/// Regression: a waiter polled again while the pending's done callbacks were still
/// running indexed the already-handed-over waiter list and panicked.
#[test]
fn a_waiter_repolled_while_callbacks_run_is_woken_after_them() {
    let p = Pending::<()>::new();
    let (in_cb_tx, in_cb_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    p.add_done_callback(move |_| {
        in_cb_tx.send(()).unwrap();
        go_rx.recv_timeout(LIMIT).unwrap();
    });
    let view = p.any();
    let waker = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let w = Waker::from(waker.clone());
    let mut fut = Box::pin(view.wait_done(None));
    assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
    let finisher = std::thread::spawn(move || p.set_result(()));
    recv(&in_cb_rx, "the done callback starting");
    assert!(view.done());
    // Done but not settled: the waiter must wait for the callbacks.
    assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_pending());
    go_tx.send(()).unwrap();
    assert!(finisher.join().unwrap());
    support::eventually("the waiter being woken", || {
        waker.0.load(Ordering::SeqCst) >= 1
    });
    assert!(fut.as_mut().poll(&mut Context::from_waker(&w)).is_ready());
}

#[test]
fn a_done_callback_waiting_on_its_own_pending_gets_would_deadlock() {
    let p = Pending::<u8>::new();
    let (tx, rx) = mpsc::channel();
    p.add_done_callback(move |me| {
        let _ = tx.send(me.wait_done_sync(None));
    });
    let resolver = p.resolver();
    // Finished on a thread of its own: a hang there cannot hang the test.
    std::thread::spawn(move || resolver.set_result(1));
    let res = recv(&rx, "the callback's wait returning");
    assert!(
        matches!(res, Err(Error::WouldDeadlock { .. })),
        "expected WouldDeadlock, got {res:?}"
    );
    assert!(p.wait_done_sync(Some(LIMIT)).is_ok());
}

#[test]
fn a_done_callback_of_a_scheduled_call_waiting_on_it_gets_would_deadlock() {
    let c = Caller::new_thread("callback-self-wait").unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    let blocker = c.call_soon(move || go_rx.recv_timeout(LIMIT).is_ok());
    // Cancelled before it starts: its callbacks run on the cancelling thread.
    let p = c.call_soon(|| ());
    p.add_done_callback(move |me| {
        let _ = tx.send(me.wait_done_sync(None));
    });
    let view = p.any();
    std::thread::spawn(move || view.cancel("from a plain thread"));
    let res = recv(&rx, "the callback's wait returning");
    assert!(
        matches!(res, Err(Error::WouldDeadlock { .. })),
        "expected WouldDeadlock, got {res:?}"
    );
    go_tx.send(()).unwrap();
    support::done(&blocker, "the blocking call");
    c.stop(true);
}

#[test]
fn an_async_call_awaiting_its_own_pending_gets_would_deadlock() {
    let c = Caller::new_thread("await-self").unwrap();
    let mut p = c.call_soon_async(|| async {
        let me = Caller::current_pending().expect("inside a call");
        me.wait_done(None).await
    });
    let res = p.wait_sync(Some(LIMIT)).expect("the call finished");
    assert!(
        matches!(res, Err(Error::WouldDeadlock { .. })),
        "expected WouldDeadlock, got {res:?}"
    );
    c.stop(true);
}

/// `Pending` is a `FusedFuture`: `futures::select!` takes it as it is (no `.fuse()`),
/// skips it once it has given its outcome, and ends on `complete` when all have.
#[test]
fn select_takes_pendings_as_they_are() {
    use futures::future::FusedFuture;
    let mut a = caller::to_thread(|| 1);
    let mut b = caller::to_thread(|| 2);
    let mut got = Vec::new();
    futures::executor::block_on(caller::timeout(LIMIT, async {
        loop {
            futures::select! {
                x = a => got.push(x.expect("a's value")),
                y = b => got.push(y.expect("b's value")),
                complete => break,
            }
        }
    }))
    .expect("select! saw both pendings finish");
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    assert!(a.is_terminated() && b.is_terminated());
    assert!(!caller::Pending::<()>::new().is_terminated());
}
