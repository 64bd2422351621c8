//! loom models of the pending state machine (see `mod.rs` for the states): every
//! interleaving of a completion, a cancel, callbacks being added and removed, waiters of
//! every kind and a wait that times out. Run with
//! `RUSTFLAGS="--cfg caller_loom" cargo test -p caller --lib --release loom_`.
//!
//! Each model says what must hold whatever the order: exactly one outcome, every callback
//! run once (or removed and never run), every waiter woken (a lost wake-up is a deadlock,
//! which loom reports), and what a waiter sees once woken (the callbacks' effects).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::{Metadata, Pending, PendingState, Shared};
use crate::error::Error;
use crate::sync::model;

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

fn outcome<T: Send + 'static>(p: &Pending<T>) -> PendingState {
    assert!(
        p.done(),
        "the pending is done once every thread finished: {p:?}"
    );
    p.state()
}

#[test]
fn loom_completion_races_cancel_one_outcome_wins() {
    model(|| {
        let p = Pending::<u32>::new();
        let r = p.resolver();
        let view = p.any();
        let setter = thread::spawn(move || r.set_result(7));
        let cancelled = view.cancel("stop");
        let set = setter.join().unwrap();
        assert_ne!(set, cancelled, "exactly one of the two finishes it");
        match outcome(&p) {
            PendingState::Value => assert!(set),
            PendingState::Error(e) => assert!(cancelled && e.is_cancelled(), "{e}"),
            PendingState::Running { .. } => unreachable!(),
        }
    });
}

#[test]
fn loom_a_running_call_cancelled_finishes_once_on_its_runner() {
    // The protocol of the call tasks (`job.rs`): claim with `try_start`, store the waker
    // with `set_runner` (refused once a cancel was asked), finish on the runner's thread.
    model(|| {
        let shared = Shared::<u32>::new(Metadata::new("model".into(), None));
        let p = Pending::from_shared(shared.clone());
        let view = p.any();
        let runner = thread::spawn(move || {
            let mut polls = 0;
            loom::future::block_on(std::future::poll_fn(|cx| {
                polls += 1;
                if polls == 1 && !shared.try_start() {
                    return Poll::Ready(());
                }
                if !shared.header().set_runner(cx.waker()) {
                    shared.finish_cancelled("");
                    return Poll::Ready(());
                }
                // A future that never finishes by itself (`std::future::pending`): only
                // the cancel can end it, so a cancel that fails to wake it is a deadlock.
                Poll::Pending
            }));
        });
        assert!(view.cancel("stop"));
        runner.join().unwrap();
        match outcome(&p) {
            PendingState::Error(e) => assert_eq!(e.cancel_message(), Some("stop")),
            other => panic!("a cancelled call ended {other:?}"),
        }
    });
}

#[test]
fn loom_callbacks_run_once_or_are_removed_never_run() {
    model(|| {
        let p = Pending::<u32>::new();
        let r = p.resolver();
        let (kept, removable) = (counter(), counter());
        let view = p.any();
        let (k, rm) = (kept.clone(), removable.clone());
        let adder = thread::spawn(move || {
            view.add_done_callback(move |_| {
                k.fetch_add(1, Ordering::SeqCst);
            });
            let id = view.add_done_callback(move |_| {
                rm.fetch_add(1, Ordering::SeqCst);
            });
            view.remove_done_callback(id)
        });
        r.set_result(1);
        let removed = adder.join().unwrap();
        assert_eq!(
            kept.load(Ordering::SeqCst),
            1,
            "a kept callback runs exactly once"
        );
        let ran = removable.load(Ordering::SeqCst);
        assert_eq!(
            ran,
            usize::from(!removed),
            "removed: {removed}, ran {ran} times"
        );
    });
}

