//! Done callbacks: what runs when a pending is done ([`Callback`]: a user's closure, a
//! library hook, a tracker's [`MemberDone`]), the ids that remove them ([`CallbackId`]),
//! adding and removing them on [`AnyPending`] (in the state's callback list, under the
//! state lock), and running them ([`run_all`]) on the finishing thread, without the lock,
//! marked in the `SETTLING` thread-local so that a wait on the pending from one of its own
//! callbacks fails at once instead of waiting for itself.

use super::state::Header;
use super::view::AnyPending;

/// Identifies a done callback so that it can be removed again, with
/// [`remove_done_callback`](AnyPending::remove_done_callback) on the pending that returned
/// it: an id carries its pending's identity, so it removes nothing from another pending.
///
/// ```
/// let (a, b) = (caller::Pending::<()>::new(), caller::Pending::<()>::new());
/// let id = a.add_done_callback(|_| {});
/// assert!(!b.remove_done_callback(id));
/// assert!(a.remove_done_callback(id));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId {
    /// The id of the pending the callback was added to.
    pending: u64,
    /// Its number among that pending's callbacks (from 1).
    seq: u32,
}

/// A done callback: a user's closure, or one of the library's own hooks. Only user
/// callbacks can be removed: a hook (a tracker's, with no allocation per pending, or the
/// pool's) has no id anyone holds (regression: ids were bare per-pending counters, so an
/// id from another pending could remove a group's hook and the group never exited).
pub(super) enum Callback {
    User(Box<dyn FnOnce(&AnyPending) + Send + 'static>),
    Hook(Box<dyn FnOnce(&AnyPending) + Send + 'static>),
    Tracker(TrackerHook),
}

/// A tracker's hook on one of its pendings: the tracker, weakly (a pending does not keep
/// its group alive), and the flag it registered the pending with.
pub(super) struct TrackerHook {
    tracker: std::sync::Weak<dyn MemberDone>,
    nested: bool,
}

impl Callback {
    /// Whether this is `tracker`'s hook.
    fn is_hook_of(&self, tracker: &std::sync::Weak<dyn MemberDone>) -> bool {
        matches!(self, Callback::Tracker(h) if h.is(tracker))
    }
}

impl TrackerHook {
    /// The hook kept inline ([`Callbacks::Tracker`]): never `nested`.
    fn lone(tracker: std::sync::Weak<dyn MemberDone>) -> Self {
        TrackerHook {
            tracker,
            nested: false,
        }
    }

    fn is(&self, tracker: &std::sync::Weak<dyn MemberDone>) -> bool {
        std::sync::Weak::ptr_eq(&self.tracker, tracker)
    }
}

/// What a tracker does when one of its pendings is done.
pub(crate) trait MemberDone: Send + Sync + 'static {
    /// `pending` is done; `nested` is what the tracker said when it added its hook
    /// ([`AnyPending::add_tracker`]): for a group, that the member is also a member of a
    /// group nested in it.
    fn member_done(&self, pending: &AnyPending, nested: bool);
}

thread_local! {
    /// The pendings whose done callbacks this thread is running (their headers'
    /// addresses; nested when a callback finishes another pending). A wait on one of them
    /// from here would wait for itself.
    static SETTLING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether this thread is running `h`'s done callbacks.
pub(super) fn settling_here(h: &Header) -> bool {
    let addr = h as *const Header as usize;
    SETTLING.with(|s| s.borrow().contains(&addr))
}

/// Marks this thread as running a pending's callbacks until dropped.
struct Settling(usize);

impl Settling {
    fn enter(h: &Header) -> Settling {
        let addr = h as *const Header as usize;
        SETTLING.with(|s| s.borrow_mut().push(addr));
        Settling(addr)
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        SETTLING.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|a| *a == self.0) {
                s.remove(i);
            }
        });
    }
}

/// The done callbacks of a pending not run yet, each with its number. A lone tracker hook
/// (a member of one group or manager: the common case) is kept inline, so that joining a
/// group allocates no list. Only one registered with `nested == false`: the inline variant
/// holds the bare weak reference, which keeps the header at its size (a member of a nested
/// group has two hooks anyway, so its list costs nothing more).
pub(super) enum Callbacks {
    List(Vec<(u32, Callback)>),
    Tracker(std::sync::Weak<dyn MemberDone>),
}

impl Default for Callbacks {
    fn default() -> Self {
        Callbacks::List(Vec::new())
    }
}

