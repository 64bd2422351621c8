//! Caller lifecycle: stop with queued work, scheduling after stop, children stopped first,
//! protection, panics, ordering, the registry and the current-thread entry.

mod support;

use support::{occupy, survives, PanicOnDrop};

use std::sync::{mpsc, Arc, Mutex};

use caller::{Backend, Caller, CallerState, Error};
use support::{recv, LIMIT};

#[test]
fn stop_with_ten_thousand_calls_queued_finishes_every_one_cancelled() {
    let c = Caller::new_thread("stop-queued").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let first = c.call_soon(move || {
        started_tx.send(()).unwrap();
        let _ = go_rx.recv_timeout(LIMIT);
    });
    recv(&started_rx, "the blocking call starting");
    let mut queued: Vec<_> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                c.call_soon(move || i)
            } else {
                c.call_soon_async(move || async move { i })
            }
        })
        .collect();
    let running_async = c.call_later_async(std::time::Duration::from_secs(3600), || async { 0 });
    assert_eq!(c.stop(false), CallerState::Stopping);
    go_tx.send(()).unwrap();
    for p in queued.iter_mut() {
        let err = p.wait_sync(Some(LIMIT)).unwrap_err();
        assert!(
            err.cancel_message()
                .unwrap()
                .contains("caller 'stop-queued' stopped"),
            "{err}"
        );
    }
    support::done(&running_async, "the delayed call");
    assert!(running_async.cancelled());
    support::done(&first, "the call that was running when stop came");
    futures::executor::block_on(c.stopped()).unwrap();
    assert_eq!(c.state(), CallerState::Stopped);
}

#[test]
fn scheduling_on_a_stopped_caller_gives_an_already_cancelled_pending() {
    let c = Caller::new_thread("stopped-already").unwrap();
    c.stop(false);
    futures::executor::block_on(c.stopped()).unwrap();
    let p = c.call_soon(|| 1);
    assert!(p.done(), "already done");
    let err = p.error().unwrap();
    assert!(err.is_cancelled());
    assert!(err.to_string().contains("stopped"), "{err}");
    assert!(matches!(
        c.call_direct(|| ()),
        Err(Error::CallerStopped { .. })
    ));
    assert!(
        Caller::get_existing(c.id()).is_none(),
        "a stopped caller leaves the registry"
    );
}

#[test]
fn children_are_stopped_before_their_parent() {
    let parent = Caller::new_thread("parent").unwrap();
    let child = parent.get("child").unwrap();
    let grandchild = child.get("grandchild").unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    for c in [&parent, &child, &grandchild] {
        let order = order.clone();
        let name = c.name().to_owned();
        let stopped = c.stopped();
        std::thread::spawn(move || {
            futures::executor::block_on(stopped).unwrap();
            order.lock().unwrap().push(name);
        });
    }
    let long = child.call_soon_async(std::future::pending::<()>);
    parent.stop(false);
    futures::executor::block_on(parent.stopped()).unwrap();
    assert_eq!(
        child.state(),
        CallerState::Stopped,
        "child stopped before the parent finished"
    );
    assert_eq!(grandchild.state(), CallerState::Stopped);
    support::done(&long, "the child's running call");
    assert!(long
        .error()
        .unwrap()
        .to_string()
        .contains("caller 'child' stopped"));
    support::eventually("three stop notifications", || {
        order.lock().unwrap().len() == 3
    });
}

#[test]
fn a_protected_caller_ignores_a_non_forced_stop() {
    let c = Caller::builder()
        .name("guarded")
        .protected(true)
        .spawn()
        .unwrap();
    futures::executor::block_on(c.started()).unwrap();
    assert_eq!(c.stop(false), CallerState::Running);
    assert_eq!(c.call_soon(|| 3).wait_sync(Some(LIMIT)).unwrap(), 3);
    assert_eq!(c.stop(true), CallerState::Stopping);
    futures::executor::block_on(c.stopped()).unwrap();
}

