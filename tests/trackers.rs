//! Context propagation and managers.

mod support;

use std::sync::mpsc;

use caller::{Caller, Context, PendingManager};
use support::{recv, LIMIT};

#[test]
fn two_managers_on_different_tasks_of_one_caller_do_not_see_each_others_pendings() {
    let c = Caller::new_thread("managers").unwrap();
    let (tx, rx) = mpsc::channel();
    for name in ["a", "b"] {
        let tx = tx.clone();
        drop(c.call_soon_async(move || async move {
            let m = PendingManager::new();
            let _guard = m.activate();
            let mut made = Vec::new();
            for _ in 0..3 {
                // Interleave with the other task between every call.
                tokio::task::yield_now().await;
                made.push(caller::to_thread_async(std::future::pending::<()>).any());
                made.push(
                    Caller::current()
                        .unwrap()
                        .call_soon_async(std::future::pending::<()>)
                        .any(),
                );
            }
            tx.send((name, m, made)).unwrap();
        }));
    }
    let mut results = vec![recv(&rx, "task a finishing"), recv(&rx, "task b finishing")];
    results.sort_by_key(|r| r.0);
    for (name, m, made) in &results {
        let mut seen = m.pendings();
        seen.sort_by_key(|p| p.id());
        let mut want = made.clone();
        want.sort_by_key(|p| p.id());
        assert_eq!(
            seen, want,
            "manager {name} sees exactly its own task's pendings"
        );
    }
    for (_, m, made) in results {
        assert_eq!(m.cancel_all("done"), 6);
        for p in made {
            support::done(&p, "a cancelled tracked pending");
        }
    }
    c.stop(true);
}

#[test]
fn a_context_carries_managers_to_plain_threads_and_foreign_executors() {
    let m = PendingManager::new();
    m.activate_forever();
    assert!(m.is_active());
    let ctx = Context::current();
    m.deactivate();
    assert!(!m.is_active());
    let from_thread = std::thread::spawn({
        let ctx = ctx.clone();
        move || {
            let _g = ctx.enter();
            caller::to_thread_async(std::future::pending::<()>).any()
        }
    })
    .join()
    .unwrap();
    let from_executor = futures::executor::block_on(
        ctx.scope(async { caller::to_thread_async(std::future::pending::<()>).any() }),
    );
    let untracked = caller::to_thread_async(std::future::pending::<()>);
    let seen = m.pendings();
    assert!(seen.contains(&from_thread) && seen.contains(&from_executor));
    assert!(!seen.contains(&untracked.any()));
    m.cancel_all("cleanup");
    untracked.cancel("cleanup");
    futures::executor::block_on(m.wait_all());
    let _ = LIMIT;
}

#[test]
fn a_call_that_opts_out_of_a_tracker_kind_does_not_see_it() {
    use caller::{CallOptions, GroupMode, PendingGroup, Trackers};
    let c = Caller::new_thread("opt-out").unwrap();
    let m = PendingManager::new();
    let (tx, rx) = mpsc::channel();
    let m2 = m.clone();
    let c2 = c.clone();
    let out = futures::executor::block_on(PendingGroup::new(GroupMode::IgnoreCancelled).run(
        async move {
            let _guard = m2.activate();
            for (kinds, label) in [
                (Trackers::NONE, "none"),
                (Trackers::MANAGERS, "managers"),
                (Trackers::GROUPS, "groups"),
            ] {
                let (tx, m3) = (tx.clone(), m2.clone());
                let p = c2.schedule_call(
                    move || {
                        let made = caller::to_thread_async(std::future::pending::<()>).any();
                        let seen = (
                            label,
                            caller::PendingGroup::current().is_some(),
                            m3.is_active(),
                            made.clone(),
                        );
                        tx.send(seen).unwrap();
                    },
                    CallOptions::new().trackers(kinds),
                );
                p.await.unwrap();
            }
            // End the scope now: its members are cancelled, the rest keep running.
            caller::PendingGroup::current()
                .unwrap()
                .cancel("the checks are done");
        },
    ));
    assert!(
        out.is_ok(),
        "a mode-0 group exits quietly when cancelled: {out:?}"
    );
    let group_of = |made: &caller::AnyPending| made.done() && made.cancelled();
    for _ in 0..3 {
        let (label, sees_group, sees_manager, made) = recv(&rx, "a call reporting its context");
        match label {
            "none" => assert!(!sees_group && !sees_manager, "{label}"),
            "managers" => assert!(!sees_group && sees_manager, "{label}"),
            "groups" => assert!(sees_group && !sees_manager, "{label}"),
            _ => unreachable!(),
        }
        // What the call made joined exactly the kinds it saw: the group's exit cancels its
        // members, the manager keeps the rest.
        assert_eq!(m.pendings().contains(&made), sees_manager, "{label}");
        if sees_group {
            support::done(&made, "a member of the exited group");
            assert!(group_of(&made), "{label}");
        } else {
            assert!(!made.done(), "{label}: not a group member");
            made.cancel("cleanup");
        }
    }
    c.stop(true);
}

#[test]
fn a_manager_removes_by_hand_and_ignores_repeats_and_done_pendings() {
    let m = PendingManager::new();
    let p = caller::Pending::<()>::new();
    m.add(&p);
    m.add(&p);
    assert_eq!(m.pendings(), vec![p.any()], "added twice, tracked once");
    assert!(m.remove(&p));
    assert!(!m.remove(&p));
    assert!(m.pendings().is_empty());
    let done = caller::Pending::<()>::new();
    done.set_result(());
    m.add(&done);
    assert!(m.pendings().is_empty(), "a done pending is ignored");
    // Removed by hand: finishing it later leaves the manager alone.
    m.add(&p);
    assert!(m.remove(&p));
    p.set_result(());
    assert!(m.pendings().is_empty());
}
