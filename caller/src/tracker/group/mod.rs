//! `PendingGroup`: a structured-concurrency scope. This module holds its specification
//! and its public face ([`PendingGroup`], [`GroupBuilder`], [`GroupMode`]); the shared
//! state and member bookkeeping are in `state`, the run future that moves the phases on
//! in `run`.
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
//! Only the run future (`run`) moves the group from phase to phase, one step each;
//! `cancel`, the members' done hooks and the dump read the phase (in `state`).
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

mod run;
mod state;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use self::state::GroupInner;

use self::run::GroupRun;
use crate::caller::Caller;
use crate::context::Context;
use crate::error::Error;
use crate::pending::AnyPending;

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
        PendingGroup {
            inner: Arc::new(GroupInner::new(
                self.mode,
                self.shield,
                self.timeout,
                self.cancellation_timeout,
                self.caller.or_else(Caller::current),
            )),
        }
    }
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
            .find_map(crate::tracker::as_group)
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
        self.inner.is_cancelled()
    }

    /// The members not done yet, oldest first.
    pub fn members(&self) -> Vec<AnyPending> {
        self.inner.members()
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
        self.inner.add_member(pending, false, false, true);
    }

    /// Remove a member by hand; returns whether it was a member.
    pub fn remove(&self, pending: &AnyPending) -> bool {
        self.inner.remove_member(pending)
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
        GroupRun::new(self.inner.clone(), body, |_| false).await
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
        GroupRun::new(self.inner.clone(), body, |out| out.is_err()).await
    }
}

impl fmt::Debug for PendingGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("PendingGroup");
        self.inner.debug_fields(&mut d);
        d.finish()
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
