//! A group's run future dropped before it exited, in each phase where that can happen: its
//! members are cancelled with "the group was dropped before it exited", whatever the body's
//! destructor does, and the group leaves the dump. (The run became a named future whose
//! `Drop` does this; before, a guard local to an `async fn` did.)

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex};

use caller::{AnyPending, GroupMode, PendingGroup};

const DROPPED: &str = "the group was dropped before it exited";

/// Poll `fut` once; it must not be ready.
fn poll_once<F: Future>(fut: &mut std::pin::Pin<Box<F>>) {
    let ready = futures::executor::block_on(futures::future::poll_immediate(fut.as_mut()));
    assert!(
        ready.is_none(),
        "the group's run finished on its first poll"
    );
}

fn assert_cancelled_by_the_drop(p: &AnyPending) {
    support::done(p, "a member of the dropped group");
    let err = p.error().expect("the member ended with an error");
    assert_eq!(err.cancel_message(), Some(DROPPED), "{err}");
}

#[test]
fn dropped_while_draining_it_cancels_the_members_still_running() {
    let member: Arc<Mutex<Option<AnyPending>>> = Arc::default();
    let m = member.clone();
    let group = PendingGroup::new(GroupMode::CancelAndRaise);
    let id = group.id();
    // The body ends at once; its member runs on, so the run waits in its drain.
    let mut run = Box::pin(group.run(async move {
        let p = caller::to_thread_async(std::future::pending::<()>);
        *m.lock().unwrap() = Some(p.any());
    }));
    poll_once(&mut run);
    assert!(caller::dump().contains(&format!("group #{id} ")));
    drop(run);
    let p = member.lock().unwrap().clone().expect("the body ran");
    assert_cancelled_by_the_drop(&p);
    assert!(
        !caller::dump().contains(&format!("group #{id} ")),
        "still in the dump"
    );
    assert!(group.members().is_empty());
}

/// Panics when dropped, as a body's local might.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the body's destructor panics on purpose");
    }
}

#[test]
fn a_body_whose_destructor_panics_still_has_its_members_cancelled() {
    let member: Arc<Mutex<Option<AnyPending>>> = Arc::default();
    let m = member.clone();
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let mut run = Box::pin(group.run(async move {
        let _panics = PanicsOnDrop;
        let p = caller::to_thread_async(std::future::pending::<()>);
        *m.lock().unwrap() = Some(p.any());
        std::future::pending::<()>().await;
    }));
    poll_once(&mut run);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(run)));
    assert!(
        dropped.is_err(),
        "the destructor's panic comes out of the drop"
    );
    let p = member.lock().unwrap().clone().expect("the body ran");
    assert_cancelled_by_the_drop(&p);
}

/// Sets its flag when dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn a_member_whose_value_holds_its_group_lets_both_go_after_the_exit() {
    // The group keeps its finished members on a list for a while (for `cancel`); a value
    // that holds the group would keep both alive for good if the list outlived the exit.
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dropped.clone();
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let g = group.clone();
    let out = futures::executor::block_on(group.run(async move {
        // The member's value, never taken, holds a handle of its own group.
        let p = caller::to_thread(move || (g, DropFlag(flag)));
        p.any().wait_done(Some(support::LIMIT)).await.unwrap();
    }));
    out.unwrap().unwrap();
    support::eventually("the member's value, which holds its group, dropped", || {
        dropped.load(std::sync::atomic::Ordering::SeqCst)
    });
}

#[test]
fn a_member_of_a_group_never_run_is_let_go_when_it_ends_while_another_still_runs() {
    // A group that is never run has no exit to empty its list: a member that ends (with a
    // value that holds the group) is let go at once, not when the last member ends.
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let group = PendingGroup::new(GroupMode::IgnoreCancelled);
    let stuck = caller::Pending::<()>::new();
    group.add(&stuck.any());
    let late = caller::Pending::<(PendingGroup, DropFlag)>::new();
    group.add(&late.any());
    let resolver = late.resolver();
    drop(late);
    assert!(resolver.set_result((group.clone(), DropFlag(dropped.clone()))));
    drop(resolver);
    drop(group);
    support::eventually(
        "the ended member's value, which holds its group, dropped",
        || dropped.load(std::sync::atomic::Ordering::SeqCst),
    );
    assert!(!stuck.done());
}