#[test]
fn a_panicking_call_leaves_its_caller_running() {
    let c = Caller::new_thread("survivor").unwrap();
    let err = c
        .call_soon(|| panic!("on purpose"))
        .wait_sync(Some(LIMIT))
        .unwrap_err();
    assert!(err.is_panic());
    c.call_direct(|| panic!("direct, on purpose")).unwrap();
    assert!(c.running());
    assert_eq!(
        c.call_soon(|| "next").wait_sync(Some(LIMIT)).unwrap(),
        "next"
    );
    c.stop(true);
}

#[test]
fn calls_from_one_thread_start_in_schedule_order_whatever_the_method() {
    let c = Caller::new_thread("ordering").unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut last = None;
    for i in 0..300 {
        let log = log.clone();
        match i % 3 {
            0 => drop(c.call_soon(move || log.lock().unwrap().push(i))),
            1 => drop(c.call_soon_async(move || async move { log.lock().unwrap().push(i) })),
            _ => c.call_direct(move || log.lock().unwrap().push(i)).unwrap(),
        }
        last = Some(c.call_soon(|| ()));
    }
    last.unwrap().wait_sync(Some(LIMIT)).unwrap();
    let got = log.lock().unwrap().clone();
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    c.stop(true);
}

#[test]
fn registry_knows_every_running_caller() {
    let c = Caller::new_thread("registered").unwrap();
    futures::executor::block_on(c.started()).unwrap();
    assert!(Caller::all_callers(true).contains(&c));
    assert_eq!(Caller::get_existing(c.id()).as_ref(), Some(&c));
    let (id_inside, current_inside) = c
        .call_soon(|| {
            (
                Caller::id_current(),
                Caller::current().map(|c| c.name().to_owned()),
            )
        })
        .wait_sync(Some(LIMIT))
        .unwrap();
    assert_eq!(id_inside, c.id(), "a caller's id is its thread's id");
    assert_eq!(current_inside.as_deref(), Some("registered"));
    assert_eq!(c.thread().name(), Some("registered"));
    c.stop(true);
}

#[test]
fn the_current_thread_entry_is_protected_and_stops_when_the_future_ends() {
    let out = Caller::builder()
        .name("entry")
        .block_on(async {
            let me = Caller::current().expect("the entry caller is current");
            assert!(me.protected());
            assert_eq!(
                me.stop(false),
                CallerState::Running,
                "protected while entered"
            );
            let worker = Caller::new_thread("entry-helper").unwrap();
            let v = worker.call_soon(|| 20).await.unwrap();
            worker.stop(true);
            let nested = Caller::builder().block_on(async {});
            assert!(nested.is_err(), "one caller per thread");
            v + me.call_soon(|| 1).await.unwrap()
        })
        .unwrap();
    assert_eq!(out, 21);
    assert!(Caller::current().is_none());
}

#[test]
fn get_returns_the_same_child_and_mismatches_are_errors() {
    let parent = Caller::new_thread("get-parent").unwrap();
    let a = parent.get("db").unwrap();
    let b = parent.get("db").unwrap();
    assert_eq!(a, b);
    assert_eq!(parent.children(), vec![a.clone()]);
    assert_eq!(a.parent().as_ref(), Some(&parent));
    assert_eq!(a.backend(), Backend::Tokio);
    let err = Caller::builder().name("other").current();
    assert!(err.is_err(), "no caller on a plain thread");
    let mismatch = a
        .call_soon(|| Caller::builder().name("not-db").current().map(|_| ()))
        .wait_sync(Some(LIMIT))
        .unwrap();
    assert!(
        matches!(mismatch, Err(Error::Mismatch { what: "name", .. })),
        "{mismatch:?}"
    );
    assert!(parent.get("").is_err(), "an empty name is refused");
    parent.stop(true);
    futures::executor::block_on(parent.stopped()).unwrap();
    assert!(matches!(
        parent.get("late"),
        Err(Error::CallerStopped { .. })
    ));
}

#[test]
fn a_detached_result_whose_drop_panics_leaves_the_caller_running() {
    let c = Caller::new_thread("drop-detached").unwrap();
    let (occupied, go) = occupy(&c);
    // Detached: the caller's thread holds the last reference when the value is stored.
    drop(c.call_soon(|| PanicOnDrop("a detached result panics in Drop")));
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
    survives(&c);
}

