//! The context that follows a call across threads.
//!
//! Rust has no context variables, so the runtime carries its own: a [`Context`] is an
//! immutable snapshot of the active trackers (groups and managers). It is taken when a
//! call is scheduled and installed in this thread's *frame* every time that call's future
//! is polled (and around a sync call), so the calls it makes in turn inherit it — across
//! threads, awaits and interleaved tasks on one caller.
//!
//! The frame also says which pending is running ([`Caller::current_pending`]); its id is
//! kept in `rt` too, where `pending` reads it to refuse a wait on itself.
//!
//! [`Caller::current_pending`]: crate::Caller::current_pending

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use crate::pending::AnyPending;

/// Which kinds of tracker a pending opts into; see
/// [`CallOptions::trackers`](crate::CallOptions::trackers).
///
/// ```
/// use caller::Trackers;
/// assert!(Trackers::ALL.contains(Trackers::GROUPS));
/// assert!(!Trackers::MANAGERS.contains(Trackers::GROUPS));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trackers(u8);

impl Trackers {
    /// No tracker: the pending joins nothing.
    pub const NONE: Trackers = Trackers(0);
    /// [`PendingGroup`](crate::PendingGroup)s.
    pub const GROUPS: Trackers = Trackers(1);
    /// [`PendingManager`](crate::PendingManager)s.
    pub const MANAGERS: Trackers = Trackers(2);
    /// Every kind (the default for scheduled calls).
    pub const ALL: Trackers = Trackers(3);

    /// Whether every kind in `other` is in `self`.
    pub fn contains(self, other: Trackers) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Trackers {
    type Output = Trackers;
    fn bitor(self, rhs: Trackers) -> Trackers {
        Trackers(self.0 | rhs.0)
    }
}

/// A tracker as the context sees it. Implemented by groups and managers.
pub(crate) trait Tracker: Send + Sync + 'static {
    fn kind(&self) -> Trackers;
    /// A shielded group stops cancellation from the trackers outside it.
    fn shielded(&self) -> bool {
        false
    }
    /// `shielded` is true when a shielded group sits between this tracker and the pending;
    /// `nested` when any group does (that group reports the pending's failure, as part of
    /// its own error, when it exits).
    fn add(self: Arc<Self>, pending: &AnyPending, shielded: bool, nested: bool);
    fn id(&self) -> u64;
    /// The tracker as `Any`, for the tracker module to find its own kind again (a group
    /// looks for the groups that enclose it).
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// A snapshot of the active trackers; cheap to clone.
///
/// Taken with [`Context::current`], installed with [`Context::enter`] (plain threads) or
/// [`Context::scope`] (futures on any executor), so work done outside a caller can still
/// join the groups and managers of the code that started it.
///
/// ```
/// let ctx = caller::Context::current();
/// std::thread::spawn(move || {
///     let _guard = ctx.enter();
///     // pendings made here join the trackers that were active where `ctx` was taken
/// })
/// .join()
/// .unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Context {
    /// A thin pointer (every call's task carries one).
    trackers: Option<Arc<Vec<Arc<dyn Tracker>>>>,
}

impl Context {
    /// The empty context: no tracker active.
    pub fn empty() -> Self {
        Context::default()
    }

    /// The context active on this thread right now (inside a scheduled call: that call's).
    pub fn current() -> Self {
        FRAME.with(|f| f.borrow().ctx.clone())
    }

    /// `true` when no tracker is active.
    pub fn is_empty(&self) -> bool {
        self.trackers.is_none()
    }