impl Callbacks {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Callbacks::List(list) if list.is_empty())
    }

    fn push(&mut self, seq: u32, cb: Callback) {
        match (std::mem::take(self), cb) {
            (Callbacks::List(list), Callback::Tracker(hook)) if list.is_empty() && !hook.nested => {
                *self = Callbacks::Tracker(hook.tracker);
            }
            (Callbacks::List(mut list), cb) => {
                list.push((seq, cb));
                *self = Callbacks::List(list);
            }
            // A tracker has no id (nothing removes it): its number is of no use.
            (Callbacks::Tracker(first), cb) => {
                let first = Callback::Tracker(TrackerHook::lone(first));
                *self = Callbacks::List(vec![(0, first), (seq, cb)]);
            }
        }
    }

    /// Take out `tracker`'s hook, if it has not run.
    fn remove_tracker(&mut self, tracker: &std::sync::Weak<dyn MemberDone>) -> bool {
        match self {
            Callbacks::Tracker(t) if std::sync::Weak::ptr_eq(t, tracker) => {
                *self = Callbacks::default();
                true
            }
            Callbacks::Tracker(_) => false,
            Callbacks::List(list) => {
                let pos = list.iter().position(|(_, cb)| cb.is_hook_of(tracker));
                pos.map(|i| list.remove(i)).is_some()
            }
        }
    }

    /// Whether `tracker`'s hook is here (not run yet).
    fn has_tracker(&self, tracker: &std::sync::Weak<dyn MemberDone>) -> bool {
        match self {
            Callbacks::Tracker(t) => std::sync::Weak::ptr_eq(t, tracker),
            Callbacks::List(list) => list.iter().any(|(_, cb)| cb.is_hook_of(tracker)),
        }
    }

    /// Take out the user's callback numbered `seq`, if it has not run.
    fn remove_user(&mut self, seq: u32) -> Option<Callback> {
        let Callbacks::List(list) = self else {
            return None;
        };
        let pos = list
            .iter()
            .position(|(n, cb)| *n == seq && matches!(cb, Callback::User(_)))?;
        Some(list.remove(pos).1)
    }

    /// Run them, in the order added, on this thread, marked as settling `view`. Called
    /// without the lock.
    pub(super) fn run_all(self, view: &AnyPending) {
        let _settling = Settling::enter(view.header());
        match self {
            Callbacks::Tracker(t) => run_callback(Callback::Tracker(TrackerHook::lone(t)), view),
            Callbacks::List(list) => {
                for (_, cb) in list {
                    run_callback(cb, view);
                }
            }
        }
    }
}

/// Run one callback; a panic is caught and logged, so the remaining callbacks still run.
fn run_callback(cb: Callback, view: &AnyPending) {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cb {
        Callback::User(f) | Callback::Hook(f) => f(view),
        Callback::Tracker(hook) => {
            if let Some(t) = hook.tracker.upgrade() {
                t.member_done(view, hook.nested);
            }
        }
    }));
    if let Err(payload) = res {
        let meta = view.metadata();
        tracing::error!(
            pending = meta.id(),
            name = %meta.name(),
            panic = %crate::error::panic_message(&*payload),
            "a done callback panicked; the remaining callbacks still run"
        );
    }
}

impl AnyPending {
    /// Add a callback run when the pending is done: on the thread that finishes it, in the
    /// order added; at once (on this thread) if it is already done. A panicking callback
    /// is logged and the rest still run. Waits end after the callbacks, so a callback that
    /// waits synchronously on this pending gets `Err(Error::WouldDeadlock)` at once.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let p = caller::Pending::new();
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// for i in 0..3 {
    ///     let log = log.clone();
    ///     p.add_done_callback(move |_| log.lock().unwrap().push(i));
    /// }
    /// p.set_result(());
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&AnyPending) + Send + 'static) -> CallbackId {
        self.add_callback(Callback::User(Box::new(f)))
    }

    /// Tell `tracker` when this pending is done (a done callback without an allocation; a
    /// lone one is kept inline), handing it back `nested`.
    pub(crate) fn add_tracker(&self, tracker: std::sync::Weak<dyn MemberDone>, nested: bool) {
        self.add_callback(Callback::Tracker(TrackerHook { tracker, nested }));
    }

    /// Whether `tracker`'s hook is on this pending and has not run yet.
    pub(crate) fn has_tracker(&self, tracker: &std::sync::Weak<dyn MemberDone>) -> bool {
        self.header().lock().callbacks.has_tracker(tracker)
    }

    /// Take back `tracker`'s hook; returns `false` if it ran (or is running) already, or was
    /// never added: then the tracker is told of this pending's end, or was told.
    pub(crate) fn remove_tracker(&self, tracker: &std::sync::Weak<dyn MemberDone>) -> bool {
        self.header().lock().callbacks.remove_tracker(tracker)
    }

    /// A done callback of the library's own, which no id can remove.
    pub(crate) fn add_hook(&self, f: impl FnOnce(&AnyPending) + Send + 'static) {
        self.add_callback(Callback::Hook(Box::new(f)));
    }

    fn add_callback(&self, cb: Callback) -> CallbackId {
        let h = self.header();
        let mut st = h.lock();
        st.next_callback += 1;
        let seq = st.next_callback;
        if h.is_done() {
            drop(st);
            run_callback(cb, self);
        } else {
            st.callbacks.push(seq, cb);
        }
        CallbackId {
            pending: self.id(),
            seq,
        }
    }

    /// Remove a callback that has not run yet; returns whether it was removed. Only the
    /// callback `id` was returned for, by this pending's
    /// [`add_done_callback`](Self::add_done_callback), can be removed: an id from another
    /// pending removes nothing, and neither do the library's own hooks (a group's, the
    /// pool's) have an id.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// let id = p.add_done_callback(|_| panic!("never runs"));
    /// assert!(p.remove_done_callback(id));
    /// p.set_result(());
    /// ```
    pub fn remove_done_callback(&self, id: CallbackId) -> bool {
        if id.pending != self.id() {
            return false;
        }
        let mut st = self.header().lock();
        let removed = st.callbacks.remove_user(id.seq);
        drop(st);
        // The closure is dropped outside the lock: its `Drop` is user code.
        removed.is_some()
    }
}
