//! A group's shared state, [`GroupInner`]: what the run future, the group's handles, its
//! members' done hooks and the dump all see. Member bookkeeping (`add_member`,
//! `member_done`, `remove_member`), failures, `cancel` and the shield counts live here;
//! the phases are moved on by the run future ([`super::run`]), never from here.
//!
//! # Members: a count, and a list for cancelling
//!
//! A member costs the group one counter on the common path: joining bumps
//! [`GroupInner::live`] and pushes the member on the list (under the lock, with the phase
//! check), and a member that ends with a value only decrements the count (no lock: the
//! pending's flags say it ended well). The lock is taken again only for what is rare: a
//! failure or a cancel to record, the last member of a group that drains (its waker), a
//! removal by hand. The list is what `cancel` and `members()` walk; the members it holds
//! that are done are dropped from it in one sweep when it has grown to twice the live
//! count (plus a few), so its length stays within a constant of the live members.
//!
//! Exactly one decrement per member: the member's done hook does it (even if the group's
//! cancel, which it may start, unwinds), or [`GroupInner::remove_member`] when it takes the
//! hook back before it ran.
//!
//! What the list costs: a done member stays on it (with its value, if nobody took it)
//! until the next sweep — at most about twice the peak of live members while the body
//! runs; at the exit, and in a group never run, a member is let go as soon as it ends (a
//! value that holds the group would otherwise keep both alive). A swept member's value
//! is dropped by whichever thread swept it (a panicking `Drop` is caught and logged, as
//! everywhere). A removal by hand scans the list; joins and ends never do.

use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::GroupMode;
use crate::caller::Caller;
use crate::context::{Tracker, Trackers};
use crate::error::{Error, MemberFailure};
use crate::pending::{AnyPending, MemberDone};
use crate::sync::{lock, AtomicBool, AtomicUsize, Mutex, Ordering};

/// The phases of the group's specification (at the top of [`super`]). Only the run future
/// moves them on; the rest reads them.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    /// Made, not entered yet.
    #[default]
    Created,
    /// The body runs, with the group in its context.
    Body,
    /// The body is over (it ended or was dropped); the group waits for its members.
    Draining,
    /// The run future returned or was dropped: members that join now are cancelled.
    Exited,
}

#[derive(Default)]
struct GroupState {
    phase: Phase,
    /// Members in the order they joined, done ones included until the next sweep (see the
    /// module's doc); `removed` ones are skipped everywhere.
    members: Vec<Member>,
    children: Vec<Weak<GroupInner>>,
    cancelled: Option<String>,
    cancelled_at: Option<Instant>,
    /// Set when the group's own timeout cancelled it.
    timed_out: Option<Duration>,
    failures: Vec<MemberFailure>,
    waker: Option<Waker>,
    /// Shielded groups active inside this group's body: while there are any, a cancelled
    /// group keeps polling its body instead of dropping it (the shield holds).
    shields_inside: usize,
}

struct Member {
    pending: AnyPending,
    shielded: bool,
    /// Taken out by hand ([`GroupInner::remove_member`]): no longer a member.
    removed: bool,
}

impl Member {
    /// Still a member: not removed, not done.
    fn is_live(&self) -> bool {
        !self.removed && !self.pending.done()
    }
}

/// The list is swept of done members when it is this much longer than twice the live count.
const SWEEP_SLACK: usize = 32;

impl GroupState {
    /// Take the members that are done or removed out of the list (to be dropped after the
    /// lock: see `drop_swept`).
    fn sweep(&mut self) -> Vec<Member> {
        let (keep, gone) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(Member::is_live);
        self.members = keep;
        gone
    }

    /// The live members, oldest first.
    fn sorted_members(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.iter().filter(|m| m.is_live()).collect();
        v.sort_by_key(|m| m.pending.id());
        // Two threads adding the same pending by hand at once may both list it.
        v.dedup_by_key(|m| m.pending.id());
        v
    }
}

