//! `#[caller::test]` and `#[caller::main]`: the thread running the function is a caller for
//! the life of its async body. (That `#[caller::main]` on the program's `main` makes
//! `Caller::main_thread()` that caller is checked by running a real program:
//! `tests/ui/pass/main-is-the-main-thread-caller.rs`.)

mod support;

use caller::{Caller, CallerState};
use support::LIMIT;

#[caller::test]
async fn the_test_thread_is_the_current_caller() {
    let me = Caller::current().expect("#[caller::test] runs a caller");
    assert_eq!(me.name(), "the_test_thread_is_the_current_caller");
    assert_eq!(me.thread().id(), std::thread::current().id());
    assert!(me.running());
}

#[caller::test(name = "custom-entry")]
async fn the_name_can_be_chosen() {
    assert_eq!(Caller::current().expect("a caller").name(), "custom-entry");
}

#[caller::test]
async fn a_test_may_return_a_result() -> Result<(), caller::Error> {
    let me = Caller::current().expect("a caller");
    let v = me.call_soon(|| 2).wait(Some(LIMIT)).await?;
    assert_eq!(v, 2);
    Ok(())
}

#[caller::on_thread(name = "macro-entry-child")]
fn on_child() -> Option<Caller> {
    Caller::current().and_then(|c| c.parent())
}

#[caller::test]
async fn on_thread_names_are_children_of_the_entry_caller() {
    let parent = on_child().wait(Some(LIMIT)).await.expect("the child ran");
    assert_eq!(
        parent,
        Caller::current(),
        "the child's parent is the test's caller"
    );
}

/// `#[caller::main]` goes on any `async fn` without arguments, not only `main`.
#[caller::main(name = "macro-entry-run")]
async fn run() -> Caller {
    let me = Caller::current().expect("a caller");
    assert_eq!(me.thread().id(), std::thread::current().id());
    me
}

#[test]
fn the_entry_caller_stops_when_the_body_ends() {
    assert!(
        Caller::current().is_none(),
        "a plain test thread has no caller"
    );
    let entry = run();
    assert_eq!(entry.name(), "macro-entry-run");
    futures::executor::block_on(caller::timeout(LIMIT, entry.stopped()))
        .expect("the entry caller stopped in time")
        .expect("stopped cleanly");
    assert_eq!(entry.state(), CallerState::Stopped);
    assert!(
        Caller::current().is_none(),
        "this thread is a plain thread again"
    );
}

/// An inner attribute of the body stays in the test function (printed before it, it would
/// not compile): here it allows the unused variable that the outer `deny` forbids.
#[caller::test]
#[deny(unused_variables)]
async fn inner_attributes_stay_in_the_body() {
    #![allow(unused_variables)]
    let unused = caller::Caller::current();
}
