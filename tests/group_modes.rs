//! The group contract, table-driven: mode {0, 1, 2, 3, supervisor} × member outcome
//! {value, Err, panic, cancelled} × where the member runs {the group's own caller,
//! `to_thread`, another named caller}. For each case: the group's exit, whether the
//! sibling was cancelled, and that every member is done at exit.

mod support;

use std::sync::{Arc, Mutex};

use caller::{job, AnyPending, Caller, Error, GroupMode, Pending, PendingGroup};
use support::LIMIT;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Value,
    Err,
    Panic,
    Cancelled,
}

#[derive(Clone, Copy, Debug)]
enum Where {
    SameCaller,
    ToThread,
    Named,
}

const MODES: [GroupMode; 5] = [
    GroupMode::IgnoreCancelled,
    GroupMode::CancelAndRaise,
    GroupMode::CancelQuietly,
    GroupMode::Raise,
    GroupMode::Supervisor,
];

#[derive(Debug, PartialEq)]
enum Exit {
    Completed,
    QuietWithoutBody,
    Cancelled,
    Failed(usize),
}

fn spawn<T: Send + Unpin + 'static>(
    wh: Where,
    host: &Caller,
    named: &Caller,
    j: impl caller::IntoJob<T>,
) -> Pending<T> {
    match wh {
        Where::SameCaller => host.call_soon(j),
        Where::ToThread => caller::to_thread(j),
        Where::Named => named.call_soon(j),
    }
}

fn expected(mode: GroupMode, outcome: Outcome) -> (Exit, bool) {
    use GroupMode::*;
    match outcome {
        Outcome::Value => (Exit::Completed, false),
        Outcome::Err | Outcome::Panic => (Exit::Failed(1), mode != Supervisor),
        Outcome::Cancelled => match mode {
            CancelAndRaise => (Exit::Cancelled, true),
            CancelQuietly => (Exit::QuietWithoutBody, true),
            IgnoreCancelled | Raise | Supervisor => (Exit::Completed, false),
        },
    }
}

fn run_case(host: &Caller, named: &Caller, mode: GroupMode, outcome: Outcome, wh: Where) {
    let members: Arc<Mutex<Vec<AnyPending>>> = Arc::default();
    let m = members.clone();
    let (h, n) = (host.clone(), named.clone());
    let exit = host
        .call_soon_async(move || async move {
            let group = PendingGroup::new(mode);
            group
                .run(async move {
                    let gate = Pending::<()>::new();
                    let gate_view = gate.any();
                    let subject: Pending<u32> = match outcome {
                        Outcome::Value => spawn(wh, &h, &n, || 1),
                        Outcome::Err => spawn(wh, &h, &n, job::try_sync(|| "x".parse::<u32>())),
                        Outcome::Panic => {
                            spawn(wh, &h, &n, || -> u32 { panic!("member panics on purpose") })
                        }
                        Outcome::Cancelled => {
                            spawn(wh, &h, &n, job::future(std::future::pending::<u32>))
                        }
                    };
                    let sibling: Pending<&str> = spawn(
                        wh,
                        &h,
                        &n,
                        job::future(move || async move {
                            let _ = gate_view.wait_done(None).await;
                            "sibling finished"
                        }),
                    );
                    let (sub, sib) = (subject.any(), sibling.any());
                    m.lock().unwrap().extend([sub.clone(), sib.clone()]);
                    drop((subject, sibling)); // detach: the group owns them now
                    if outcome == Outcome::Cancelled {
                        sub.cancel("member cancelled on purpose");
                    }
                    let _ = sub.wait_done(None).await;
                    // A suspension point: a group cancelled by now drops its body here.
                    tokio::task::yield_now().await;
                    // The group has reacted to the subject (callbacks run before waiters
                    // wake); now let the sibling finish unless it was cancelled.
                    gate.set_result(());
                })
                .await
        })
        .wait_sync(Some(LIMIT))
        .unwrap_or_else(|e| panic!("{mode:?}/{outcome:?}/{wh:?}: the group did not exit: {e}"));
    let exit = match exit {
        Ok(Some(())) => Exit::Completed,
        Ok(None) => Exit::QuietWithoutBody,
        Err(Error::Cancelled { .. }) => Exit::Cancelled,
        Err(Error::Group(g)) => {
            assert!(g.abandoned.is_empty(), "{g}");
            Exit::Failed(g.failures.len())
        }
        Err(e) => panic!("{mode:?}/{outcome:?}/{wh:?}: unexpected exit {e}"),
    };
    let members = members.lock().unwrap().clone();
    assert_eq!(members.len(), 2);
    for p in &members {
        assert!(
            p.done(),
            "{mode:?}/{outcome:?}/{wh:?}: member {p:?} not done at exit"
        );
    }
    let sibling_cancelled = members[1].cancelled();
    let (want_exit, want_cancel) = expected(mode, outcome);
    assert_eq!(
        (exit, sibling_cancelled),
        (want_exit, want_cancel),
        "{mode:?}/{outcome:?}/{wh:?}: (exit, sibling cancelled)"
    );
}

fn run_table(wh: Where) {
    let host = Caller::new_thread(format!("group-host-{wh:?}")).unwrap();
    let named = Caller::new_thread(format!("group-named-{wh:?}")).unwrap();
    for mode in MODES {
        for outcome in [
            Outcome::Value,
            Outcome::Err,
            Outcome::Panic,
            Outcome::Cancelled,
        ] {
            run_case(&host, &named, mode, outcome, wh);
        }
    }
    host.stop(true);
    named.stop(true);
}

#[test]
fn members_on_the_groups_own_caller() {
    run_table(Where::SameCaller);
}

#[test]
fn members_on_pooled_workers() {
    run_table(Where::ToThread);
}

#[test]
fn members_on_another_named_caller() {
    run_table(Where::Named);
}

#[test]
fn numeric_modes_map_to_the_seeds_modes() {
    assert_eq!(GroupMode::from_number(0), Some(GroupMode::IgnoreCancelled));
    assert_eq!(GroupMode::from_number(2), Some(GroupMode::CancelQuietly));
    assert_eq!(GroupMode::from_number(3), Some(GroupMode::Raise));
    assert!(GroupMode::try_from(7u8).is_err());
}
