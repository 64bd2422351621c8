//! The error type: our own errors keep their kind, a failure's error comes back by value,
//! and `Display` never repeats what `source()` returns.

mod support;

use std::fmt;

use caller::{job, Caller, Error, GroupMode, PendingGroup};
use support::LIMIT;

#[derive(Debug, PartialEq)]
struct Disk(&'static str);

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "disk {}", self.0)
    }
}

impl std::error::Error for Disk {}

/// An error with a source, as a wrapper in user code would be.
#[derive(Debug)]
struct Load(Disk);

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loading the index failed")
    }
}

impl std::error::Error for Load {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// `err` printed as anyhow's `{:#}` does: each message of the chain, `: `-joined.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[test]
fn our_own_errors_returned_by_a_fallible_call_keep_their_kind() {
    let c = Caller::new_thread("errors-kind").unwrap();
    let own = [
        Error::cancelled("inner stopped"),
        Error::WouldDeadlock { caller: "x".into() },
        Error::TimedOut { after: LIMIT },
    ];
    for err in own {
        let e2 = err.clone();
        let got = c
            .call_soon(job::try_sync(move || Err::<(), Error>(e2)))
            .wait_sync(Some(LIMIT))
            .unwrap_err();
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&err),
            "{err} came back as {got}"
        );
        assert!(!got.is_failure() || err.is_failure(), "{got}");
    }
    c.stop(true);
}

#[test]
fn a_cancellation_propagated_with_question_mark_stays_a_cancellation_in_a_mode_0_group() {
    let c = Caller::new_thread("errors-propagate").unwrap();
    let c2 = c.clone();
    let out = futures::executor::block_on(PendingGroup::new(GroupMode::IgnoreCancelled).run(
        async move {
            let outer = c2.call_soon(job::try_future(move || async move {
                let inner = Caller::current()
                    .unwrap()
                    .call_soon_async(std::future::pending::<u8>);
                inner.cancel("the inner call was cancelled");
                let v = inner.await?;
                Ok::<u8, Error>(v)
            }));
            outer.await
        },
    ));
    let body = out.expect("a mode-0 group ignores a cancelled member");
    let member = body.expect("the body ran to its end").unwrap_err();
    assert!(member.is_cancelled(), "{member}");
    assert_eq!(
        member.cancel_message(),
        Some("the inner call was cancelled")
    );
    c.stop(true);
}

#[test]
fn a_failures_own_error_can_be_taken_back_by_value() {
    let c = Caller::new_thread("errors-downcast").unwrap();
    let err = c
        .call_soon(job::try_sync(|| Err::<(), _>(Disk("full"))))
        .wait_sync(Some(LIMIT))
        .unwrap_err();
    let err = err.downcast::<std::io::Error>().unwrap_err();
    assert_eq!(err.downcast::<Disk>().unwrap(), Disk("full"));
    // Not a failure: handed back unchanged.
    let cancelled = Error::cancelled("x").downcast::<Disk>().unwrap_err();
    assert!(cancelled.is_cancelled());
    // Shared (a clone is alive): handed back, and downcast_ref still works.
    let shared = Error::failed(Disk("slow"));
    let keep = shared.clone();
    let back = shared.downcast::<Disk>().unwrap_err();
    assert_eq!(back.downcast_ref::<Disk>(), Some(&Disk("slow")));
    drop(keep);
    assert_eq!(back.downcast::<Disk>().unwrap(), Disk("slow"));
    c.stop(true);
}

#[test]
fn display_never_repeats_what_source_returns() {
    let failed = Error::failed(Load(Disk("full")));
    assert_eq!(chain(&failed), "loading the index failed: disk full");

    let out =
        futures::executor::block_on(PendingGroup::new(GroupMode::CancelAndRaise).run(async {
            let _ = caller::to_thread(job::try_sync(|| Err::<(), _>(Load(Disk("gone"))))).await;
        }));
    let err = out.unwrap_err();
    let text = chain(&err);
    for msg in ["loading the index failed", "disk gone"] {
        assert_eq!(text.matches(msg).count(), 1, "{msg:?} once in {text:?}");
    }
}