/// What [`GroupInner::enter`] did.
#[must_use = "a refused entry must not run the body"]
pub(super) enum TransitionToBody {
    /// Created → Body: this run owns the group's phases from now on.
    Entered,
    /// The group was entered before (a group is entered once): nothing changed.
    EnteredBefore,
}

/// What a group ended with, taken by [`GroupInner::exit`].
pub(super) struct Exit {
    pub(super) failures: Vec<MemberFailure>,
    /// The cancel message, if the group ended cancelled.
    pub(super) cancelled: Option<String>,
    /// The group's own timeout, if that is what cancelled it.
    pub(super) timed_out: Option<Duration>,
}

/// Where a group's drain stands: [`GroupInner::drain_status`].
pub(super) enum DrainStatus {
    /// No member is left: the group may exit.
    Done,
    /// Members still run. If the group was cancelled, the wait is bounded from
    /// `cancelled_at` on.
    Waiting { cancelled_at: Option<Instant> },
}

/// The shared part of a group: one per [`PendingGroup`](super::PendingGroup), held by its
/// handles, its run future, the contexts it is active in, and (weakly) its members.
pub(crate) struct GroupInner {
    pub(super) id: u64,
    pub(super) mode: GroupMode,
    pub(super) shield: bool,
    pub(super) timeout: Option<Duration>,
    pub(super) cancellation_timeout: Duration,
    pub(super) caller: Option<Caller>,
    /// Members not done and not removed: see the module's doc.
    live: AtomicUsize,
    /// Set while the group is `Created` or `Exited`: no exit is ahead to empty the member
    /// list, so members that leave are swept at once (`member_left`).
    no_exit_ahead: AtomicBool,
    state: Mutex<GroupState>,
}

impl GroupInner {
    pub(super) fn new(
        mode: GroupMode,
        shield: bool,
        timeout: Option<Duration>,
        cancellation_timeout: Duration,
        caller: Option<Caller>,
    ) -> Self {
        static NEXT: crate::sync::global::AtomicU64 = crate::sync::global::AtomicU64::new(1);
        GroupInner {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            mode,
            shield,
            timeout,
            cancellation_timeout,
            caller,
            live: AtomicUsize::new(0),
            no_exit_ahead: AtomicBool::new(true),
            state: Mutex::new(GroupState::default()),
        }
    }

    /// Created → Body, once.
    pub(super) fn enter(&self) -> TransitionToBody {
        let mut st = lock(&self.state);
        if st.phase != Phase::Created {
            return TransitionToBody::EnteredBefore;
        }
        st.phase = Phase::Body;
        self.no_exit_ahead.store(false, Ordering::Relaxed);
        TransitionToBody::Entered
    }

    /// Body → Draining.
    pub(super) fn start_draining(&self) {
        lock(&self.state).phase = Phase::Draining;
    }

    pub(super) fn is_cancelled(&self) -> bool {
        lock(&self.state).cancelled.is_some()
    }

    /// Whether the body must be dropped now: the group is cancelled and no shielded group
    /// is active inside the body (while one is, the shield holds).
    pub(super) fn body_must_stop(&self) -> bool {
        let st = lock(&self.state);
        st.cancelled.is_some() && st.shields_inside == 0
    }

    /// A shielded group inside this one's body became active (`true`) or left (`false`).
    pub(super) fn shield_inside(&self, active: bool) {
        {
            let mut st = lock(&self.state);
            if active {
                st.shields_inside += 1;
            } else {
                st.shields_inside -= 1;
            }
        }
        if !active {
            self.wake();
        }
    }

    /// Where the drain stands. The run registers its waker before it asks (`watch`), and
    /// the member that takes the count to zero takes that waker under the lock after its
    /// decrement: either this sees zero, or that member wakes the run.
    pub(super) fn drain_status(&self) -> DrainStatus {
        if self.live.load(Ordering::SeqCst) == 0 {
            DrainStatus::Done
        } else {
            DrainStatus::Waiting {
                cancelled_at: lock(&self.state).cancelled_at,
            }
        }
    }

