//! `PendingGroup`: a structured-concurrency scope.
//!
//! # Specification
//!
//! A group is entered once with [`PendingGroup::run`]. While its body runs, the group is
//! in the body's [`Context`], so every pending created by the body — and by the calls it
//! makes, on any thread — joins the group (if it opts into groups).
//!
//! ```text
//!   Created ──run──▶ Body ──body ends──▶ Draining ──members done──▶ Exited
//!                     │  ▲                  │
//!                     │  └─ cancel/timeout: body dropped, members cancelled,
//!                     │     the drain is bounded by cancellation_timeout
//!                     └─ run future dropped: every member cancelled
//! ```
//!
//! - **Failures** (a member panicked or returned `Err`): recorded; in every mode but
//!   `Supervisor` the group cancels itself and every member. The exit is
//!   `Err(Error::Group)` holding every failure.
//! - **Cancelled members**: in modes 1 and 2 they cancel the group; in 0, 3 and
//!   `Supervisor` they are ignored.
//! - **Exit when the group ended cancelled** (its own `cancel`, its timeout, or in modes
//!   1 and 2 a cancelled member): modes 1, 3 and `Supervisor` give
//!   `Err(Error::Cancelled)`, modes 0 and 2 exit quietly. If the body was dropped before
//!   it finished, a quiet exit is `Ok(None)`.
//! - **Shield**: cancellation of an enclosing group reaches neither a shielded group's
//!   body nor its members (they are still members of the enclosing group, which waits for
//!   them and sees their failures). A cancelled group whose body is inside an active
//!   shielded group keeps running that body until the shielded group exits, then drops
//!   it at the next suspension point (trio's semantics).
//! - Members added after the group exited are cancelled at once: nothing outlives the
//!   scope.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::caller::Caller;
use crate::context::{Context, Tracker, Trackers};
use crate::error::{Error, GroupError, MemberFailure};
use crate::pending::{AnyPending, MemberDone};
use crate::sync::{lock, Mutex, Ordering};
use crate::timer::Sleep;

/// How a [`PendingGroup`] reacts to cancelled members and how it exits when it ended
/// cancelled. async-kernel's modes 0–2, its mode 3 as the code behaves, and a supervisor.
///
/// | mode | a cancelled member cancels the group | exit when the group ended cancelled |
/// |---|---|---|
/// | `IgnoreCancelled` (0) | no | quietly (`Ok`) |
/// | `CancelAndRaise` (1) | yes | `Err(Cancelled)` |
/// | `CancelQuietly` (2) | yes | quietly (`Ok`) |
/// | `Raise` (3) | no | `Err(Cancelled)` |
/// | `Supervisor` | no | `Err(Cancelled)` |
///
/// In every mode but `Supervisor`, a failing member cancels the group and every member;
/// a supervisor only records failures, lets the siblings finish, and reports them all at
/// exit.
///
/// ```
/// use caller::GroupMode;
/// assert_eq!(GroupMode::from_number(1), Some(GroupMode::CancelAndRaise));
/// assert_eq!(GroupMode::from_number(4), None);
/// assert_eq!(GroupMode::default(), GroupMode::IgnoreCancelled);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GroupMode {
    /// Mode 0: ignore cancelled members; exit quietly when cancelled.
    #[default]
    IgnoreCancelled,
    /// Mode 1: a cancelled member cancels the group; exit with `Err(Cancelled)`.
    CancelAndRaise,
    /// Mode 2: a cancelled member cancels the group; exit quietly.
    CancelQuietly,
    /// Mode 3: ignore cancelled members; exit with `Err(Cancelled)` when cancelled.
    Raise,
    /// Failures do not cancel siblings; all are reported at exit. Cancelled members are
    /// ignored; a cancelled group exits with `Err(Cancelled)`.
    Supervisor,
}

impl GroupMode {
    /// async-kernel's numeric modes 0–3.
    pub fn from_number(n: u8) -> Option<GroupMode> {
        Some(match n {
            0 => GroupMode::IgnoreCancelled,
            1 => GroupMode::CancelAndRaise,
            2 => GroupMode::CancelQuietly,
            3 => GroupMode::Raise,
            _ => return None,
        })
    }

    fn member_cancel_cancels_group(self) -> bool {
        matches!(self, GroupMode::CancelAndRaise | GroupMode::CancelQuietly)
    }

    fn raises_when_cancelled(self) -> bool {
        !matches!(self, GroupMode::IgnoreCancelled | GroupMode::CancelQuietly)
    }
}

impl TryFrom<u8> for GroupMode {
    type Error = Error;

