//! Group scopes: membership across threads, nesting and shield, timeout and
//! cancellation timeout, dropping, re-entry, panics, and the debug dump.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use caller::{job, AnyPending, Caller, Error, GroupMode, Pending, PendingGroup};
use support::{recv, LIMIT};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

#[test]
fn a_call_made_inside_a_member_on_another_thread_joins_the_group() {
    let named = Caller::new_thread("scope-named").unwrap();
    let grandchild: Arc<Mutex<Option<AnyPending>>> = Arc::default();
    let g2 = grandchild.clone();
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let out = block_on(group.run(async {
        let n = named.clone();
        // Member on a pooled worker; from inside it, a call on "scope-named" that fails.
        let member = caller::to_thread(move || {
            let p = n.call_soon(job::try_sync(|| Err::<(), _>("grandchild fails")));
            *g2.lock().unwrap() = Some(p.any());
        });
        member.await.unwrap();
    }));
    let err = out.unwrap_err();
    let Error::Group(g) = &err else {
        panic!("expected a group failure, got {err}")
    };
    assert_eq!(g.failures.len(), 1, "{err}");
    assert!(err.to_string().contains("grandchild fails"), "{err}");
    assert!(grandchild.lock().unwrap().as_ref().unwrap().done());
    named.stop(true);
}

#[test]
fn nested_members_belong_to_the_outer_group_and_inner_failures_cancel_it() {
    let outer = PendingGroup::new(GroupMode::IgnoreCancelled);
    let outer2 = outer.clone();
    let (seen_tx, seen_rx) = mpsc::channel();
    let out = block_on(outer.run(async move {
        let long = caller::to_thread_async(std::future::pending::<()>);
        let long_view = long.any();
        drop(long);
        let inner = PendingGroup::new(GroupMode::IgnoreCancelled);
        let inner_out = inner
            .run(async {
                let p = caller::to_thread(|| -> () { panic!("inner member panics on purpose") });
                // The inner member is a member of the outer group too.
                seen_tx
                    .send(outer2.members().iter().any(|m| m.id() == p.id()))
                    .unwrap();
                let _ = p.any().wait_done(None).await;
            })
            .await;
        assert!(inner_out.unwrap_err().is_failure());
        // The failure reached the outer group too: it cancelled the outer's other member.
        let _ = long_view.wait_done(Some(LIMIT)).await;
        assert!(long_view.cancelled());
    }));
    assert!(
        recv(&seen_rx, "the membership check"),
        "inner member not in outer group"
    );
    let err = out.unwrap_err();
    assert!(err.is_failure(), "{err}");
}

#[test]
fn a_shielded_inner_group_survives_the_outer_cancel() {
    let outer = PendingGroup::new(GroupMode::IgnoreCancelled);
    let outer_handle = outer.clone();
    let release = Pending::<()>::new();
    let release_view = release.any();
    let (inner_started_tx, inner_started_rx) = mpsc::channel();
    let inner_result = Arc::new(Mutex::new(None));
    let ir = inner_result.clone();
    let canceller = std::thread::spawn(move || {
        recv(&inner_started_rx, "the shielded group starting");
        outer_handle.cancel("outer cancelled");
        // The shielded member keeps running: release it now.
        release.set_result(());
    });
    let out = block_on(outer.run(async move {
        let inner = PendingGroup::builder().shield(true).build();
        let r = inner
            .run(async move {
                let rv = release_view.clone();
                let member = caller::to_thread_async(move || async move {
                    let _ = rv.wait_done(None).await;
                    "shielded member finished"
                });
                inner_started_tx.send(()).unwrap();
                member.await
            })
            .await;
        *ir.lock().unwrap() = Some(r);
    }));
    canceller.join().unwrap();
    // The outer group was cancelled (mode 0: quietly)...
    assert!(out.is_ok(), "{out:?}");
    // ...but the shielded body and member ran to the end.
    let inner = inner_result
        .lock()
        .unwrap()
        .take()
        .expect("shielded body finished");
    assert_eq!(inner.unwrap().unwrap().unwrap(), "shielded member finished");
}

