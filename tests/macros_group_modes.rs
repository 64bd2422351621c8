//! The modes `pending_group!` takes, held against the runtime's `GroupMode` so that the
//! two cannot drift: every variant has a name the macro takes, every number
//! `GroupMode::from_number` knows is a `mode = N` the macro takes, and each expands to that
//! very variant (read back from the group with `pg.mode()`).
//!
//! A variant added to the runtime stops this file compiling (the matches below have no `_`
//! arm) until its name is written here, and then it compiles only if the macro takes that
//! name. The macro's own table is held against the enum by the unit tests of
//! `caller-macros/src/mode.rs`, which also catch a name or number the runtime lacks.

mod support;

use caller::GroupMode;
use support::LIMIT;

/// Every variant of `GroupMode`. A variant missing here is missing from [`by_name`] too,
/// which then does not compile.
const ALL: [GroupMode; 5] = [
    GroupMode::IgnoreCancelled,
    GroupMode::CancelAndRaise,
    GroupMode::CancelQuietly,
    GroupMode::Raise,
    GroupMode::Supervisor,
];

/// The mode of a group made with `mode = <the macro's name for mode>`.
async fn by_name(mode: GroupMode) -> GroupMode {
    let out = match mode {
        GroupMode::IgnoreCancelled => {
            caller::pending_group!(mode = ignore_cancelled, |pg| pg.mode())
        }
        GroupMode::CancelAndRaise => {
            caller::pending_group!(mode = cancel_and_raise, |pg| pg.mode())
        }
        GroupMode::CancelQuietly => caller::pending_group!(mode = cancel_quietly, |pg| pg.mode()),
        GroupMode::Raise => caller::pending_group!(mode = raise, |pg| pg.mode()),
        GroupMode::Supervisor => caller::pending_group!(mode = supervisor, |pg| pg.mode()),
    };
    out.expect("the group exited cleanly")
        .expect("the group's body ran to its end")
}

/// The mode of a group made with `mode = n`, for each number the macro takes; `None` for
/// any other number.
async fn by_number(n: u8) -> Option<GroupMode> {
    let out = match n {
        0 => caller::pending_group!(mode = 0, |pg| pg.mode()),
        1 => caller::pending_group!(mode = 1, |pg| pg.mode()),
        2 => caller::pending_group!(mode = 2, |pg| pg.mode()),
        3 => caller::pending_group!(mode = 3, |pg| pg.mode()),
        _ => return None,
    };
    let mode = out
        .expect("the group exited cleanly")
        .expect("the group's body ran to its end");
    Some(mode)
}

#[caller::test]
async fn every_runtime_mode_has_a_name_the_macro_takes() {
    let run = async {
        for mode in ALL {
            assert_eq!(by_name(mode).await, mode, "the macro's name for {mode:?}");
        }
    };
    caller::timeout(LIMIT, run)
        .await
        .expect("every group exited in time");
}

#[caller::test]
async fn every_mode_number_is_the_runtimes() {
    let run = async {
        for n in 0..=u8::MAX {
            assert_eq!(
                by_number(n).await,
                GroupMode::from_number(n),
                "`mode = {n}` and `GroupMode::from_number({n})` differ"
            );
        }
    };
    caller::timeout(LIMIT, run)
        .await
        .expect("every group exited in time");
}