#[test]
fn loom_every_waiter_is_woken_after_the_callbacks() {
    model(|| {
        let mut p = Pending::<u32>::new();
        let r = p.resolver();
        let seen = counter();
        let s = seen.clone();
        p.add_done_callback(move |_| {
            s.fetch_add(1, Ordering::SeqCst);
        });
        let (view, s2) = (p.any(), seen.clone());
        let async_waiter = thread::spawn(move || {
            loom::future::block_on(view.wait_done(None)).unwrap();
            assert_eq!(
                s2.load(Ordering::SeqCst),
                1,
                "woken before the callbacks ran"
            );
        });
        let (view, s3) = (p.any(), seen.clone());
        let sync_waiter = thread::spawn(move || {
            view.wait_done_sync(None).unwrap();
            assert_eq!(
                s3.load(Ordering::SeqCst),
                1,
                "woken before the callbacks ran"
            );
        });
        r.set_result(5);
        assert_eq!(loom::future::block_on(&mut p).unwrap(), 5);
        async_waiter.join().unwrap();
        sync_waiter.join().unwrap();
    });
}

/// The finisher notifies sleeping synchronous waiters after it released the state lock
/// (so that they do not wake only to block on it): no interleaving loses the wake-up.
#[test]
fn loom_a_sync_waiter_notified_after_the_lock_is_never_lost() {
    model(|| {
        let mut p = Pending::<u32>::new();
        let r = p.resolver();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let view = p.any();
                thread::spawn(move || view.wait_done_sync(None).unwrap())
            })
            .collect();
        r.set_result(7);
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(loom::future::block_on(&mut p).unwrap(), 7);
    });
}

#[test]
fn loom_a_timed_out_wait_cancels_unless_the_value_came_first() {
    model(|| {
        let mut p = Pending::<u32>::new();
        let r = p.resolver();
        let setter = thread::spawn(move || r.set_result(3));
        // A zero timeout times out at once unless the pending is already done: the race
        // of the timeout's cancel with the completion.
        let waited = p.wait_sync(Some(Duration::ZERO));
        let set = setter.join().unwrap();
        match waited {
            Ok(v) => assert_eq!((v, set), (3, true)),
            Err(e) => {
                assert!(e.is_timeout(), "{e}");
                match outcome(&p) {
                    PendingState::Value => assert!(set),
                    PendingState::Error(e) => assert!(!set && e.is_cancelled(), "{e}"),
                    PendingState::Running { .. } => unreachable!(),
                }
            }
        }
    });
}

#[test]
fn loom_an_abandoned_wait_cancels_and_a_protected_one_does_not() {
    for protected in [false, true] {
        model(move || {
            let mut p = Pending::<u32>::new();
            p.set_protected(protected);
            let r = p.resolver();
            let setter = thread::spawn(move || r.set_result(3));
            {
                // Polled once, then dropped: a `select!` that went the other way.
                let mut wait = p.wait(None);
                let waker = futures::task::noop_waker();
                let _ = Pin::new(&mut wait).poll(&mut Context::from_waker(&waker));
            }
            let set = setter.join().unwrap();
            match outcome(&p) {
                PendingState::Value => assert!(set),
                PendingState::Error(e) => {
                    assert!(!protected, "a protected handle never cancels: {e}");
                    assert!(!set && e.is_cancelled(), "{e}");
                }
                PendingState::Running { .. } => unreachable!(),
            }
        });
    }
}

#[test]
fn loom_a_canceller_runs_once_and_its_producer_finishes() {
    model(|| {
        let p = Pending::<u32>::new();
        let r = p.resolver();
        let calls = counter();
        let c = calls.clone();
        let r2 = r.clone();
        p.set_canceller(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            r2.set_error(Error::cancelled("by the producer"));
        });
        let view = p.any();
        let canceller = thread::spawn(move || view.cancel("stop"));
        let set = r.set_result(1);
        let cancelled = canceller.join().unwrap();
        let ran = calls.load(Ordering::SeqCst);
        assert!(ran <= 1, "the canceller ran {ran} times");
        assert!(
            ran == 0 || cancelled,
            "the canceller ran for a cancel that said no"
        );
        match outcome(&p) {
            // The value may still win after the canceller was called.
            PendingState::Value => assert!(set),
            // Cancelled by the producer, or by a completion that came after the cancel
            // was asked (the value is then discarded).
            PendingState::Error(e) => assert!(cancelled && e.is_cancelled(), "{e}"),
            PendingState::Running { .. } => unreachable!(),
        }
    });
}