#[test]
fn the_timeout_cancels_members_and_a_stubborn_member_does_not_hang_the_exit() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let stubborn_ran = Arc::new(AtomicBool::new(false));
    let s = stubborn_ran.clone();
    let group = PendingGroup::builder()
        .mode(GroupMode::CancelAndRaise)
        .timeout(Duration::from_millis(30))
        // The stubborn member is held until after the exit; the polite one normally stops
        // well within this (how fast is not what this test pins: under miri it may not).
        .cancellation_timeout(Duration::from_secs(2))
        .build();
    let polite: Arc<Mutex<Option<AnyPending>>> = Arc::default();
    let pv = polite.clone();
    let stubborn_id = Arc::new(Mutex::new(0u64));
    let sid = stubborn_id.clone();
    let out = block_on(group.run(async move {
        let p = caller::to_thread_async(std::future::pending::<()>);
        *pv.lock().unwrap() = Some(p.any());
        // A sync member ignores cancellation: it cannot be interrupted.
        let stubborn = caller::to_thread(move || {
            s.store(true, Ordering::SeqCst);
            let _ = release_rx.recv_timeout(LIMIT);
        });
        *sid.lock().unwrap() = stubborn.id();
        let _ = stubborn.protect().await;
    }));
    let err = out.unwrap_err();
    let Error::Group(g) = &err else {
        panic!("expected the exit to name the abandoned member, got {err}")
    };
    let stubborn = format!("#{} ", *stubborn_id.lock().unwrap());
    assert!(
        g.abandoned.iter().any(|a| a.starts_with(&stubborn)),
        "the stubborn member is named as abandoned: {err}"
    );
    assert!(
        g.cancelled.as_deref().unwrap().contains("timed out"),
        "{err}"
    );
    let polite = polite.lock().unwrap().clone().unwrap();
    support::done(&polite, "the cancellable member");
    assert!(polite.cancelled());
    assert!(stubborn_ran.load(Ordering::SeqCst));
    release_tx.send(()).unwrap();
}

#[test]
fn dropping_the_group_future_cancels_every_member() {
    let members: Arc<Mutex<Vec<AnyPending>>> = Arc::default();
    let m = members.clone();
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let c = Caller::new_thread("drop-group").unwrap();
    let c2 = c.clone();
    let fut = group.run(async move {
        let a = caller::to_thread_async(std::future::pending::<()>);
        let b = c2.call_soon_async(std::future::pending::<()>);
        m.lock().unwrap().extend([a.any(), b.any()]);
        std::future::pending::<()>().await;
    });
    let mut fut = Box::pin(fut);
    assert!(futures::executor::block_on(futures::future::poll_immediate(&mut fut)).is_none());
    drop(fut);
    let members = members.lock().unwrap().clone();
    assert_eq!(members.len(), 2);
    for p in &members {
        support::done(p, "a member of the dropped group");
        assert!(p.cancelled());
    }
    c.stop(true);
}

#[test]
fn a_group_is_entered_once_and_a_body_panic_cancels_members() {
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    assert_eq!(block_on(group.run(async { 1 })).unwrap(), Some(1));
    let again = block_on(group.run(async { 2 }));
    assert!(matches!(again, Err(Error::Invalid { .. })), "{again:?}");

    let member: Arc<Mutex<Option<AnyPending>>> = Arc::default();
    let m = member.clone();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(
            PendingGroup::new(GroupMode::IgnoreCancelled).run(async move {
                let p = caller::to_thread_async(std::future::pending::<()>);
                *m.lock().unwrap() = Some(p.any());
                panic!("the body panics on purpose");
            }),
        )
    }));
    assert!(panicked.is_err(), "the body's panic comes out unchanged");
    let p = member.lock().unwrap().clone().unwrap();
    support::done(&p, "the member of the panicked group");
    assert!(p.cancelled());
}

#[test]
fn cancel_from_another_thread_and_the_dump_shows_the_live_tree() {
    let c = Caller::new_thread("dump-host").unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let res = c.call_soon_async(move || async move {
        let group = PendingGroup::new(GroupMode::CancelAndRaise);
        let handle = group.clone();
        group
            .run(async move {
                let _m = caller::to_thread_async(std::future::pending::<()>);
                ready_tx.send(handle).unwrap();
                std::future::pending::<()>().await
            })
            .await
    });
    let handle = recv(&ready_rx, "the group body starting");
    let dump = caller::dump();
    assert!(dump.contains("caller 'dump-host'"), "{dump}");
    assert!(dump.contains(&format!("group #{}", handle.id())), "{dump}");
    assert!(dump.contains("CancelAndRaise"), "{dump}");
    assert!(!handle.cancelled());
    assert!(handle.cancel("stop from elsewhere"));
    let mut res = res;
    let out = res.wait_sync(Some(LIMIT)).unwrap();
    assert_eq!(
        out.unwrap_err().cancel_message(),
        Some("stop from elsewhere")
    );
    assert!(
        !handle.cancel("too late"),
        "cancel after exit returns false"
    );
    c.stop(true);
}

#[test]
fn a_member_added_after_exit_is_cancelled_at_once() {
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    block_on(group.run(async {})).unwrap();
    let late = Pending::<()>::new();
    group.add(&late);
    assert!(late.cancelled());
}

#[test]
fn try_run_returns_the_bodys_error_unchanged_in_every_mode() {
    for mode in [
        GroupMode::IgnoreCancelled,
        GroupMode::CancelAndRaise,
        GroupMode::CancelQuietly,
        GroupMode::Raise,
        GroupMode::Supervisor,
    ] {
        let member: Arc<Mutex<Option<AnyPending>>> = Arc::default();
        let m = member.clone();
        let out = block_on(PendingGroup::new(mode).try_run(async move {
            let p = caller::to_thread_async(std::future::pending::<()>);
            *m.lock().unwrap() = Some(p.any());
            "x".parse::<u8>()
        }));
        match out {
            Ok(Some(Err(e))) => assert_eq!(e.to_string(), "invalid digit found in string"),
            other => panic!("{mode:?}: the body's error did not come out unchanged: {other:?}"),
        }
        let p = member.lock().unwrap().clone().unwrap();
        support::done(&p, "the member of a group whose body failed");
        assert!(p.cancelled(), "{mode:?}: members are cancelled");
    }
}

