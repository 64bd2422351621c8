//! `caller::pending_group!` gives the same result as the equivalent
//! `PendingGroup::builder()` call, for every mode (numbers and names), member outcome,
//! `shield` and `timeout`.

mod support;

use std::time::Duration;

use caller::{job, Error, GroupMode, PendingGroup};
use support::LIMIT;

/// What a member of the group does.
#[derive(Clone, Copy, Debug)]
enum Member {
    Value,
    Fails,
    Cancelled,
}

/// A body that never finishes on its own: only the group's cancellation ends it.
async fn stuck() -> u32 {
    std::future::pending::<()>().await;
    0
}

/// The body every group runs: start one member and return 7 — or, with a cancelled
/// member, wait until the group is cancelled (by that member in modes 1 and 2, by the
/// group's timeout in the others), so that every outcome is decided by events, not timing.
async fn body(member: Member) -> u32 {
    match member {
        Member::Value => drop(caller::to_thread(|| 1)),
        Member::Fails => drop(caller::to_thread(job::try_sync(|| "x".parse::<u8>()))),
        Member::Cancelled => {
            let p = caller::to_thread_async(std::future::pending::<()>);
            p.cancel("member cancelled");
            return stuck().await;
        }
    }
    7
}

/// The timeout that ends a group whose mode ignores its cancelled member.
const CANCELLED_CASE_TIMEOUT: Duration = Duration::from_millis(200);

/// The exit, reduced to what must match.
fn summary(exit: Result<Option<u32>, Error>) -> String {
    match exit {
        Ok(Some(v)) => format!("value {v}"),
        Ok(None) => "quiet".to_owned(),
        Err(e) if e.is_cancelled() => "cancelled".to_owned(),
        Err(Error::Group(g)) => format!("{} failure(s)", g.failures.len()),
        Err(e) => format!("unexpected error: {e}"),
    }
}

async fn by_builder(mode: GroupMode, member: Member) -> String {
    let mut builder = PendingGroup::builder().mode(mode);
    if let Member::Cancelled = member {
        builder = builder.timeout(CANCELLED_CASE_TIMEOUT);
    }
    summary(builder.build().run(body(member)).await)
}

/// `pending_group!` with each spelling of each mode (and the extra keys given), next to
/// the builder's mode.
macro_rules! by_macro {
    ($member:expr $(, $key:ident = $value:tt)*) => {
        vec![
            (GroupMode::IgnoreCancelled, summary(caller::pending_group!(mode = 0, $($key = $value,)* { body($member).await }))),
            (GroupMode::IgnoreCancelled, summary(caller::pending_group!(mode = ignore_cancelled, $($key = $value,)* { body($member).await }))),
            (GroupMode::CancelAndRaise, summary(caller::pending_group!(mode = 1, $($key = $value,)* { body($member).await }))),
            (GroupMode::CancelAndRaise, summary(caller::pending_group!(mode = cancel_and_raise, $($key = $value,)* { body($member).await }))),
            (GroupMode::CancelQuietly, summary(caller::pending_group!(mode = 2, $($key = $value,)* { body($member).await }))),
            (GroupMode::CancelQuietly, summary(caller::pending_group!(mode = cancel_quietly, $($key = $value,)* { body($member).await }))),
            (GroupMode::Raise, summary(caller::pending_group!(mode = 3, $($key = $value,)* { body($member).await }))),
            (GroupMode::Raise, summary(caller::pending_group!(mode = raise, $($key = $value,)* { body($member).await }))),
            (GroupMode::Supervisor, summary(caller::pending_group!(mode = supervisor, $($key = $value,)* { body($member).await }))),
            (GroupMode::Supervisor, summary(caller::pending_group!(mode = GroupMode::Supervisor, $($key = $value,)* { body($member).await }))),
            (GroupMode::default(), summary(caller::pending_group!($($key = $value,)* { body($member).await }))),
        ]
    };
}