    /// This thread's context becomes `self` until the guard is dropped.
    ///
    /// Guards must be dropped in reverse order of creation (as local variables are).
    pub fn enter(&self) -> ContextGuard {
        let prev = FRAME.with(|f| std::mem::replace(&mut f.borrow_mut().ctx, self.clone()));
        ContextGuard {
            prev: Some(prev),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Wrap `fut` so that this context is installed around every poll of it, on any
    /// executor. Trackers activated inside persist in the wrapped future's context.
    ///
    /// ```
    /// let ctx = caller::Context::current();
    /// futures::executor::block_on(ctx.scope(async { 1 }));
    /// ```
    pub fn scope<F: Future>(self, fut: F) -> Scoped<F> {
        Scoped {
            ctx: self,
            fut: Box::pin(fut),
        }
    }

    /// Wrap the closure `f` so that it runs inside this context, on whatever thread calls
    /// it: for work you hand to `std::thread::spawn`, rayon, `spawn_blocking` or any pool.
    /// The calls it makes join the groups and managers that were active where the context
    /// was taken. (For a future, use [`scope`](Self::scope).)
    ///
    /// ```
    /// use caller::{Context, GroupMode, PendingGroup};
    /// let group = PendingGroup::new(GroupMode::CancelAndRaise);
    /// let out = futures::executor::block_on(group.run(async {
    ///     let ctx = Context::current(); // inside the group
    ///     let on_a_thread = std::thread::spawn(ctx.wrap(|| {
    ///         // a member of the group, although this thread never saw it
    ///         caller::to_thread(caller::job::try_sync(|| "x".parse::<u8>()))
    ///     }));
    ///     on_a_thread.join().unwrap().await
    /// }));
    /// assert!(out.is_err(), "the call's failure failed the group");
    /// ```
    pub fn wrap<F, R>(self, f: F) -> impl FnOnce() -> R
    where
        F: FnOnce() -> R,
    {
        move || {
            let _entered = self.enter();
            f()
        }
    }

    pub(crate) fn with_tracker(&self, t: Arc<dyn Tracker>) -> Context {
        let mut v: Vec<Arc<dyn Tracker>> = self.trackers().to_vec();
        v.push(t);
        Context {
            trackers: Some(Arc::new(v)),
        }
    }

    pub(crate) fn without_tracker(&self, id: u64) -> Context {
        let v: Vec<Arc<dyn Tracker>> = self
            .trackers()
            .iter()
            .filter(|t| t.id() != id)
            .cloned()
            .collect();
        Context {
            trackers: if v.is_empty() {
                None
            } else {
                Some(Arc::new(v))
            },
        }
    }

    /// This context with only the trackers of `kinds`: what a call that opts into
    /// `kinds` sees (a call that opts out of a kind does not see it either).
    pub(crate) fn only(self, kinds: Trackers) -> Context {
        if kinds == Trackers::ALL || self.trackers().iter().all(|t| kinds.contains(t.kind())) {
            return self;
        }
        let v: Vec<Arc<dyn Tracker>> = self
            .trackers()
            .iter()
            .filter(|t| kinds.contains(t.kind()))
            .cloned()
            .collect();
        Context {
            trackers: (!v.is_empty()).then(|| Arc::new(v)),
        }
    }

    pub(crate) fn trackers(&self) -> &[Arc<dyn Tracker>] {
        self.trackers.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Add `pending` to every tracker of a kind in `kinds`.
    pub(crate) fn register(&self, pending: &AnyPending, kinds: Trackers) {
        let trackers = self.trackers();
        for (i, t) in trackers.iter().enumerate() {
            if kinds.contains(t.kind()) {
                let inside = &trackers[i + 1..];
                let shielded = inside.iter().any(|inner| inner.shielded());
                let nested = inside.iter().any(|inner| inner.kind() == Trackers::GROUPS);
                t.clone().add(pending, shielded, nested);
            }
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field(
                "trackers",
                &self.trackers().iter().map(|t| t.id()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Restores the previous context when dropped; see [`Context::enter`].
#[must_use = "the context is left when the guard is dropped"]
pub struct ContextGuard {
    prev: Option<Context>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            FRAME.with(|f| f.borrow_mut().ctx = prev);
        }
    }
}

impl fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContextGuard")
    }
}

/// A future run inside a [`Context`]; see [`Context::scope`].
#[must_use = "futures do nothing unless awaited"]
pub struct Scoped<F> {
    ctx: Context,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let fut = this.fut.as_mut();
        in_context(&mut this.ctx, || fut.poll(cx))
    }
}

impl<F> fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped").field("ctx", &self.ctx).finish()
    }
}

/// On drop (also when unwinding), move the frame's context back into `slot` and restore
/// the previous one.
struct RestoreCtx<'a> {
    slot: &'a mut Context,
    prev: Option<Context>,
}

impl Drop for RestoreCtx<'_> {
    fn drop(&mut self) {
        let prev = self.prev.take().unwrap_or_default();
        *self.slot = FRAME.with(|f| std::mem::replace(&mut f.borrow_mut().ctx, prev));
    }
}

#[derive(Default)]
struct Frame {
    ctx: Context,
    pending: Option<AnyPending>,
}

thread_local! {
    static FRAME: RefCell<Frame> = RefCell::new(Frame::default());
}

/// Install `ctx` and `pending` as this thread's frame while `f` runs; afterwards the
/// (possibly changed) context is written back into `ctx`.
pub(crate) fn run_in_frame<R>(ctx: &mut Context, pending: &AnyPending, f: impl FnOnce() -> R) -> R {
    let new = std::mem::take(ctx);
    let (prev_ctx, prev_pending) = FRAME.with(|fr| {
        let mut fr = fr.borrow_mut();
        (
            std::mem::replace(&mut fr.ctx, new),
            fr.pending.replace(pending.clone()),
        )
    });
    let prev_id = crate::rt::enter_pending(pending.id());
    struct Restore<'a> {
        slot: &'a mut Context,
        prev: Option<(Context, Option<AnyPending>)>,
        prev_id: u64,
    }
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            crate::rt::enter_pending(self.prev_id);
            let (ctx, pending) = self.prev.take().unwrap_or_default();
            FRAME.with(|fr| {
                let mut fr = fr.borrow_mut();
                *self.slot = std::mem::replace(&mut fr.ctx, ctx);
                fr.pending = pending;
            });
        }
    }
    let _restore = Restore {
        slot: ctx,
        prev: Some((prev_ctx, prev_pending)),
        prev_id,
    };
    f()
}

/// Install `ctx` as this thread's context while `f` runs; afterwards the (possibly
/// changed) context is written back into `ctx`.
pub(crate) fn in_context<R>(ctx: &mut Context, f: impl FnOnce() -> R) -> R {
    let new = std::mem::take(ctx);
    let prev = FRAME.with(|fr| std::mem::replace(&mut fr.borrow_mut().ctx, new));
    let _restore = RestoreCtx {
        slot: ctx,
        prev: Some(prev),
    };
    f()
}

/// Change this thread's current context in place.
pub(crate) fn modify_current(f: impl FnOnce(&Context) -> Context) {
    FRAME.with(|fr| {
        let mut fr = fr.borrow_mut();
        let new = f(&fr.ctx);
        fr.ctx = new;
    });
}

/// The pending whose function is running on this thread, if any.
pub(crate) fn current_pending() -> Option<AnyPending> {
    FRAME.with(|f| f.borrow().pending.clone())
}