    fn try_from(n: u8) -> Result<Self, Error> {
        GroupMode::from_number(n)
            .ok_or_else(|| Error::invalid(format!("a group mode is 0, 1, 2 or 3, not {n}")))
    }
}

/// Options for a [`PendingGroup`]: [`PendingGroup::builder`].
///
/// ```
/// use std::time::Duration;
/// use caller::{GroupMode, PendingGroup};
/// let group = PendingGroup::builder()
///     .mode(GroupMode::CancelAndRaise)
///     .shield(true)
///     .timeout(Duration::from_secs(5))
///     .cancellation_timeout(Duration::from_secs(1))
///     .build();
/// assert_eq!(group.mode(), GroupMode::CancelAndRaise);
/// ```
#[derive(Clone, Debug)]
pub struct GroupBuilder {
    mode: GroupMode,
    shield: bool,
    timeout: Option<Duration>,
    cancellation_timeout: Duration,
    caller: Option<Caller>,
}

impl Default for GroupBuilder {
    fn default() -> Self {
        GroupBuilder {
            mode: GroupMode::default(),
            shield: false,
            timeout: None,
            cancellation_timeout: PendingGroup::CANCELLATION_TIMEOUT,
            caller: None,
        }
    }
}

impl GroupBuilder {
    /// The mode (default [`GroupMode::IgnoreCancelled`]).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn mode(mut self, mode: GroupMode) -> Self {
        self.mode = mode;
        self
    }

    /// Shield the group from the cancellation of enclosing groups.
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn shield(mut self, shield: bool) -> Self {
        self.shield = shield;
        self
    }

    /// Cancel the group this long after it is entered.
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// After a cancel or failure, wait at most this long for members to finish (default
    /// 10 s, async-kernel's `cancellation_timeout`).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn cancellation_timeout(mut self, d: Duration) -> Self {
        self.cancellation_timeout = d;
        self
    }

    /// Make the group (enter it with [`PendingGroup::run`]).
    pub fn build(self) -> PendingGroup {
        static NEXT: crate::sync::global::AtomicU64 = crate::sync::global::AtomicU64::new(1);
        PendingGroup {
            inner: Arc::new(GroupInner {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                mode: self.mode,
                shield: self.shield,
                timeout: self.timeout,
                cancellation_timeout: self.cancellation_timeout,
                caller: self.caller.or_else(Caller::current),
                state: Mutex::new(GroupState::default()),
            }),
        }
    }
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

#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    #[default]
    Created,
    Body,
    Draining,
    Exited,
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

pub(crate) struct GroupInner {
    id: u64,
    mode: GroupMode,
    shield: bool,
    timeout: Option<Duration>,
    cancellation_timeout: Duration,
    caller: Option<Caller>,
    state: Mutex<GroupState>,
}

/// A structured-concurrency scope: every pending created inside it (that opts in) is a
/// member, on any thread; on exit the group waits for all members; a failure cancels the
/// group and its members (except in `Supervisor` mode); cancellation follows the
/// [`GroupMode`].
///
/// Made with [`Caller::create_pending_group`], [`PendingGroup::builder`] or the
/// `pending_group!` macro, entered once with [`run`](Self::run).
///
/// # Work spawned outside `caller`
/// Calls made through `caller` inside the body join the group on any thread, and so do
/// the calls they make. Work you spawn yourself starts with an empty context: carry it
/// with [`Context::current`](crate::Context::current), then
/// `tokio::spawn(ctx.scope(fut))` for a future or `std::thread::spawn(ctx.wrap(f))` (or
/// rayon, `spawn_blocking`, any pool) for a closure. The calls that work makes then join
/// the group; the spawned task or thread itself does not (the group neither waits for it
/// nor aborts it), so run work that must be waited for as a call (`to_thread`).
///
/// ```
/// use caller::{Context, GroupMode, PendingGroup};
/// let group = PendingGroup::new(GroupMode::CancelAndRaise);
/// let g = group.clone();
/// let out = futures::executor::block_on(group.run(async {
///     let call = std::thread::spawn(Context::current().wrap(|| {
///         caller::to_thread_async(std::future::pending::<()>)
///     }))
///     .join()
///     .unwrap();
///     assert_eq!(g.members(), vec![call.any()]); // the thread's call is a member
///     g.cancel("stop");
///     call.await
/// }));
/// assert!(out.unwrap_err().is_cancelled());
/// ```
///
/// # Cancellation
/// - [`cancel`](Self::cancel) from any thread: the body is dropped at its next
///   suspension point, every member is cancelled, and the exit waits at most
///   `cancellation_timeout` for them, then returns anyway, naming the ones still running.
/// - Dropping the `run` future cancels every member.
///
/// ```
/// use caller::{Caller, GroupMode, PendingGroup};
/// # fn main() -> Result<(), caller::Error> {
/// let worker = Caller::new_thread("doc-group")?;
/// let out = futures::executor::block_on(PendingGroup::builder().mode(GroupMode::CancelAndRaise).build().run(async {
///     let a = worker.call_soon(|| 1);
///     let b = caller::to_thread(|| 2);
///     a.await.unwrap() + b.await.unwrap()
/// }))?;
/// assert_eq!(out, Some(3));
/// # worker.stop(true); Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a PendingGroup does nothing until it is entered with `run` (or `pending_group!`)"]
pub struct PendingGroup {
    inner: Arc<GroupInner>,
}

