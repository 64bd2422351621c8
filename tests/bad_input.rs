//! Bad input to public functions is a clear error (or simply works), never a panic or a
//! hang.

mod support;

use std::time::Duration;

use caller::{Caller, Error, GroupMode, PendingGroup};
use support::LIMIT;

#[test]
fn timeouts_too_long_to_represent_mean_no_timeout() {
    let c = Caller::new_thread("huge-timeouts").unwrap();
    assert_eq!(c.call_soon(|| 1).wait_sync(Some(Duration::MAX)).unwrap(), 1);
    let mut p = c.call_soon(|| 2);
    assert_eq!(
        futures::executor::block_on(p.wait(Some(Duration::MAX))).unwrap(),
        2
    );
    let out = futures::executor::block_on(caller::timeout(Duration::MAX, async { 3 }));
    assert_eq!(out.unwrap(), 3);
    let view = c.call_soon(|| 4).any();
    view.wait_done_sync(Some(Duration::MAX)).unwrap();
    let group = PendingGroup::builder()
        .mode(GroupMode::CancelAndRaise)
        .timeout(Duration::MAX)
        .cancellation_timeout(Duration::MAX)
        .build();
    let out = futures::executor::block_on(group.run(async { caller::to_thread(|| 5).await }));
    assert_eq!(out.unwrap().unwrap().unwrap(), 5);
    let later = c.call_later(Duration::MAX, || ());
    assert!(later.cancel("not waiting forever"));
    support::done(
        &later,
        "a call scheduled Duration::MAX from now, then cancelled",
    );
    let (done, not_done) = futures::executor::block_on(caller::wait(
        vec![c.call_soon(|| 6)],
        Some(Duration::MAX),
        caller::ReturnWhen::AllCompleted,
    ));
    assert_eq!((done.len(), not_done.len()), (1, 0));
    c.stop(true);
    let _ = LIMIT;
}

#[test]
fn a_caller_name_that_cannot_name_a_thread_is_an_error() {
    for name in ["", "nul\0inside"] {
        let err = Caller::builder().name(name).spawn().unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{name:?}: {err}");
    }
}

#[test]
fn zero_and_huge_limits_are_accepted() {
    let s = caller::as_completed(Vec::<caller::Pending<()>>::new()).max_concurrent(0);
    assert_eq!(s.in_flight(), 0);
    let err = GroupMode::try_from(9u8).unwrap_err();
    assert!(err.to_string().contains("0, 1, 2 or 3"), "{err}");
}

#[test]
fn block_on_and_host_refuse_names_that_cannot_name_a_thread() {
    for name in ["", "a\0b"] {
        let entered = Caller::builder().name(name).block_on(async {});
        assert!(
            matches!(entered, Err(Error::Invalid { .. })),
            "block_on accepted the name {name:?}"
        );
        let hosted = Caller::builder()
            .name(name)
            .backend(caller::Backend::Host)
            .host(|| {});
        assert!(
            matches!(hosted, Err(Error::Invalid { .. })),
            "host accepted the name {name:?}"
        );
        assert!(Caller::current().is_none(), "a refused caller was entered");
    }
}