#[test]
fn a_value_discarded_by_a_cancel_whose_drop_panics_is_reported_in_the_outcome() {
    let c = Caller::new_thread("drop-discarded").unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let mut p = c.call_soon(move || {
        started_tx.send(()).unwrap();
        let _ = go_rx.recv_timeout(LIMIT);
        PanicOnDrop("the discarded value panics in Drop")
    });
    recv(&started_rx, "the sync call starting");
    assert!(p.cancel("not needed any more"));
    go_tx.send(()).unwrap();
    let err = p.wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    let message = err.cancel_message().unwrap();
    assert!(message.starts_with("not needed any more"), "{message}");
    assert!(
        message.contains("the discarded value panics in Drop"),
        "the outcome does not say the value's Drop panicked: {message}"
    );
    survives(&c);
}

#[test]
fn a_closure_cancelled_before_it_starts_whose_drop_panics_leaves_the_caller_running() {
    let c = Caller::new_thread("drop-unstarted").unwrap();
    let (occupied, go) = occupy(&c);
    let guard = PanicOnDrop("the unstarted closure panics in Drop");
    let sync = c.call_soon(move || {
        let _keep = &guard;
    });
    let guard = PanicOnDrop("the unstarted async closure panics in Drop");
    let not_sync = c.call_soon_async(move || {
        let _keep = &guard;
        async {}
    });
    assert!(sync.cancel("before it starts"));
    assert!(not_sync.cancel("before it starts"));
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
    survives(&c);
}

#[test]
fn stop_refuses_every_queued_call_even_when_a_closure_panics_on_drop() {
    let c = Caller::new_thread("drop-refused").unwrap();
    let (occupied, go) = occupy(&c);
    let guard = PanicOnDrop("a refused closure panics in Drop");
    let first = c.call_soon(move || {
        let _keep = &guard;
    });
    let guard = PanicOnDrop("a refused async closure panics in Drop");
    let second = c.call_soon_async(move || {
        let _keep = &guard;
        async {}
    });
    let rest: Vec<_> = (0..10).map(|i| c.call_soon(move || i)).collect();
    let guard = PanicOnDrop("a refused direct call panics in Drop");
    c.call_direct(move || {
        let _keep = &guard;
    })
    .unwrap();
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.stop(true)));
    assert_eq!(
        stopped.ok(),
        Some(CallerState::Stopping),
        "stop() let a panic out"
    );
    for (p, what) in [
        (&first, "a refused closure panics in Drop"),
        (&second, "a refused async closure panics in Drop"),
    ] {
        support::done(p, "a refused call");
        let err = p.error().unwrap();
        let message = err.cancel_message().unwrap_or_default();
        assert!(message.contains("caller 'drop-refused' stopped"), "{err}");
        assert!(
            message.contains(what),
            "the outcome does not say the closure's Drop panicked: {err}"
        );
    }
    for p in &rest {
        support::done(p, "a refused call after the panicking one");
        assert!(p.cancelled());
    }
    go.send(()).unwrap();
    support::done(&occupied, "the occupying call");
    support::eventually("the caller stopping", || c.state() == CallerState::Stopped);
}

#[test]
fn a_child_made_while_its_parent_stops_stops_too() {
    // The race: `get` checks that the parent runs, then starts the child's thread and
    // lists it; a stop landing between the two used to leave the child running for ever.
    for i in 0..1000 {
        let parent = Caller::new_thread(format!("racing-parent-{i}")).unwrap();
        parent.call_soon(|| ()).wait_sync(Some(LIMIT)).unwrap();
        let p2 = parent.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let getter = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            p2.get("kid")
        });
        recv(&ready_rx, "the getter starting");
        for _ in 0..(i % 64) * 50 {
            std::hint::spin_loop();
        }
        parent.stop(true);
        let child = getter.join().unwrap();
        futures::executor::block_on(parent.stopped()).unwrap();
        if let Ok(child) = child {
            let stopped = futures::executor::block_on(caller::timeout(LIMIT, child.stopped()));
            assert!(
                stopped.is_ok(),
                "the child made as its parent stopped never stopped"
            );
        }
    }
}
