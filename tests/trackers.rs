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