#[test]
fn a_group_error_names_each_failed_member() {
    let out = block_on(PendingGroup::new(GroupMode::Supervisor).run(async {
        for item in [3u32, 17] {
            let opts = caller::CallOptions::new()
                .name("parse item")
                .meta("item", item.to_string());
            drop(caller::to_thread_with(
                job::try_sync(move || format!("x{item}").parse::<u32>()),
                opts,
            ));
        }
    }));
    let Err(Error::Group(g)) = out else {
        panic!("the supervisor reports its failures: {out:?}")
    };
    let mut items: Vec<&str> = g.failures.iter().filter_map(|f| f.meta("item")).collect();
    items.sort();
    assert_eq!(items, ["17", "3"]);
    for f in &g.failures {
        assert_eq!(f.name, "parse item");
        assert!(f.id > 0);
        assert!(f.caller.as_deref().unwrap().starts_with("caller-worker-"));
        assert!(f.error.is_failure());
    }
    let text = g.to_string();
    assert!(
        text.contains("item=17") && text.contains("item=3"),
        "{text}"
    );
}

#[test]
fn a_group_ended_by_its_own_timeout_says_so_where_its_mode_raises() {
    for mode in [
        GroupMode::CancelAndRaise,
        GroupMode::Raise,
        GroupMode::Supervisor,
    ] {
        let group = PendingGroup::builder()
            .mode(mode)
            .timeout(Duration::from_millis(20))
            .build();
        let err = block_on(group.run(std::future::pending::<()>())).unwrap_err();
        assert!(err.is_timeout(), "{mode:?}: {err}");
        assert!(
            err.is_cancelled(),
            "{mode:?}: a timeout is a cancellation too"
        );
        assert!(err.to_string().contains("timed out after 20ms"), "{err}");
    }
    // Cancelled by hand: no timeout is claimed.
    let g = PendingGroup::builder()
        .mode(GroupMode::Raise)
        .timeout(LIMIT)
        .build();
    let g2 = g.clone();
    let err = block_on(g.run(async move {
        g2.cancel("by hand");
        std::future::pending::<()>().await
    }))
    .unwrap_err();
    assert!(!err.is_timeout() && err.is_cancelled(), "{err}");
    // Modes that exit quietly stay quiet.
    let quiet = PendingGroup::builder()
        .mode(GroupMode::IgnoreCancelled)
        .timeout(Duration::from_millis(1))
        .build();
    assert!(matches!(
        block_on(quiet.run(std::future::pending::<()>())),
        Ok(None)
    ));
}

#[test]
fn a_nested_group_error_appears_once_in_the_enclosing_error_in_every_mode() {
    for outer_mode in [
        GroupMode::IgnoreCancelled,
        GroupMode::CancelAndRaise,
        GroupMode::CancelQuietly,
        GroupMode::Raise,
        GroupMode::Supervisor,
    ] {
        let out = block_on(PendingGroup::new(outer_mode).run(async {
            let inner = PendingGroup::new(GroupMode::CancelAndRaise)
                .run(async {
                    let _ = caller::to_thread(job::try_sync(|| "x".parse::<u8>())).await;
                })
                .await;
            inner.unwrap_err()
        }));
        let err = out.unwrap_err();
        let Error::Group(outer) = &err else {
            panic!("{outer_mode:?}: the enclosing group raises the nested failure: {err}")
        };
        assert_eq!(outer.failures.len(), 1, "{outer_mode:?}: {err}");
        let Error::Group(nested) = &outer.failures[0].error else {
            panic!("{outer_mode:?}: the nested group's error as it was raised: {err}")
        };
        assert_eq!(nested.failures.len(), 1, "{outer_mode:?}: {err}");
        assert_eq!(
            err.to_string().matches("invalid digit").count(),
            1,
            "{outer_mode:?}: {err}"
        );
    }
}

#[test]
fn a_callback_id_cannot_remove_the_groups_hook_on_a_member() {
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let out = block_on(group.run(async move {
        let member = caller::to_thread(move || go_rx.recv_timeout(LIMIT).is_ok());
        // The first id handed out by a fresh pending: the number the group's hook has on
        // `member`.
        let foreign = Pending::<()>::new().add_done_callback(|_| {});
        assert!(
            !member.remove_done_callback(foreign),
            "an id from another pending removed the group's hook"
        );
        drop(member);
        go_tx.send(()).unwrap();
    }));
    out.unwrap();
}