    /// The group's own timeout (`after`) passed: note it, unless the group was cancelled
    /// before, and cancel the group.
    pub(super) fn time_out(&self, after: Duration) {
        {
            let mut st = lock(&self.state);
            if st.cancelled.is_none() {
                st.timed_out = Some(after);
            }
        }
        self.cancel(&format!("the group timed out after {after:?}"));
    }

    pub(super) fn set_waker(&self, waker: &Waker) {
        let mut st = lock(&self.state);
        match &mut st.waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let w = lock(&self.state).waker.take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Cancel the group: record `msg`, cancel every member (but those behind a shielded
    /// inner group) and the non-shielded inner groups. Returns `false` if the group had
    /// exited.
    pub(super) fn cancel(&self, msg: &str) -> bool {
        let (members, children) = {
            let mut st = lock(&self.state);
            if st.phase == Phase::Exited {
                return false;
            }
            match &mut st.cancelled {
                Some(m) => {
                    if !msg.is_empty() && !m.split('\n').any(|l| l == msg) {
                        m.push('\n');
                        m.push_str(msg);
                    }
                }
                None => {
                    st.cancelled = Some(msg.to_owned());
                    st.cancelled_at = Some(Instant::now());
                    tracing::debug!(group = self.id, message = msg, "group cancelled");
                }
            }
            let members: Vec<AnyPending> = st
                .members
                .iter()
                .filter(|m| !m.shielded && m.is_live())
                .map(|m| m.pending.clone())
                .collect();
            let children: Vec<Arc<GroupInner>> =
                st.children.iter().filter_map(Weak::upgrade).collect();
            (members, children)
        };
        self.wake();
        for p in members {
            p.cancel(msg);
        }
        for c in children {
            c.cancel(msg);
        }
        true
    }

    /// Mark the group exited; returns what it ended with.
    ///
    /// The list lets go of its done members here (and of the rest when the last of them
    /// finishes, in `member_left`): a member's value may hold the group itself, and a list
    /// kept after the exit would then keep both alive for good.
    pub(super) fn exit(&self) -> Exit {
        let (exit, swept) = {
            let mut st = lock(&self.state);
            st.phase = Phase::Exited;
            self.no_exit_ahead.store(true, Ordering::Relaxed);
            st.waker = None;
            st.children.clear();
            let exit = Exit {
                failures: std::mem::take(&mut st.failures),
                cancelled: st.cancelled.clone(),
                timed_out: st.timed_out.filter(|_| st.cancelled.is_some()),
            };
            (exit, st.sweep())
        };
        drop_swept(swept);
        exit
    }

    /// Record a failure that is not a member's own (a nested group's error); outside
    /// `Supervisor` mode it cancels the group.
    pub(super) fn record_failure(&self, failure: MemberFailure) {
        let msg = {
            let mut st = lock(&self.state);
            if st.phase == Phase::Exited {
                return;
            }
            let msg = format!("{} failed", failure.name);
            st.failures.push(failure);
            (self.mode != GroupMode::Supervisor).then_some(msg)
        };
        match msg {
            Some(msg) => {
                self.cancel(&msg);
            }
            None => self.wake(),
        }
    }

    /// Track a group nested in this one's body, so that cancelling this one cancels it.
    pub(super) fn add_child(&self, child: &Arc<GroupInner>) {
        let cancel_now = {
            let mut st = lock(&self.state);
            st.children.retain(|w| w.strong_count() > 0);
            st.children.push(Arc::downgrade(child));
            st.cancelled.clone()
        };
        if let Some(msg) = cancel_now {
            child.cancel(&msg);
        }
    }

    /// Make `pending` a member (see the module's doc). `by_hand`: added with
    /// [`PendingGroup::add`](super::PendingGroup::add), which may repeat a member: a
    /// pending that still carries this group's hook is one already (calls made in the
    /// group's context join once each, without the check).
    pub(super) fn add_member(
        self: &Arc<Self>,
        pending: &AnyPending,
        shielded: bool,
        nested: bool,
        by_hand: bool,
    ) {
        let (cancel_with, swept) = {
            let mut st = lock(&self.state);
            if st.phase == Phase::Exited {
                drop(st);
                pending.cancel("the group this call belongs to has already exited");
                return;
            }
            if by_hand && pending.has_tracker(&self.as_member_done()) {
                return;
            }
            let live = self.live.load(Ordering::Relaxed);
            let swept = if st.members.len() >= 2 * live + SWEEP_SLACK {
                st.sweep()
            } else {
                Vec::new()
            };
            st.members.push(Member {
                pending: pending.clone(),
                shielded,
                removed: false,
            });
            // Before the hook: a pending already done runs it at once, and decrements.
            self.live.fetch_add(1, Ordering::SeqCst);
            (st.cancelled.clone().filter(|_| !shielded), swept)
        };
        drop_swept(swept);
        if let Some(msg) = cancel_with {
            pending.cancel(&msg);
        }
        pending.add_tracker(self.as_member_done(), nested);
    }

    /// This group as the tracker its members' hooks point to.
    fn as_member_done(self: &Arc<Self>) -> Weak<dyn MemberDone> {
        Arc::downgrade(self) as Weak<GroupInner>
    }

    /// Remove a member by hand; returns whether it was a member (not done, not removed).
    pub(super) fn remove_member(self: &Arc<Self>, pending: &AnyPending) -> bool {
        let id = pending.id();
        let mut st = lock(&self.state);
        let Some(m) = st
            .members
            .iter_mut()
            .find(|m| m.pending.id() == id && !m.removed)
        else {
            return false;
        };
        // The hook taken back before it ran: this removal, not the hook, decrements. If it
        // ran (or runs now), the member is done and the hook decrements.
        if !pending.remove_tracker(&self.as_member_done()) {
            return false;
        }
        m.removed = true;
        drop(st);
        self.member_left();
        true
    }

    /// One member fewer; the last one wakes a run that drains. After the exit, or in a
    /// group never run (members added by hand), every member that leaves is swept from
    /// the list at once (see `exit`): no exit is ahead to do it.
    fn member_left(&self) {
        let last = self.live.fetch_sub(1, Ordering::SeqCst) == 1;
        if !last && !self.no_exit_ahead.load(Ordering::Relaxed) {
            return;
        }
        let (waker, swept) = {
            let mut st = lock(&self.state);
            match st.phase {
                Phase::Draining if last => (st.waker.take(), Vec::new()),
                Phase::Exited | Phase::Created => (None, st.sweep()),
                Phase::Draining | Phase::Body => (None, Vec::new()),
            }
        };
        drop_swept(swept);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The members not done yet, oldest first.
    pub(super) fn members(&self) -> Vec<AnyPending> {
        lock(&self.state)
            .sorted_members()
            .into_iter()
            .map(|m| m.pending.clone())
            .collect()
    }

    /// The members still running, oldest first, as `#id name` (for a drain that gave up).
    pub(super) fn running_names(&self) -> Vec<String> {
        lock(&self.state)
            .sorted_members()
            .into_iter()
            .map(|m| format!("#{} {}", m.pending.id(), m.pending.metadata().name()))
            .collect()
    }
}

impl MemberDone for GroupInner {
    fn member_done(&self, p: &AnyPending, nested: bool) {
        /// The member's decrement, after what it ended with was recorded, and also if the
        /// group's cancel unwinds (a canceller or a waker of another member panicking):
        /// the count must come down once whatever happens, or the drain never ends.
        struct Left<'a>(&'a GroupInner);
        impl Drop for Left<'_> {
            fn drop(&mut self) {
                self.0.member_left();
            }
        }
        let _left = Left(self);
        // The common case, a member that ended with a value: one decrement, no lock.
        if !p.ended_with_value() {
            self.member_ended_badly(p, nested);
        }
    }
}

impl GroupInner {
    /// A member failed or was cancelled: record it, and cancel the group where the mode
    /// says so. The member's error and metadata are read before the group's lock.
    fn member_ended_badly(&self, p: &AnyPending, nested: bool) {
        let Some(e) = p.error() else {
            return;
        };
        let cancel_msg = if e.is_failure() {
            if nested {
                // A nested group records it and reports it when it exits.
                return;
            }
            let msg = format!("member '{}' failed: {e}", p.metadata().name());
            let failure = member_failure(p, e);
            let mut st = lock(&self.state);
            if st.phase == Phase::Exited {
                return;
            }
            st.failures.push(failure);
            (self.mode != GroupMode::Supervisor).then_some(msg)
        } else if e.is_cancelled() && self.mode.member_cancel_cancels_group() {
            let st = lock(&self.state);
            st.cancelled
                .is_none()
                .then(|| format!("member '{}' was cancelled", p.metadata().name()))
        } else {
            None
        };
        if let Some(msg) = cancel_msg {
            self.cancel(&msg);
        }
    }
}

/// Let go of members swept from the list, after the group's lock: one may hold the last
/// reference to its pending, whose value's `Drop` is user code (caught and logged: it must
/// not unwind into the call that joined the group, or the group's exit).
fn drop_swept(swept: Vec<Member>) {
    for m in swept {
        let id = m.pending.id();
        if let Some(panic) = crate::unwind::drop_caught(m) {
            tracing::error!(pending = id, panic = %panic, "a done member's value panicked while being dropped");
        }
    }
}

/// What a group keeps of a failed member.
fn member_failure(p: &AnyPending, error: Error) -> MemberFailure {
    let meta = p.metadata();
    let mut f = MemberFailure::new(meta.id(), meta.name(), error);
    f.caller = meta.caller().map(|(_, name)| name.to_owned());
    f.meta = p.user_meta();
    f
}

impl GroupInner {
    pub(crate) fn describe(&self, out: &mut String, indent: &str) {
        use std::fmt::Write;
        let st = lock(&self.state);
        let _ = write!(
            out,
            "{indent}group #{} mode={:?} shield={} phase={:?}",
            self.id, self.mode, self.shield, st.phase
        );
        if let Some(m) = &st.cancelled {
            let _ = write!(out, " cancelled={m:?}");
        }
        if !st.failures.is_empty() {
            let _ = write!(out, " failures={}", st.failures.len());
        }
        out.push('\n');
        for m in st.sorted_members() {
            let _ = writeln!(out, "{indent}  {:?}", m.pending);
        }
    }

    /// The fields of `PendingGroup`'s `Debug`.
    pub(super) fn debug_fields(&self, d: &mut std::fmt::DebugStruct<'_, '_>) {
        let st = lock(&self.state);
        d.field("id", &self.id)
            .field("mode", &self.mode)
            .field("shield", &self.shield)
            .field("phase", &st.phase)
            .field("members", &self.live.load(Ordering::Relaxed))
            .field("cancelled", &st.cancelled)
            .field("failures", &st.failures.len());
    }

    pub(crate) fn caller_id(&self) -> Option<crate::rt::CallerId> {
        self.caller.as_ref().map(Caller::id)
    }
}

impl Tracker for GroupInner {
    fn kind(&self) -> Trackers {
        Trackers::GROUPS
    }

    fn shielded(&self) -> bool {
        self.shield
    }

    fn add(self: Arc<Self>, pending: &AnyPending, shielded: bool, nested: bool) {
        self.add_member(pending, shielded, nested, false);
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}
