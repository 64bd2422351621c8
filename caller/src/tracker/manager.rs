//! `PendingManager`: an explicitly activated tracker.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};

use crate::context::{modify_current, Context, Tracker, Trackers};
use crate::pending::{AnyPending, MemberDone};
use crate::sync::{lock, Mutex, Ordering};

struct ManagerInner {
    id: u64,
    pendings: Mutex<BTreeMap<u64, AnyPending>>,
}

/// Collects the pendings created while it is active — for example every call made while
/// handling one request — so they can be listed, cancelled or waited on together.
///
/// Unlike a [`PendingGroup`](crate::PendingGroup) it is not a scope: it is activated and
/// deactivated explicitly (or with a guard), waits for nothing and cancels nothing on its
/// own. Activation changes the *current context* — inside a scheduled call, that call's
/// context — so managers active on different tasks of one caller never see each other's
/// pendings. Calls made from inside a tracked call are tracked too, on any thread.
/// `queue_call` queues join managers (never groups).
///
/// ```
/// use caller::{Caller, PendingManager};
/// # fn main() -> Result<(), caller::Error> {
/// let c = Caller::new_thread("doc-manager")?;
/// let request = PendingManager::new();
/// let guard = request.activate();
/// let slow = c.call_soon_async(std::future::pending::<()>);
/// drop(guard);
/// assert_eq!(request.pendings(), vec![slow.any()]);
/// assert_eq!(request.cancel_all("request aborted"), 1);
/// # c.stop(true); Ok(()) }
/// ```
#[derive(Clone)]
pub struct PendingManager {
    inner: Arc<ManagerInner>,
}

impl Default for PendingManager {
    fn default() -> Self {
        Self::new()
    }
}

impl PendingManager {
    /// A new, inactive manager.
    pub fn new() -> Self {
        static NEXT: crate::sync::global::AtomicU64 = crate::sync::global::AtomicU64::new(1 << 40);
        PendingManager {
            inner: Arc::new(ManagerInner {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                pendings: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Activate in the current context until the guard is dropped.
    pub fn activate(&self) -> ManagerGuard {
        self.activate_forever();
        ManagerGuard {
            manager: self.clone(),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Activate in the current context until [`deactivate`](Self::deactivate).
    pub fn activate_forever(&self) {
        if !self.is_active() {
            let t: Arc<dyn Tracker> = self.inner.clone();
            modify_current(|ctx| ctx.with_tracker(t));
        }
    }

    /// Deactivate in the current context.
    pub fn deactivate(&self) {
        let id = self.inner.id;
        modify_current(|ctx| ctx.without_tracker(id));
    }

    /// Whether the manager is active in the current context.
    pub fn is_active(&self) -> bool {
        Context::current()
            .trackers()
            .iter()
            .any(|t| t.id() == self.inner.id)
    }

    /// The tracked pendings that are not done yet, oldest first.
    pub fn pendings(&self) -> Vec<AnyPending> {
        lock(&self.inner.pendings).values().cloned().collect()
    }

    /// Cancel every tracked pending that is not done; returns how many were asked.
    pub fn cancel_all(&self, msg: &str) -> usize {
        let all = self.pendings();
        for p in &all {
            p.cancel(msg);
        }
        all.len()
    }

    /// Wait until every pending tracked so far is done (on any executor).
    pub async fn wait_all(&self) {
        loop {
            let all = self.pendings();
            if all.is_empty() {
                return;
            }
            for p in all {
                let _ = p.wait_done(None).await;
            }
        }
    }

    /// Add a pending by hand. Adding one twice is harmless; one already done is ignored.
    ///
    /// ```
    /// let m = caller::PendingManager::new();
    /// let p = caller::Pending::<()>::new();
    /// m.add(&p);
    /// m.add(&p);
    /// assert_eq!(m.pendings().len(), 1);
    /// assert!(m.remove(&p));
    /// assert!(m.pendings().is_empty());
    /// ```
    pub fn add(&self, pending: &AnyPending) {
        self.inner.clone().add(pending, false, false);
    }

    /// Stop tracking `pending` by hand; returns whether it was tracked.
    pub fn remove(&self, pending: &AnyPending) -> bool {
        // Its done callback stays registered and finds nothing to remove.
        lock(&self.inner.pendings).remove(&pending.id()).is_some()
    }
}

impl Tracker for ManagerInner {
    fn kind(&self) -> Trackers {
        Trackers::MANAGERS
    }

    fn add(self: Arc<Self>, pending: &AnyPending, _shielded: bool, _nested: bool) {
        if pending.done() {
            return;
        }
        let fresh = lock(&self.pendings)
            .insert(pending.id(), pending.clone())
            .is_none();
        if !fresh {
            return;
        }
        // Done in between: the hook runs at once and removes it again.
        let weak: Weak<dyn MemberDone> = Arc::downgrade(&self) as Weak<ManagerInner>;
        pending.add_tracker(weak, false);
    }

    fn id(&self) -> u64 {
        self.id
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

impl MemberDone for ManagerInner {
    fn member_done(&self, pending: &AnyPending, _nested: bool) {
        lock(&self.pendings).remove(&pending.id());
    }
}

impl fmt::Debug for PendingManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingManager")
            .field("id", &self.inner.id)
            .field("pending", &lock(&self.inner.pendings).len())
            .finish()
    }
}

/// Deactivates its manager when dropped; see [`PendingManager::activate`].
#[must_use = "the manager is deactivated when the guard is dropped"]
pub struct ManagerGuard {
    manager: PendingManager,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ManagerGuard {
    fn drop(&mut self) {
        self.manager.deactivate();
    }
}

impl fmt::Debug for ManagerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerGuard")
            .field("manager", &self.manager)
            .finish()
    }
}
