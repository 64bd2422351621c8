//! Programs that already run tokio: `CallerBuilder::run_here` makes the current thread a
//! caller for the life of a future without leaving the runtime, and `block_on` inside a
//! runtime is an error that says what to use instead.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use caller::{Caller, CallerState, Error};
use support::{recv, LIMIT};

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn run_here_makes_the_thread_a_caller_inside_a_current_thread_runtime() {
    let rt = current_thread_runtime();
    let me = std::thread::current().id();
    let (id, name) = rt.block_on(async {
        Caller::builder()
            .name("tokio-first-here")
            .run_here(async {
                let here = Caller::current().expect("run_here makes this thread a caller");
                // A call sent from another thread runs here, on the runtime's thread.
                let target = here.clone();
                let (tx, rx) = tokio::sync::oneshot::channel();
                std::thread::spawn(move || {
                    let sent = target
                        .call_soon(|| std::thread::current().id())
                        .wait_sync(Some(LIMIT));
                    let _ = tx.send(sent);
                });
                let ran_on = tokio::time::timeout(LIMIT, rx)
                    .await
                    .expect("within LIMIT: the other thread did not answer")
                    .expect("the other thread answered")
                    .expect("the call on the run_here caller finished");
                // Tokio keeps working beside the caller: timers and plain tasks.
                tokio::time::sleep(Duration::from_millis(1)).await;
                let task = tokio::spawn(async { 7 }).await.expect("a tokio task ran");
                assert_eq!(task, 7);
                (ran_on, here.name().to_owned())
            })
            .await
            .expect("the caller ran its future to the end")
    });
    assert_eq!(id, me, "the call ran on the thread that runs the runtime");
    assert_eq!(name, "tokio-first-here");
    assert!(
        Caller::current().is_none(),
        "the caller ended with its future"
    );
    assert!(
        Caller::all_callers(false)
            .iter()
            .all(|c| c.name() != "tokio-first-here"),
        "the caller left the registry"
    );
    // The runtime is still there and usable.
    assert_eq!(rt.block_on(async { 1 }), 1);
}

#[test]
fn run_here_works_inside_a_local_set_with_not_send_calls() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let out = local.block_on(&rt, async {
        // A task of the outer LocalSet goes on while the caller runs.
        let beside = tokio::task::spawn_local(async { std::rc::Rc::new(5) });
        let out = Caller::builder()
            .name("tokio-first-local")
            .run_here(async {
                let here = Caller::current().expect("a caller");
                here.call_soon_async(|| async {
                    let rc = std::rc::Rc::new(3); // !Send, held across an await
                    tokio::task::yield_now().await;
                    *rc
                })
                .await
            })
            .await
            .expect("the caller ran");
        (out, *beside.await.expect("the LocalSet task ran"))
    });
    assert_eq!(out.0.expect("the call finished"), 3);
    assert_eq!(out.1, 5);
}

#[test]
fn run_here_on_a_multi_thread_runtime_runs_calls_on_the_polling_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let me = std::thread::current().id();
    let ran_on = rt.block_on(async {
        Caller::builder()
            .name("tokio-first-multi")
            .run_here(async {
                let here = Caller::current().expect("a caller");
                caller::to_thread(move || here.call_soon(|| std::thread::current().id()))
                    .await
                    .expect("the worker call finished")
                    .await
                    .expect("the call back finished")
            })
            .await
            .expect("the caller ran")
    });
    assert_eq!(
        ran_on, me,
        "block_on polls its future on the calling thread"
    );
}

#[test]
fn block_on_inside_a_runtime_is_an_error_that_names_run_here() {
    let rt = current_thread_runtime();
    let err = rt
        .block_on(async {
            Caller::builder()
                .name("tokio-first-block-on")
                .block_on(async { 1 })
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { message } if message.contains("run_here")),
        "unexpected error: {err}"
    );
    assert!(Caller::current().is_none(), "no caller was left behind");
}

#[test]
fn run_here_without_a_runtime_is_an_error_that_names_block_on() {
    let err = futures::executor::block_on(
        Caller::builder()
            .name("tokio-first-no-runtime")
            .run_here(async { 1 }),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { message } if message.contains("block_on")),
        "unexpected error: {err}"
    );
}

#[test]
fn a_second_run_here_on_the_same_thread_is_an_error() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let (inside_tx, inside_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let second = local.block_on(&rt, async {
        let first = tokio::task::spawn_local(Caller::builder().name("tokio-first-one").run_here(
            async move {
                let _ = inside_tx.send(());
                let _ = done_rx.await;
            },
        ));
        inside_rx.await.expect("the first caller started");
        // Between two polls of the first caller's future, the thread still belongs to it.
        let second = Caller::builder()
            .name("tokio-first-two")
            .run_here(async {})
            .await;
        let _ = done_tx.send(());
        first
            .await
            .expect("the first task ended")
            .expect("the first caller ran");
        second
    });
    let err = second.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { message } if message.contains("tokio-first-one")),
        "unexpected error: {err}"
    );
}

#[test]
fn dropping_the_run_here_future_stops_the_caller_and_cancels_its_calls() {
    let rt = current_thread_runtime();
    let (caller_tx, caller_rx) = mpsc::channel();
    rt.block_on(async {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let run = Caller::builder()
            .name("tokio-first-dropped")
            .run_here(async move {
                let here = Caller::current().expect("a caller");
                let endless = here.call_soon_async(move || async move {
                    let _ = started_tx.send(());
                    std::future::pending::<()>().await
                });
                caller_tx.send((here, endless)).expect("the test listens");
                std::future::pending::<()>().await
            });
        // Run it until the call started, then drop it.
        let started = tokio::time::timeout(LIMIT, started_rx);
        match futures::future::select(Box::pin(run), Box::pin(started)).await {
            futures::future::Either::Left(_) => panic!("the caller's future cannot end"),
            futures::future::Either::Right((started, _run)) => started
                .expect("within LIMIT: the endless call did not start")
                .expect("the call started"),
        }
    });
    let (here, mut endless) = recv(&caller_rx, "the caller handing itself out");
    assert_eq!(here.state(), CallerState::Stopped);
    let err = endless.wait_sync(Some(LIMIT)).unwrap_err();
    assert!(
        err.cancel_message()
            .is_some_and(|m| m.contains("tokio-first-dropped")),
        "unexpected error: {err}"
    );
}

#[test]
fn a_sync_wait_for_the_run_here_caller_from_another_task_is_would_deadlock() {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let (caller_tx, caller_rx) = tokio::sync::oneshot::channel::<Caller>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let err = local.block_on(&rt, async {
        let run =
            tokio::task::spawn_local(Caller::builder().name("tokio-first-deadlock").run_here(
                async move {
                    let _ = caller_tx.send(Caller::current().expect("a caller"));
                    let _ = done_rx.await;
                },
            ));
        let here = caller_rx.await.expect("the caller started");
        // Another task of the same thread: its loop cannot run while this blocks.
        let err = here.call_soon(|| 1).wait_sync(Some(LIMIT)).unwrap_err();
        let _ = done_tx.send(());
        run.await
            .expect("the caller's task ended")
            .expect("the caller ran");
        err
    });
    assert!(
        matches!(err, Error::WouldDeadlock { .. }),
        "unexpected error: {err}"
    );
}