impl PendingGroup {
    /// async-kernel's default `cancellation_timeout`: 10 seconds.
    pub const CANCELLATION_TIMEOUT: Duration = Duration::from_secs(10);

    /// Options for a new group.
    #[must_use = "a builder does nothing until `build`"]
    pub fn builder() -> GroupBuilder {
        GroupBuilder::default()
    }

    /// A group with `mode` and default options.
    pub fn new(mode: GroupMode) -> PendingGroup {
        GroupBuilder::default().mode(mode).build()
    }

    /// The innermost group active in the current context (inside a group's body, or a
    /// call made from it).
    ///
    /// ```
    /// use caller::PendingGroup;
    /// assert!(PendingGroup::current().is_none());
    /// let g = PendingGroup::new(Default::default());
    /// futures::executor::block_on(g.run(async {
    ///     assert!(PendingGroup::current().is_some());
    /// })).unwrap();
    /// ```
    pub fn current() -> Option<PendingGroup> {
        Context::current()
            .trackers()
            .iter()
            .rev()
            .find_map(super::as_group)
            .map(|inner| PendingGroup { inner })
    }

    /// The group's mode.
    pub fn mode(&self) -> GroupMode {
        self.inner.mode
    }

    /// Whether the group is shielded.
    pub fn shield(&self) -> bool {
        self.inner.shield
    }

    /// The caller of the thread that made the group, if any (async-kernel's `caller`).
    pub fn caller(&self) -> Option<&Caller> {
        self.inner.caller.as_ref()
    }

    /// How long the exit waits for members after a cancel or failure.
    pub fn cancellation_timeout(&self) -> Duration {
        self.inner.cancellation_timeout
    }

    /// A process-unique id of the group.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Cancel the group from any thread: its body is dropped at its next suspension point
    /// and every member is cancelled with `msg`. Returns `false` if it had already exited.
    ///
    /// ```
    /// use caller::{GroupMode, PendingGroup};
    /// let g = PendingGroup::new(GroupMode::CancelAndRaise);
    /// let out = futures::executor::block_on(g.run(async {
    ///     PendingGroup::current().unwrap().cancel("enough");
    ///     std::future::pending::<()>().await
    /// }));
    /// assert!(out.unwrap_err().is_cancelled());
    /// ```
    pub fn cancel(&self, msg: impl AsRef<str>) -> bool {
        self.inner.cancel(msg.as_ref())
    }

    /// Whether the group was cancelled (by `cancel`, its timeout, a failure, or — modes 1
    /// and 2 — a cancelled member).
    pub fn cancelled(&self) -> bool {
        lock(&self.inner.state).cancelled.is_some()
    }

    /// The members not done yet, oldest first.
    pub fn members(&self) -> Vec<AnyPending> {
        lock(&self.inner.state)
            .sorted_members()
            .into_iter()
            .map(|m| m.pending.clone())
            .collect()
    }

    /// Add a pending by hand (it is cancelled at once if the group has exited).
    ///
    /// ```
    /// let g = caller::PendingGroup::new(Default::default());
    /// let p = caller::Pending::<()>::new();
    /// g.add(&p);
    /// assert_eq!(g.members(), vec![p.any()]);
    /// assert!(g.remove(&p));
    /// ```
    pub fn add(&self, pending: &AnyPending) {
        self.inner.add_member(pending, false, false);
    }

    /// Remove a member by hand; returns whether it was a member.
    pub fn remove(&self, pending: &AnyPending) -> bool {
        // The member's done callback stays registered; it ignores non-members.
        let removed = lock(&self.inner.state).members.remove(&pending.id());
        if removed.is_some() {
            self.inner.wake();
        }
        removed.is_some()
    }

