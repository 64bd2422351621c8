//! A group's shared state, [`GroupInner`]: what the run future, the group's handles, its
//! members' done hooks and the dump all see. Member bookkeeping (`add_member`,
//! `member_done`, `remove_member`), failures, `cancel` and the shield counts live here;
//! the phases are moved on by the run future ([`super::run`]), never from here.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::GroupMode;
use crate::caller::Caller;
use crate::context::{Tracker, Trackers};
use crate::error::{Error, MemberFailure};
use crate::pending::{AnyPending, MemberDone};
use crate::sync::{lock, Mutex, Ordering};

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
    members: HashMap<u64, Member, BuildHasherDefault<IdHasher>>,
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
    /// Also a member of a group nested in this one: that group records its failure and
    /// reports it, as one nested failure, when it exits.
    nested: bool,
}

/// Pending ids are distinct sequential numbers: they need no hashing.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl GroupState {
    /// The members, oldest first.
    fn sorted_members(&self) -> Vec<&Member> {
        let mut v: Vec<&Member> = self.members.values().collect();
        v.sort_by_key(|m| m.pending.id());
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

    /// Where the drain stands.
    pub(super) fn drain_status(&self) -> DrainStatus {
        let st = lock(&self.state);
        if st.members.is_empty() {
            DrainStatus::Done
        } else {
            DrainStatus::Waiting {
                cancelled_at: st.cancelled_at,
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
                .values()
                .filter(|m| !m.shielded)
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
    pub(super) fn exit(&self) -> Exit {
        let mut st = lock(&self.state);
        st.phase = Phase::Exited;
        st.waker = None;
        st.children.clear();
        Exit {
            failures: std::mem::take(&mut st.failures),
            cancelled: st.cancelled.clone(),
            timed_out: st.timed_out.filter(|_| st.cancelled.is_some()),
        }
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

    pub(super) fn add_member(self: &Arc<Self>, pending: &AnyPending, shielded: bool, nested: bool) {
        let cancel_with = {
            let mut st = lock(&self.state);
            if st.phase == Phase::Exited {
                drop(st);
                pending.cancel("the group this call belongs to has already exited");
                return;
            }
            match st.members.entry(pending.id()) {
                Entry::Occupied(_) => return,
                Entry::Vacant(v) => {
                    v.insert(Member {
                        pending: pending.clone(),
                        shielded,
                        nested,
                    });
                }
            }
            st.cancelled.clone().filter(|_| !shielded)
        };
        if let Some(msg) = cancel_with {
            pending.cancel(&msg);
        }
        let weak: Weak<dyn MemberDone> = Arc::downgrade(self) as Weak<GroupInner>;
        pending.add_tracker(weak);
    }

    /// Remove a member by hand; returns whether it was a member.
    pub(super) fn remove_member(&self, pending: &AnyPending) -> bool {
        // The member's done callback stays registered; it ignores non-members.
        let removed = lock(&self.state).members.remove(&pending.id());
        if removed.is_some() {
            self.wake();
        }
        removed.is_some()
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
    fn member_done(&self, p: &AnyPending) {
        let (cancel_msg, waker) = {
            let mut st = lock(&self.state);
            let Some(member) = st.members.remove(&p.id()) else {
                return;
            };
            let cancel_msg = match p.error() {
                // A nested group records it and reports it when it exits.
                Some(e) if e.is_failure() && member.nested => None,
                Some(e) if e.is_failure() => {
                    let msg = format!("member '{}' failed: {e}", p.metadata().name());
                    st.failures.push(member_failure(p, e));
                    (self.mode != GroupMode::Supervisor).then_some(msg)
                }
                Some(e) if e.is_cancelled() => (self.mode.member_cancel_cancels_group()
                    && st.cancelled.is_none())
                .then(|| format!("member '{}' was cancelled", p.metadata().name())),
                _ => None,
            };
            // Only the drain waits on members, and only for the last one: an ordinary
            // completion while the body runs needs no wakeup (the body has its own).
            let waker =
                if cancel_msg.is_none() && st.phase == Phase::Draining && st.members.is_empty() {
                    st.waker.take()
                } else {
                    None
                };
            (cancel_msg, waker)
        };
        if let Some(msg) = cancel_msg {
            self.cancel(&msg);
        }
        if let Some(w) = waker {
            w.wake();
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
            .field("members", &st.members.len())
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
        self.add_member(pending, shielded, nested);
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}
