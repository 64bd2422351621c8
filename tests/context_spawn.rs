//! Work spawned outside the runtime — `tokio::spawn`, `std::thread::spawn`, a pool —
//! keeps its group membership when the user carries the context over with
//! `Context::scope` (futures) or `Context::wrap` (closures), and does not without it.

mod support;

use std::time::Duration;

use caller::{AnyPending, Context, Error, GroupMode, Pending, PendingGroup};

/// A call that never ends unless cancelled.
fn endless() -> Pending<()> {
    caller::to_thread_async(std::future::pending::<()>)
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn calls_from_a_tokio_task_join_the_group_when_its_future_is_scoped() {
    let rt = tokio_runtime();
    let group = PendingGroup::new(GroupMode::CancelAndRaise);
    let g = group.clone();
    let out = futures::executor::block_on(group.run(async {
        let ctx = Context::current();
        let task = rt.spawn(ctx.scope(async { endless().any() }));
        let member = task.await.expect("the tokio task ran");
        assert!(
            g.members().contains(&member),
            "a call made in a scoped tokio task is a member"
        );
        g.cancel("stop the members");
        std::future::pending::<()>().await
    }));
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn calls_from_a_plain_thread_join_the_group_when_its_closure_is_wrapped() {
    let group = PendingGroup::new(GroupMode::CancelAndRaise);
    let g = group.clone();
    let out = futures::executor::block_on(group.run(async {
        let wrapped = std::thread::spawn(Context::current().wrap(|| endless().any()));
        let member = wrapped.join().expect("the thread ran");
        assert!(g.members().contains(&member), "a member");
        // The group's cancel reaches the call the thread made.
        g.cancel("enough");
        member
    }));
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn a_failure_in_a_call_made_by_wrapped_work_fails_the_group() {
    let group = PendingGroup::new(GroupMode::CancelAndRaise);
    let out = futures::executor::block_on(group.run(async {
        let sibling = endless();
        let failing = std::thread::spawn(
            Context::current()
                .wrap(|| caller::to_thread(caller::job::try_sync(|| "x".parse::<u8>()))),
        )
        .join()
        .expect("the thread ran");
        let _ = failing.await;
        sibling.await
    }));
    let err = out.unwrap_err();
    assert!(matches!(err, Error::Group(_)), "unexpected error: {err}");
}

#[test]
fn without_the_wrapper_spawned_work_is_outside_the_group() {
    let rt = tokio_runtime();
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let g = group.clone();
    let (task_call, thread_call) = futures::executor::block_on(async {
        group
            .run(async {
                // A tokio task and a thread start with an empty context.
                let from_task = rt
                    .spawn(async { endless().any() })
                    .await
                    .expect("the tokio task ran");
                let from_thread = std::thread::spawn(|| endless().any())
                    .join()
                    .expect("the thread ran");
                assert!(g.members().is_empty(), "neither call joined the group");
                (from_task, from_thread)
            })
            .await
            .expect("the group exits at once: it has no members")
            .expect("the body finished")
    });
    // The group is gone; the calls it did not know about still run.
    let unfinished = |p: &AnyPending| !p.done();
    assert!(unfinished(&task_call) && unfinished(&thread_call));
    task_call.cancel("test over");
    thread_call.cancel("test over");
    support::done(&task_call, "the cancelled call from the task");
    support::done(&thread_call, "the cancelled call from the thread");
}

#[test]
fn a_scoped_tokio_task_is_not_itself_a_member() {
    // The group waits for the calls the task makes, not for the task.
    let rt = tokio_runtime();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let group = PendingGroup::new(GroupMode::CancelAndRaise);
    let task = futures::executor::block_on(async {
        let task = group
            .run(async {
                let ctx = Context::current();
                rt.spawn(ctx.scope(async move {
                    started_tx.send(()).expect("the test listens");
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }))
                .abort_handle()
            })
            .await
            .expect("the group exited without waiting for the task")
            .expect("the body finished");
        support::recv(&started_rx, "the tokio task starting");
        task
    });
    assert!(!task.is_finished(), "the task outlives the group");
    task.abort();
}