    /// Enter the group: run `body` with the group active, then wait for every member.
    ///
    /// - `Ok(Some(v))`: the body returned `v` and the group did not raise.
    /// - `Ok(None)`: the group was cancelled before the body finished, and its mode exits
    ///   quietly.
    /// - `Err(Error::Group(..))`: members failed (every failure inside), or members were
    ///   still running when the exit gave up waiting.
    /// - `Err(Error::Cancelled { .. })`: the group ended cancelled and its mode raises.
    /// - `Err(Error::Invalid { .. })`: the group was already entered once.
    ///
    /// A panic in the body propagates unchanged, after every member is cancelled.
    pub async fn run<F: Future>(&self, body: F) -> Result<Option<F::Output>, Error> {
        self.run_inner(body, |_| false).await
    }

    /// [`run`](Self::run) for a body returning `Result`: an `Err` from the body cancels
    /// every member (bounded by `cancellation_timeout`) and comes out unchanged as
    /// `Ok(Some(Err(e)))`, whatever the mode and whatever the members did.
    ///
    /// ```
    /// let g = caller::PendingGroup::new(Default::default());
    /// let out = futures::executor::block_on(g.try_run(async {
    ///     let _member = caller::to_thread_async(|| std::future::pending::<()>());
    ///     "x".parse::<u8>()
    /// }));
    /// assert!(matches!(out, Ok(Some(Err(_)))));
    /// ```
    pub async fn try_run<F, T, E>(&self, body: F) -> Result<Option<Result<T, E>>, Error>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.run_inner(body, |out| out.is_err()).await
    }

    async fn run_inner<F: Future>(
        &self,
        body: F,
        body_failed: impl Fn(&F::Output) -> bool,
    ) -> Result<Option<F::Output>, Error> {
        let inner = &self.inner;
        {
            let mut st = lock(&inner.state);
            if st.phase != Phase::Created {
                return Err(Error::invalid(
                    "a PendingGroup can be entered once: make a new group for another scope",
                ));
            }
            st.phase = Phase::Body;
        }
        let outer = Context::current();
        let enclosing: Vec<Arc<GroupInner>> = outer
            .trackers()
            .iter()
            .filter_map(super::as_group)
            .collect();
        let parent = enclosing.last().cloned();
        for g in &enclosing {
            if inner.shield {
                lock(&g.state).shields_inside += 1;
            } else {
                g.add_child(inner);
            }
        }
        super::registry_insert(inner);
        let mut guard = ExitGuard {
            inner: inner.clone(),
            armed: true,
            shielding: if inner.shield { enclosing } else { Vec::new() },
        };
        let mut ctx = outer.with_tracker(inner.clone());
        let mut deadline = inner.timeout.map(Sleep::new);
        let mut body = std::pin::pin!(Some(body));
        let mut output = None;
        let mut body_err = false;
        let mut drain_limit: Option<Sleep> = None;

        let abandoned = std::future::poll_fn(|cx| {
            inner.set_waker(cx.waker());
            if let Some(d) = &mut deadline {
                if std::pin::Pin::new(d).poll(cx).is_ready() {
                    deadline = None;
                    let after = inner.timeout.unwrap_or_default();
                    {
                        let mut st = lock(&inner.state);
                        if st.cancelled.is_none() {
                            st.timed_out = Some(after);
                        }
                    }
                    inner.cancel(&format!("the group timed out after {after:?}"));
                }
            }
            // Through `as_pin_mut`, never `is_some()`: a shared borrow of the whole pinned
            // body would freeze the borrows it holds into itself (miri flags it).
            if let Some(fut) = body.as_mut().as_pin_mut() {
                if inner.is_cancelled() && !inner.shield_holds() {
                    body.set(None);
                } else {
                    let polled = crate::context::in_context(&mut ctx, || fut.poll(cx));
                    match polled {
                        Poll::Ready(out) => {
                            body.set(None);
                            if body_failed(&out) {
                                body_err = true;
                                inner.cancel("the group's body failed");
                            }
                            output = Some(out);
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                lock(&inner.state).phase = Phase::Draining;
            }
            // Draining: wait for members; bounded once the group is cancelled.
            let (empty, cancelled_at) = {
                let st = lock(&inner.state);
                (st.members.is_empty(), st.cancelled_at)
            };
            if empty {
                return Poll::Ready(Vec::new());
            }
            if let Some(at) = cancelled_at {
                let limit = drain_limit.get_or_insert_with(|| {
                    Sleep::until(at.checked_add(inner.cancellation_timeout))
                });
                if std::pin::Pin::new(limit).poll(cx).is_ready() {
                    let st = lock(&inner.state);
                    return Poll::Ready(
                        st.sorted_members()
                            .into_iter()
                            .map(|m| format!("#{} {}", m.pending.id(), m.pending.metadata().name()))
                            .collect(),
                    );
                }
            }
            Poll::Pending
        })
        .await;

        guard.armed = false;
        let (failures, cancelled, timed_out) = inner.exit();
        drop(guard);
        if !abandoned.is_empty() {
            tracing::warn!(
                group = inner.id,
                still_running = ?abandoned,
                "the group gave up waiting for members after its cancellation timeout"
            );
        }
        if body_err {
            // The body's own error comes out unchanged, whatever the mode.
            return Ok(output);
        }
        let raised = if !failures.is_empty() || !abandoned.is_empty() {
            Error::Group(Arc::new(GroupError {
                failures,
                cancelled,
                timed_out,
                abandoned,
            }))
        } else {
            match cancelled {
                // Ended by its own timeout: say so (`is_timeout()`), still a cancellation.
                Some(message) if inner.mode.raises_when_cancelled() && timed_out.is_some() => {
                    Error::Group(Arc::new(GroupError {
                        failures: Vec::new(),
                        cancelled: Some(message),
                        timed_out,
                        abandoned: Vec::new(),
                    }))
                }
                Some(message) if inner.mode.raises_when_cancelled() => Error::Cancelled { message },
                _ => return Ok(output),
            }
        };
        if raised.is_failure() {
            // The enclosing group sees this group's failures once, as they were raised.
            if let Some(parent) = &parent {
                parent.record_failure(MemberFailure::new(
                    inner.id,
                    format!("group #{}", inner.id),
                    raised.clone(),
                ));
            }
        }
        Err(raised)
    }
}

/// Cancels every member if the `run` future is dropped (or unwinds) before it exits.
struct ExitGuard {
    inner: Arc<GroupInner>,
    armed: bool,
    /// Enclosing groups this (shielded) group holds open while it runs.
    shielding: Vec<Arc<GroupInner>>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if self.armed {
            self.inner.cancel("the group was dropped before it exited");
            self.inner.exit();
        }
        for g in self.shielding.drain(..) {
            lock(&g.state).shields_inside -= 1;
            g.wake();
        }
        super::registry_remove(self.inner.id);
    }
}

impl GroupInner {
    fn is_cancelled(&self) -> bool {
        lock(&self.state).cancelled.is_some()
    }

    fn shield_holds(&self) -> bool {
        lock(&self.state).shields_inside > 0
    }

    fn set_waker(&self, waker: &Waker) {
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
    fn cancel(&self, msg: &str) -> bool {
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

    /// Mark the group exited; returns its failures, cancel message and timeout.
    fn exit(&self) -> (Vec<MemberFailure>, Option<String>, Option<Duration>) {
        let mut st = lock(&self.state);
        st.phase = Phase::Exited;
        st.waker = None;
        st.children.clear();
        (
            std::mem::take(&mut st.failures),
            st.cancelled.clone(),
            st.timed_out.filter(|_| st.cancelled.is_some()),
        )
    }

    /// Record a failure that is not a member's own (a nested group's error); outside
    /// `Supervisor` mode it cancels the group.
    fn record_failure(&self, failure: MemberFailure) {
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

    fn add_child(&self, child: &Arc<GroupInner>) {
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

    fn add_member(self: &Arc<Self>, pending: &AnyPending, shielded: bool, nested: bool) {
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

impl fmt::Debug for PendingGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.inner.state);
        f.debug_struct("PendingGroup")
            .field("id", &self.inner.id)
            .field("mode", &self.inner.mode)
            .field("shield", &self.inner.shield)
            .field("phase", &st.phase)
            .field("members", &st.members.len())
            .field("cancelled", &st.cancelled)
            .field("failures", &st.failures.len())
            .finish()
    }
}

impl Caller {
    /// Make a [`PendingGroup`] (async-kernel's `create_pending_group`); enter it with
    /// [`PendingGroup::run`].
    ///
    /// ```
    /// use caller::{Caller, GroupMode};
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = Caller::new_thread("doc-create-group")?;
    /// let g = c.create_pending_group(GroupMode::IgnoreCancelled, false, None);
    /// let out = futures::executor::block_on(g.run(async { 1 }))?;
    /// assert_eq!(out, Some(1));
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn create_pending_group(
        &self,
        mode: GroupMode,
        shield: bool,
        timeout: Option<Duration>,
    ) -> PendingGroup {
        let mut b = PendingGroup::builder().mode(mode).shield(shield);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        // async-kernel's group belongs to the caller it was made from.
        b.caller = Some(self.clone());
        b.build()
    }
}