/// The contract (DESIGN §5), so that the comparison is not between two wrong answers.
fn expected(mode: GroupMode, member: Member) -> &'static str {
    use GroupMode::*;
    match (member, mode) {
        (Member::Value, _) => "value 7",
        (Member::Fails, _) => "1 failure(s)",
        (Member::Cancelled, IgnoreCancelled | CancelQuietly) => "quiet",
        (Member::Cancelled, CancelAndRaise | Raise | Supervisor) => "cancelled",
    }
}

async fn compare(member: Member, cases: Vec<(GroupMode, String)>) {
    for (mode, got) in cases {
        let want = by_builder(mode, member).await;
        assert_eq!(got, want, "mode {mode:?}, member {member:?}");
        assert_eq!(
            got,
            expected(mode, member),
            "mode {mode:?}, member {member:?}"
        );
    }
}

#[caller::test]
async fn every_mode_matches_the_builder_when_members_succeed() {
    let run = async { compare(Member::Value, by_macro!(Member::Value)).await };
    caller::timeout(LIMIT, run)
        .await
        .expect("the groups with succeeding members exited");
}

#[caller::test]
async fn every_mode_matches_the_builder_when_a_member_fails() {
    let run = async { compare(Member::Fails, by_macro!(Member::Fails)).await };
    caller::timeout(LIMIT, run)
        .await
        .expect("the groups with a failing member exited");
}

#[caller::test]
async fn every_mode_matches_the_builder_when_a_member_is_cancelled() {
    let run = async {
        let cases = by_macro!(Member::Cancelled, timeout = 0.2);
        compare(Member::Cancelled, cases).await
    };
    caller::timeout(LIMIT, run)
        .await
        .expect("the groups with a cancelled member exited");
}

#[caller::test]
async fn a_failing_member_fails_the_group() {
    // Not only equal to the builder: the expected outcome itself.
    let exit = caller::pending_group!(mode = 0, { body(Member::Fails).await });
    assert_eq!(summary(exit), "1 failure(s)");
}

#[caller::test]
async fn timeout_in_seconds_matches_a_duration() {
    let by_number = caller::pending_group!(mode = raise, timeout = 0.05, { stuck().await });
    let by_expr = caller::pending_group!(mode = raise, timeout = Duration::from_millis(50), {
        stuck().await
    });
    let by_builder = PendingGroup::builder()
        .mode(GroupMode::Raise)
        .timeout(Duration::from_millis(50))
        .build()
        .run(stuck())
        .await;
    assert_eq!(
        summary(by_number),
        "cancelled",
        "mode 3 raises on its timeout"
    );
    assert_eq!(summary(by_expr), "cancelled");
    assert_eq!(summary(by_builder), "cancelled");
    let quiet = caller::pending_group!(timeout = 0, { stuck().await });
    assert_eq!(
        summary(quiet),
        "quiet",
        "mode 0 exits quietly on its timeout"
    );
}

#[caller::test]
async fn keys_in_any_order_and_shield() {
    let shielded = true;
    let exit = caller::pending_group!(shield = shielded, timeout = 5, mode = 1, {
        body(Member::Value).await
    });
    assert_eq!(summary(exit), "value 7");
    let by_builder = PendingGroup::builder()
        .shield(true)
        .build()
        .run(body(Member::Fails))
        .await;
    let by_macro = caller::pending_group!(shield = true, { body(Member::Fails).await });
    assert_eq!(summary(by_macro), summary(by_builder));
}

#[caller::test]
async fn the_body_may_borrow_locals_and_its_value_comes_out() {
    let words: Vec<String> = ["a", "b"].map(String::from).into();
    let joined = caller::pending_group!({ words.join("+") })
        .expect("a group without members exits")
        .expect("the body finished");
    assert_eq!(joined, "a+b");
    assert_eq!(words.len(), 2, "still ours");
}

/// `cancellation_timeout` bounds the exit's wait for a member that ignores cancellation,
/// as the builder's setter does.
#[caller::test]
async fn cancellation_timeout_bounds_the_wait_for_a_stubborn_member() {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let out = caller::pending_group!(
        mode = cancel_and_raise,
        timeout = 20ms,
        cancellation_timeout = Duration::from_millis(50),
        {
            // A sync member cannot be interrupted: it holds the group open.
            let stubborn = caller::to_thread(move || {
                let _ = release_rx.recv_timeout(LIMIT);
            });
            let _ = stubborn.protect().await;
        }
    );
    match out {
        Err(Error::Group(g)) => assert_eq!(g.abandoned.len(), 1, "{g}"),
        other => panic!("the exit did not name the stubborn member: {other:?}"),
    }
    release_tx.send(()).unwrap();
}

/// `timeout = 50ms` is fifty milliseconds, not fifty seconds: every unit suffix is read,
/// for both duration keys (the group's own getter shows the exact value).
#[caller::test]
async fn duration_literals_mean_their_unit() {
    let seen = caller::pending_group!(cancellation_timeout = 250ms, |pg| {
        pg.cancellation_timeout()
    });
    assert_eq!(seen.unwrap(), Some(Duration::from_millis(250)));
    for (got, want) in [
        (
            caller::pending_group!(cancellation_timeout = 1.5s, |pg| pg_timeout(&pg)),
            Duration::from_millis(1500),
        ),
        (
            caller::pending_group!(cancellation_timeout = 2min, |pg| pg_timeout(&pg)),
            Duration::from_secs(120),
        ),
        (
            caller::pending_group!(cancellation_timeout = 7us, |pg| pg_timeout(&pg)),
            Duration::from_micros(7),
        ),
        (
            caller::pending_group!(cancellation_timeout = 9ns, |pg| pg_timeout(&pg)),
            Duration::from_nanos(9),
        ),
        (
            caller::pending_group!(cancellation_timeout = 3, |pg| pg_timeout(&pg)),
            Duration::from_secs(3),
        ),
    ] {
        assert_eq!(got.unwrap(), Some(want));
    }
    // Read as 50 seconds, this group would outlive the limit.
    let run = async { caller::pending_group!(mode = raise, timeout = 50ms, { stuck().await }) };
    let exit = caller::timeout(LIMIT, run)
        .await
        .expect("a group with `timeout = 50ms` ended within the limit");
    assert_eq!(summary(exit), "cancelled");
}

fn pg_timeout(pg: &PendingGroup) -> Duration {
    pg.cancellation_timeout()
}

/// `|pg|` names the group inside its body: the very group that runs it, which the body can
/// add members to, hand to another thread, and cancel from there.
#[caller::test]
async fn the_body_can_name_its_group() {
    let out = caller::pending_group!(mode = cancel_quietly, |pg: PendingGroup| {
        assert_eq!(
            PendingGroup::current().map(|g| g.id()),
            Some(pg.id()),
            "`pg` is the group the body runs in"
        );
        let by_hand = caller::Pending::<()>::new();
        pg.add(&by_hand.any());
        assert!(pg.members().contains(&by_hand.any()), "added by hand");
        let canceller = std::thread::spawn(move || pg.cancel("done from another thread"));
        assert!(canceller.join().unwrap(), "the group was still running");
        stuck().await
    });
    assert_eq!(
        summary(out),
        "quiet",
        "the cancel from the other thread ended the body"
    );
}

/// `< ... >` is the body as braces are: the design card's form.
#[caller::test]
async fn an_angle_bracket_body_is_a_block() {
    let words = ["a", "b"];
    let out = caller::pending_group!(mode = 1, timeout = 5s, <
        let n = caller::to_thread(|| 2).await.unwrap();
        words.len() * n
    >);
    assert_eq!(out.unwrap(), Some(4));
    let named = caller::pending_group!(|pg| < pg.mode() >);
    assert_eq!(named.unwrap(), Some(GroupMode::default()));
}
