//! `Pending<T>`: a cancellable, awaitable, thread-safe result that is not there yet.
//!
//! # State machine
//!
//! A pending has one allocation, [`Shared<T>`]: a non-generic [`Header`] (flags, a mutex
//! with the waiters, callbacks and cancel message, a condvar for synchronous waiters, and
//! the metadata) followed by the value slot.
//!
//! ```text
//!   SCHEDULED ──try_start──▶ RUNNING ──finish──▶ DONE
//!       │                       │                 ▲
//!       └──────── cancel ───────┼─────────────────┘ (not started: done at once)
//!                               └─ cancel: CANCEL_REQUESTED set, runner woken;
//!                                  the runner finishes it on its own thread
//! ```
//!
//! Flag bits (in [`Header::flags`]; written while `Header::state` is locked, except
//! `RUNNING`, which `try_start` sets with a compare-and-swap that `cancel`'s `fetch_or`
//! races against; read without the lock):
//! - `RUNNING`: a runner claimed the call; from now on only the runner (or a stopping
//!   caller dropping the runner) finishes it. Never set after `DONE`.
//! - `CANCEL_REQUESTED`: `cancel` was called before `DONE`. May be set while running, so
//!   `cancelled()` can be true before `done()`.
//! - `DONE`: the outcome is set; final. The first finish wins; later finishes and cancels
//!   are no-ops.
//!
//! Invariants:
//! - The value slot is written before `DONE` is published (both under the state lock),
//!   and is only read after `DONE` is observed.
//! - `SETTLED`: the done callbacks have run. Waiters wait for `SETTLED`, not `DONE`, so
//!   whoever waits on a pending sees the effects of its callbacks (a group has already
//!   reacted to a member when an awaiting body resumes).
//!
//! - Waiters (wakers and sync waiters) and done callbacks are taken out under the lock in
//!   the same critical section that sets `DONE`; callbacks then run without the lock, and
//!   `SETTLED` is published and the waiters woken after them, so every waiter is woken
//!   exactly once and no user code runs under a crate lock.
//! - A pending that is not `RUNNING` and has no canceller is finished by `cancel` itself.

#[cfg(all(test, caller_loom))]
mod models;
mod wait;

pub use wait::{Wait, WaitDone};

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::sync::{lock, AtomicU8, Condvar, Mutex, MutexGuard, Ordering};

const RUNNING: u8 = 1;
const CANCEL_REQUESTED: u8 = 2;
const DONE: u8 = 4;
const SETTLED: u8 = 8;

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
enum Callback {
    User(Box<dyn FnOnce(&AnyPending) + Send + 'static>),
    Hook(Box<dyn FnOnce(&AnyPending) + Send + 'static>),
    Tracker(std::sync::Weak<dyn MemberDone>),
}

/// What a tracker does when one of its pendings is done.
pub(crate) trait MemberDone: Send + Sync + 'static {
    fn member_done(&self, pending: &AnyPending);
}
type Canceller = Arc<dyn Fn(&str) + Send + Sync + 'static>;

/// What a pending knows about itself: shown by `Debug` and attached to the call's tracing
/// span.
///
/// ```
/// let p = caller::Pending::<u8>::new();
/// assert_eq!(p.metadata().name(), "pending");
/// assert!(p.metadata().caller().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Metadata {
    id: u64,
    name: Cow<'static, str>,
    caller: Option<(crate::rt::CallerId, Arc<str>)>,
    created: Instant,
}

impl Metadata {
    pub(crate) fn new(
        name: Cow<'static, str>,
        caller: Option<(crate::rt::CallerId, Arc<str>)>,
    ) -> Self {
        static NEXT_ID: crate::sync::global::AtomicU64 = crate::sync::global::AtomicU64::new(1);
        Metadata {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            caller,
            created: Instant::now(),
        }
    }

    /// A process-unique id of the pending.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The function's name (its type name unless given in [`CallOptions`](crate::CallOptions)).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id and name of the caller the call runs on; `None` for a pending made by hand.
    pub fn caller(&self) -> Option<(crate::rt::CallerId, &str)> {
        self.caller.as_ref().map(|(id, n)| (*id, &**n))
    }

    /// When the pending was created.
    pub fn created(&self) -> Instant {
        self.created
    }
}

enum Outcome {
    Unset,
    Value,
    /// Boxed: most pendings end with a value, and the box keeps `State` small.
    Error(Box<Error>),
}

struct State {
    outcome: Outcome,
    wakers: Waiters,
    callbacks: Vec<(u32, Callback)>,
    runner: Option<Waker>,
    sync_waiters: u32,
    next_callback: u32,
    /// What most pendings never need, allocated on first use.
    rare: Option<Box<Rare>>,
}

/// The async waiters: the first one inline (most pendings have at most one), the rest
/// in a list. Key 0 is the inline slot, key `k` is `more[k - 1]`. A free slot is `None`.
#[derive(Default)]
struct Waiters {
    first: Option<Waker>,
    more: Vec<Option<Waker>>,
}

impl Waiters {
    fn wake_all(self) {
        for w in self
            .first
            .into_iter()
            .chain(self.more.into_iter().flatten())
        {
            w.wake();
        }
    }
}

#[derive(Default)]
struct Rare {
    cancel_msg: String,
    free_wakers: Vec<usize>,
    canceller: Option<Canceller>,
    user_meta: Vec<(String, String)>,
}

impl State {
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn cancel_msg(&self) -> &str {
        self.rare.as_deref().map_or("", |r| &r.cancel_msg)
    }

    fn take_canceller(&mut self) -> Option<Canceller> {
        self.rare.as_mut().and_then(|r| r.canceller.take())
    }

    fn canceller(&self) -> Option<Canceller> {
        self.rare.as_deref().and_then(|r| r.canceller.clone())
    }

    fn user_meta(&self) -> &[(String, String)] {
        self.rare.as_deref().map_or(&[], |r| &r.user_meta)
    }
}

/// The non-generic part of every pending.
pub(crate) struct Header {
    flags: AtomicU8,
    state: Mutex<State>,
    cond: Condvar,
    meta: Metadata,
}

/// Work that a pending's finishing must do after its lock is released.
struct Finished {
    wakers: Waiters,
    callbacks: Vec<(u32, Callback)>,
}

thread_local! {
    /// The pendings whose done callbacks this thread is running (their headers'
    /// addresses; nested when a callback finishes another pending). A wait on one of them
    /// from here would wait for itself.
    static SETTLING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether this thread is running `h`'s done callbacks.
pub(crate) fn settling_here(h: &Header) -> bool {
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

impl Finished {
    fn run(self, view: impl FnOnce() -> AnyPending) {
        if !self.callbacks.is_empty() {
            let view = view();
            let settling = Settling::enter(view.header());
            for (_, cb) in self.callbacks {
                run_callback(cb, &view);
            }
            drop(settling);
            let h = view.header();
            let mut st = h.lock();
            h.flags.fetch_or(SETTLED, Ordering::AcqRel);
            if st.sync_waiters > 0 {
                h.cond.notify_all();
            }
            // Waiters that registered while the callbacks ran.
            let late = std::mem::take(&mut st.wakers);
            drop(st);
            late.wake_all();
        }
        self.wakers.wake_all();
    }
}

fn run_callback(cb: Callback, view: &AnyPending) {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cb {
        Callback::User(f) | Callback::Hook(f) => f(view),
        Callback::Tracker(t) => {
            if let Some(t) = t.upgrade() {
                t.member_done(view);
            }
        }
    }));
    if let Err(payload) = res {
        tracing::error!(
            pending = view.header().meta.id,
            name = %view.header().meta.name,
            panic = %crate::error::panic_message(&*payload),
            "a done callback panicked; the remaining callbacks still run"
        );
    }
}

impl Header {
    fn new(meta: Metadata) -> Self {
        Header {
            flags: AtomicU8::new(0),
            state: Mutex::new(State {
                outcome: Outcome::Unset,
                wakers: Waiters::default(),
                callbacks: Vec::new(),
                runner: None,
                sync_waiters: 0,
                next_callback: 0,
                rare: None,
            }),
            cond: Condvar::new(),
            meta,
        }
    }

    fn flags(&self) -> u8 {
        self.flags.load(Ordering::Acquire)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.flags() & DONE != 0
    }

    /// Done, and its done callbacks have run: what waiters wait for.
    pub(crate) fn is_settled(&self) -> bool {
        self.flags() & SETTLED != 0
    }

    pub(crate) fn cancel_requested(&self) -> bool {
        self.flags() & CANCEL_REQUESTED != 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Set the outcome while `st` is held; returns the work to do after unlocking, or `None`
    /// if the pending was already done.
    fn finish_locked(&self, st: &mut State, outcome: Outcome) -> Option<Finished> {
        if self.is_done() {
            return None;
        }
        st.outcome = outcome;
        st.runner = None;
        drop(st.take_canceller());
        if st.callbacks.is_empty() {
            self.flags.fetch_or(DONE | SETTLED, Ordering::AcqRel);
            if st.sync_waiters > 0 {
                self.cond.notify_all();
            }
        } else {
            self.flags.fetch_or(DONE, Ordering::AcqRel);
        }
        if let Some(r) = st.rare.as_mut() {
            r.free_wakers.clear();
        }
        Some(Finished {
            wakers: std::mem::take(&mut st.wakers),
            callbacks: std::mem::take(&mut st.callbacks),
        })
    }

    fn cancelled_error(st: &State) -> Error {
        Error::Cancelled {
            message: st.cancel_msg().to_owned(),
        }
    }

    /// Claim the call for running. `false` if it must not start (done, or cancelled before
    /// it started — in which case it is finished here as cancelled).
    pub(crate) fn try_start(&self, view: impl FnOnce() -> AnyPending) -> bool {
        // Lock-free: this compare-and-swap and `cancel`'s `fetch_or` are ordered on the
        // flags, so either the cancel sees `RUNNING` (and wakes the runner) or this sees
        // `CANCEL_REQUESTED` (and never starts).
        let mut cur = self.flags.load(Ordering::Acquire);
        loop {
            if cur & DONE != 0 {
                return false;
            }
            if cur & CANCEL_REQUESTED != 0 {
                self.finish_cancelled("", view);
                return false;
            }
            match self.flags.compare_exchange_weak(
                cur,
                cur | RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Remember the waker of the task running this call, so that `cancel` can wake it.
    /// Returns `false` (storing nothing) if a cancel was already asked: checking the flag
    /// under the same lock that `cancel` takes means no cancel is ever missed.
    pub(crate) fn set_runner(&self, waker: &Waker) -> bool {
        let mut st = self.lock();
        if self.flags() & CANCEL_REQUESTED != 0 {
            return false;
        }
        match &mut st.runner {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        true
    }

    fn finish_error(&self, err: Error, view: impl FnOnce() -> AnyPending) -> bool {
        let mut st = self.lock();
        let fin = self.finish_locked(&mut st, Outcome::Error(Box::new(err)));
        drop(st);
        match fin {
            Some(fin) => {
                fin.run(view);
                true
            }
            None => false,
        }
    }

    /// Finish as cancelled with the accumulated message, plus `extra` if no message exists.
    pub(crate) fn finish_cancelled(&self, extra: &str, view: impl FnOnce() -> AnyPending) {
        self.finish_cancelled_noting(extra, None, view)
    }

    /// [`finish_cancelled`](Self::finish_cancelled), then `note` (what went wrong while the
    /// call was being given up, such as a panicking `Drop`) on a line of its own.
    pub(crate) fn finish_cancelled_noting(
        &self,
        extra: &str,
        note: Option<&str>,
        view: impl FnOnce() -> AnyPending,
    ) {
        let mut st = self.lock();
        if st.cancel_msg().is_empty() && !extra.is_empty() {
            st.rare().cancel_msg.push_str(extra);
        }
        if let Some(note) = note.filter(|_| !self.is_done()) {
            let msg = &mut st.rare().cancel_msg;
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(note);
        }
        let err = Self::cancelled_error(&st);
        let fin = self.finish_locked(&mut st, Outcome::Error(Box::new(err)));
        drop(st);
        if let Some(fin) = fin {
            fin.run(view);
        }
    }

    pub(crate) fn meta(&self) -> &Metadata {
        &self.meta
    }
}

/// The erased face of a `Shared<T>`.
pub(crate) trait Erased: Send + Sync + 'static {
    fn header(&self) -> &Header;
}

/// One allocation per pending: the header and the value slot.
pub(crate) struct Shared<T> {
    header: Header,
    value: Mutex<Option<T>>,
}

impl<T: Send + 'static> Erased for Shared<T> {
    fn header(&self) -> &Header {
        &self.header
    }
}

impl<T: Send + 'static> Shared<T> {
    pub(crate) fn new(meta: Metadata) -> Arc<Self> {
        Arc::new(Shared {
            header: Header::new(meta),
            value: Mutex::new(None),
        })
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn view(self: &Arc<Self>) -> AnyPending {
        AnyPending {
            inner: self.clone(),
        }
    }

    /// Finish with `res`. First completion wins; returns whether this one did.
    pub(crate) fn finish(self: &Arc<Self>, res: Result<T, Error>) -> bool {
        match res {
            Ok(v) => {
                let mut st = self.header.lock();
                if self.header.is_done() {
                    return false;
                }
                if self.header.cancel_requested() {
                    // A cancel asked before completion wins: `cancelled()` and the outcome
                    // agree. The value is dropped after the lock is released.
                    let err = Header::cancelled_error(&st);
                    let fin = self
                        .header
                        .finish_locked(&mut st, Outcome::Error(Box::new(err)));
                    drop(st);
                    drop(v);
                    if let Some(fin) = fin {
                        fin.run(|| self.view());
                    }
                    return true;
                }
                *lock(&self.value) = Some(v);
                let fin = self.header.finish_locked(&mut st, Outcome::Value);
                drop(st);
                if let Some(fin) = fin {
                    fin.run(|| self.view());
                }
                true
            }
            Err(e) => self.header.finish_error(e, || self.view()),
        }
    }

    /// Finish a call whose runner saw the cancel request (or was dropped).
    pub(crate) fn finish_cancelled(self: &Arc<Self>, extra: &str) {
        self.header.finish_cancelled(extra, || self.view())
    }

    /// [`finish_cancelled`](Self::finish_cancelled) with a note on what went wrong while
    /// the call was given up.
    pub(crate) fn finish_cancelled_noting(self: &Arc<Self>, extra: &str, note: Option<&str>) {
        self.header
            .finish_cancelled_noting(extra, note, || self.view())
    }

    pub(crate) fn try_start(self: &Arc<Self>) -> bool {
        self.header.try_start(|| self.view())
    }

    /// Take the outcome; `None` if not done. A failure is moved out to the owner (so it
    /// can take the function's error back by value); views keep its text.
    fn take(&self) -> Option<Result<T, Error>> {
        if !self.header.is_done() {
            return None;
        }
        let mut st = self.header.lock();
        Some(match &mut st.outcome {
            Outcome::Value => lock(&self.value).take().ok_or(Error::Taken),
            Outcome::Error(e) => match &**e {
                Error::Failed(f) => {
                    let text = Error::Failed(f.text_only());
                    Err(std::mem::replace(&mut **e, text))
                }
                other => Err(other.clone()),
            },
            Outcome::Unset => unreachable!("DONE is only set together with an outcome"),
        })
    }

    fn peek(&self) -> Option<Result<T, Error>>
    where
        T: Clone,
    {
        if !self.header.is_done() {
            return None;
        }
        let st = self.header.lock();
        Some(match &st.outcome {
            Outcome::Value => lock(&self.value).clone().ok_or(Error::Taken),
            Outcome::Error(e) => Err((**e).clone()),
            Outcome::Unset => unreachable!("DONE is only set together with an outcome"),
        })
    }
}

impl<T> Drop for Shared<T> {
    /// The value nobody took (a detached call's result) is dropped by whoever lets go of
    /// the pending last, often a caller's thread: a panicking `Drop` is caught and logged,
    /// never unwound into the caller (regression: it killed the caller's thread).
    fn drop(&mut self) {
        let value = lock(&self.value).take();
        if let Some(message) = value.and_then(crate::unwind::drop_caught) {
            tracing::error!(
                pending = self.header.meta.id,
                name = %self.header.meta.name,
                panic = %message,
                "the value of a pending panicked in Drop; the panic was caught"
            );
        }
    }
}

/// A cheap, cloneable, type-erased view of a pending.
///
/// It can wait, cancel and inspect, but not take the value; trackers, groups, `wait` and
/// `as_completed` hold these. Two views are equal when they view the same pending.
/// Waiting on a view never cancels the pending.
///
/// ```
/// use std::time::Duration;
/// let p = caller::Pending::<u32>::new();
/// let view = p.any();
/// assert!(!view.done());
/// view.cancel("not needed");
/// assert!(view.done() && view.cancelled());
/// assert!(view.wait_done_sync(Some(Duration::ZERO)).is_ok());
/// ```
#[derive(Clone)]
pub struct AnyPending {
    inner: Arc<dyn Erased>,
}

/// What a done pending ended with, as seen through a view.
#[derive(Clone, Debug)]
pub enum PendingState {
    /// Not done yet (`cancel_requested` says whether a cancel was asked).
    Running {
        /// `cancel` was called and the work has not stopped yet.
        cancel_requested: bool,
    },
    /// Done with a value (which may already have been taken by its owner).
    Value,
    /// Done without a value: cancelled, panicked or failed.
    Error(Error),
}

impl AnyPending {
    pub(crate) fn header(&self) -> &Header {
        self.inner.header()
    }

    /// The process-unique id of the pending.
    ///
    /// ```
    /// let (a, b) = (caller::Pending::<()>::new(), caller::Pending::<()>::new());
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.header().meta.id
    }

    /// The pending's metadata.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert_eq!(p.metadata().id(), p.id());
    /// ```
    pub fn metadata(&self) -> &Metadata {
        &self.header().meta
    }

    /// `true` once the pending holds its outcome. Never goes back to `false`.
    ///
    /// `done()` turns true just before the done callbacks run; the waits
    /// ([`wait_done`](Self::wait_done), `.await`, `wait_sync`) return only after them.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// assert!(!p.done());
    /// p.set_result(1);
    /// assert!(p.done());
    /// ```
    pub fn done(&self) -> bool {
        self.header().is_done()
    }

    /// `true` if a cancel was asked (it may be true before [`done`](Self::done): the work
    /// has not stopped yet), or the pending ended cancelled.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// p.cancel("no");
    /// assert!(p.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        let flags = self.header().flags();
        if flags & DONE == 0 {
            return flags & CANCEL_REQUESTED != 0;
        }
        // Done: the outcome decides, so the two always agree (a failure that came after a
        // cancel request is a failure).
        matches!(&self.header().lock().outcome, Outcome::Error(e) if e.is_cancelled())
    }

    /// Ask the pending to cancel, from any thread, any number of times.
    ///
    /// Messages accumulate, newline-joined (an empty message adds nothing). Returns whether
    /// the pending is (now) cancelled: `false` if it already finished otherwise.
    ///
    /// - Not started yet: it never starts; done at once.
    /// - An async function running: its future is dropped at its next suspension point,
    ///   on its own thread, then the pending is done.
    /// - A sync function running: it cannot be interrupted. It is marked cancelled (it can
    ///   check [`Caller::current_pending`](crate::Caller::current_pending)) and is done,
    ///   with its value discarded, when it returns.
    /// - Made by hand with a canceller ([`set_canceller`](Self::set_canceller)): the
    ///   canceller is called and the pending is done when its producer finishes it.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.cancel("first"));
    /// assert!(p.cancel("second"));
    /// assert_eq!(p.error().unwrap().cancel_message(), Some("first"));
    /// ```
    pub fn cancel(&self, msg: impl AsRef<str>) -> bool {
        let msg = msg.as_ref();
        let h = self.header();
        let mut st = h.lock();
        if h.flags() & DONE != 0 {
            return matches!(&st.outcome, Outcome::Error(e) if e.is_cancelled());
        }
        if !msg.is_empty() {
            let rare = st.rare();
            if !rare.cancel_msg.is_empty() {
                rare.cancel_msg.push('\n');
            }
            rare.cancel_msg.push_str(msg);
        }
        // `DONE` cannot change while the lock is held, but `RUNNING` can (`try_start` is
        // lock-free): what this `fetch_or` returns decides who finishes the pending.
        let flags = h.flags.fetch_or(CANCEL_REQUESTED, Ordering::AcqRel);
        let first = flags & CANCEL_REQUESTED == 0;
        if first {
            tracing::debug!(pending = h.meta.id, name = %h.meta.name, message = msg, "cancel requested");
        }
        // Every cancel calls the canceller, with the accumulated message.
        let canceller = st.canceller();
        if flags & RUNNING != 0 {
            let runner = st.runner.take();
            drop(st);
            if let Some(w) = runner {
                w.wake();
            }
        } else if canceller.is_none() {
            let err = Header::cancelled_error(&st);
            let fin = h.finish_locked(&mut st, Outcome::Error(Box::new(err)));
            drop(st);
            if let Some(fin) = fin {
                fin.run(|| self.clone());
            }
        } else {
            drop(st);
        }
        if let Some(c) = canceller {
            let all = h.lock().cancel_msg().to_owned();
            c(&all);
        }
        true
    }

    /// The error the pending ended with, if it is done without a value.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.error().is_none());
    /// p.cancel("x");
    /// assert!(p.error().unwrap().is_cancelled());
    /// ```
    pub fn error(&self) -> Option<Error> {
        match self.state() {
            PendingState::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The current state.
    ///
    /// ```
    /// use caller::PendingState;
    /// let p = caller::Pending::new();
    /// p.set_result(5);
    /// assert!(matches!(p.state(), PendingState::Value));
    /// ```
    pub fn state(&self) -> PendingState {
        let h = self.header();
        let st = h.lock();
        match &st.outcome {
            Outcome::Unset => PendingState::Running {
                cancel_requested: h.flags() & CANCEL_REQUESTED != 0,
            },
            Outcome::Value => PendingState::Value,
            Outcome::Error(e) => PendingState::Error((**e).clone()),
        }
    }

    /// Finish the pending with an error (the low-level counterpart of async-kernel's
    /// `set_exception`). First completion wins; returns whether this one did.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.set_error(caller::Error::failed("bad input")));
    /// assert!(!p.set_error(caller::Error::failed("too late")));
    /// ```
    pub fn set_error(&self, err: Error) -> bool {
        self.header().finish_error(err, || self.clone())
    }

    /// Install a function called, on the cancelling thread, by every
    /// [`cancel`](Self::cancel) while the pending is not done, with the accumulated
    /// message (so it may be called more than once); called at once if a cancel was
    /// already asked. With a canceller, `cancel` leaves finishing the pending to its
    /// producer; a value the producer sets after a cancel was asked is discarded and the
    /// outcome is cancelled.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let p = caller::Pending::<u8>::new();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// p.set_canceller(move |msg| s.lock().unwrap().push(msg.to_owned()));
    /// p.cancel("stop");
    /// p.cancel("now");
    /// assert_eq!(*seen.lock().unwrap(), ["stop", "stop\nnow"]);
    /// assert!(p.cancelled() && !p.done());
    /// p.set_result(1); // the producer finishes: the cancel wins
    /// assert!(p.done() && p.cancelled());
    /// ```
    pub fn set_canceller(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        let h = self.header();
        let mut st = h.lock();
        if h.is_done() {
            return;
        }
        let f: Canceller = Arc::new(f);
        st.rare().canceller = Some(f.clone());
        if h.flags() & CANCEL_REQUESTED != 0 {
            let msg = st.cancel_msg().to_owned();
            drop(st);
            f(&msg);
        }
    }

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

    /// Tell `tracker` when this pending is done (a done callback without an allocation).
    pub(crate) fn add_tracker(&self, tracker: std::sync::Weak<dyn MemberDone>) {
        self.add_callback(Callback::Tracker(tracker));
    }

    /// A done callback of the library's own, which no id can remove.
    pub(crate) fn add_hook(&self, f: impl FnOnce(&AnyPending) + Send + 'static) {
        self.add_callback(Callback::Hook(Box::new(f)));
    }

    fn add_callback(&self, cb: Callback) -> CallbackId {
        let h = self.header();
        let mut st = h.lock();
        st.next_callback += 1;
        let id = st.next_callback;
        if h.is_done() {
            drop(st);
            run_callback(cb, self);
        } else {
            st.callbacks.push((id, cb));
        }
        CallbackId {
            pending: self.id(),
            seq: id,
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
        let pos = st
            .callbacks
            .iter()
            .position(|(i, cb)| *i == id.seq && matches!(cb, Callback::User(_)));
        let removed = pos.map(|i| st.callbacks.remove(i));
        drop(st);
        // The closure is dropped outside the lock: its `Drop` is user code.
        removed.is_some()
    }

    /// Every user key/value, in the order first set.
    pub(crate) fn user_meta(&self) -> Vec<(String, String)> {
        self.header().lock().user_meta().to_vec()
    }

    /// Attach a user key/value to the pending (shown by `Debug`). Replaces an earlier value
    /// of the same key.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// p.set_meta("request", "42");
    /// assert_eq!(p.meta("request").as_deref(), Some("42"));
    /// ```
    pub fn set_meta(&self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        let mut st = self.header().lock();
        let meta = &mut st.rare().user_meta;
        match meta.iter_mut().find(|(k, _)| *k == key) {
            Some(kv) => kv.1 = value,
            None => meta.push((key, value)),
        }
    }

    /// A user key/value set with [`set_meta`](Self::set_meta).
    pub fn meta(&self, key: &str) -> Option<String> {
        let st = self.header().lock();
        st.user_meta()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Wait until the pending is done, without taking its value and without cancelling it.
    /// With a timeout, the future yields `Err(Error::TimedOut)` when it expires.
    /// Works on any executor. Awaited inside the very call this pending is for, it yields
    /// `Err(Error::WouldDeadlock)` at once rather than wait for itself.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// let view = p.any();
    /// p.set_result(1);
    /// futures::executor::block_on(view.wait_done(None)).unwrap();
    /// ```
    pub fn wait_done(&self, timeout: Option<Duration>) -> WaitDone {
        WaitDone::new(self.clone(), timeout)
    }

    /// Block this thread until the pending is done (or `timeout` passes), without taking
    /// its value and without cancelling it.
    ///
    /// Returns `Err(Error::WouldDeadlock)` at once, rather than hang, when called on the
    /// thread of the caller that must complete the pending, or from one of the pending's
    /// own done callbacks.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = caller::Pending::<()>::new();
    /// let err = p.wait_done_sync(Some(Duration::from_millis(1))).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn wait_done_sync(&self, timeout: Option<Duration>) -> Result<(), Error> {
        wait::wait_done_sync(self.header(), timeout)
    }

    /// Register `waker` to be woken when done. Returns `true` if already done.
    pub(crate) fn register(&self, key: &mut Option<usize>, waker: &Waker) -> bool {
        let h = self.header();
        if h.is_settled() {
            return true;
        }
        let mut st = h.lock();
        if h.is_settled() {
            return true;
        }
        if h.is_done() {
            // Done, callbacks still running: the waiter list was handed to the finisher,
            // so an old key is stale. Register in the late list woken at settling.
            *key = None;
        }
        let slot = match *key {
            Some(0) => &mut st.wakers.first,
            Some(k) => &mut st.wakers.more[k - 1],
            None if st.wakers.first.is_none() => {
                *key = Some(0);
                &mut st.wakers.first
            }
            None => {
                let free = st.rare.as_mut().and_then(|r| r.free_wakers.pop());
                let waiters = &mut st.wakers;
                let i = free.unwrap_or_else(|| {
                    waiters.more.push(None);
                    waiters.more.len() - 1
                });
                *key = Some(i + 1);
                &mut st.wakers.more[i]
            }
        };
        match slot {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        false
    }

    pub(crate) fn unregister(&self, key: &mut Option<usize>) {
        if let Some(k) = key.take() {
            let h = self.header();
            if h.is_done() {
                return;
            }
            let mut st = h.lock();
            if h.is_done() {
                return;
            }
            match k {
                0 => st.wakers.first = None,
                k if k <= st.wakers.more.len() => {
                    st.wakers.more[k - 1] = None;
                    st.rare().free_wakers.push(k - 1);
                }
                _ => {}
            }
        }
    }

    fn fmt_state(&self, f: &mut fmt::DebugStruct<'_, '_>) {
        let h = self.header();
        let st = h.lock();
        let state: Cow<'_, str> = match &st.outcome {
            Outcome::Unset if h.flags() & CANCEL_REQUESTED != 0 => "cancel requested".into(),
            Outcome::Unset if h.flags() & RUNNING != 0 => "running".into(),
            Outcome::Unset => "scheduled".into(),
            Outcome::Value => "done: value".into(),
            Outcome::Error(e) => format!("done: {e}").into(),
        };
        f.field("id", &h.meta.id)
            .field("name", &h.meta.name)
            .field("caller", &h.meta.caller.as_ref().map(|c| &*c.1))
            .field("state", &state)
            .field("age", &h.meta.created.elapsed());
        if !st.user_meta().is_empty() {
            f.field("meta", &st.user_meta());
        }
    }
}

impl PartialEq for AnyPending {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}
impl Eq for AnyPending {}
impl std::hash::Hash for AnyPending {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl fmt::Debug for AnyPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AnyPending");
        self.fmt_state(&mut d);
        d.finish()
    }
}

/// A result that is not there yet: the handle returned by every scheduling method.
///
/// `Pending<T>` is the *owner*: it can take the value (once). It dereferences to
/// [`AnyPending`], its cloneable type-erased view, for everything else (`cancel`, `done`,
/// callbacks, metadata).
///
/// # Waiting
/// - `.await` it (or `&mut pending`) from any executor: the output is `Result<T, Error>`.
/// - [`wait`](Self::wait) with a timeout, [`wait_sync`](Self::wait_sync) from a plain
///   thread.
///
/// # Cancellation
/// - [`cancel`](AnyPending::cancel) from anywhere; see there for what it does to the work.
/// - A wait that ends without the outcome — a timeout, or a `.await` abandoned by
///   `select!`, a timeout combinator or scope exit (the handle is dropped after it was
///   polled) — **cancels the pending**, unless the handle is
///   [protected](Self::protect).
/// - Dropping a handle that was never waited on only *detaches*: the work keeps running
///   (fire and forget).
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let worker = caller::Caller::builder().name("doc-pending").spawn()?;
/// let mut p = worker.call_soon(|| 6 * 7);
/// assert_eq!(p.wait_sync(None)?, 42);
/// # worker.stop(true); Ok(()) }
/// ```
#[must_use = "a dropped Pending detaches: the call keeps running. Await it, wait on it or cancel it"]
pub struct Pending<T> {
    shared: Arc<Shared<T>>,
    any: AnyPending,
    waiter: Option<usize>,
    polled: bool,
    protected: bool,
    /// The outcome was given to a poll ([`FusedFuture`](futures::future::FusedFuture)).
    terminated: bool,
}

impl<T: Send + 'static> Pending<T> {
    /// A pending made by hand, finished with [`set_result`](Self::set_result) or
    /// [`set_error`](AnyPending::set_error) (see [`resolver`](Self::resolver) to finish it
    /// from elsewhere).
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// p.set_result("hi");
    /// assert_eq!(futures::executor::block_on(p).unwrap(), "hi");
    /// ```
    pub fn new() -> Self {
        Self::from_shared(Shared::new(Metadata::new("pending".into(), None)))
    }

    pub(crate) fn from_shared(shared: Arc<Shared<T>>) -> Self {
        let any = shared.view();
        Pending {
            shared,
            any,
            waiter: None,
            polled: false,
            protected: false,
            terminated: false,
        }
    }

    /// The type-erased view of this pending (cheap to clone).
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert_eq!(p.any().id(), p.id());
    /// ```
    pub fn any(&self) -> AnyPending {
        self.any.clone()
    }

    /// Finish with `value`. First completion wins; returns whether this one did.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// assert!(p.set_result(1));
    /// assert!(!p.set_result(2));
    /// assert_eq!(p.wait_sync(None).unwrap(), 1);
    /// ```
    pub fn set_result(&self, value: T) -> bool {
        self.shared.finish(Ok(value))
    }

    /// Finish as cancelled with the accumulated message (or `reason` if there is none).
    pub(crate) fn shared_finish_cancelled(&self, reason: &str) {
        self.shared.finish_cancelled(reason);
    }

    /// A cloneable handle that can finish this pending from any thread.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// let r = p.resolver();
    /// std::thread::spawn(move || r.set_result(7));
    /// assert_eq!(p.wait_sync(None).unwrap(), 7);
    /// ```
    pub fn resolver(&self) -> Resolver<T> {
        Resolver {
            shared: self.shared.clone(),
        }
    }

    /// Protect this handle: a timed-out or abandoned wait no longer cancels the pending.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut p = caller::Pending::<()>::new().protect();
    /// assert!(p.wait_sync(Some(Duration::from_millis(1))).unwrap_err().is_timeout());
    /// assert!(!p.cancelled());
    /// ```
    pub fn protect(mut self) -> Self {
        self.protected = true;
        self
    }

    /// Set or clear protection (see [`protect`](Self::protect)).
    pub fn set_protected(&mut self, protected: bool) {
        self.protected = protected;
    }

    /// Whether this handle is protected.
    pub fn is_protected(&self) -> bool {
        self.protected
    }

    /// Take the outcome if the pending is done, without waiting.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// assert!(p.try_take().is_none());
    /// p.set_result(3);
    /// assert_eq!(p.try_take().unwrap().unwrap(), 3);
    /// assert!(matches!(p.try_take(), Some(Err(caller::Error::Taken))));
    /// ```
    pub fn try_take(&mut self) -> Option<Result<T, Error>> {
        self.shared.take()
    }

    /// A copy of the outcome if done, leaving the value in place (for `T: Clone`).
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// p.set_result(String::from("shared"));
    /// assert_eq!(p.peek().unwrap().unwrap(), "shared");
    /// assert_eq!(p.peek().unwrap().unwrap(), "shared");
    /// ```
    pub fn peek(&self) -> Option<Result<T, Error>>
    where
        T: Clone,
    {
        self.shared.peek()
    }

    /// Wait for the outcome, with an optional timeout, from any executor.
    ///
    /// On timeout the pending is cancelled unless this handle is protected, and the future
    /// yields `Err(Error::TimedOut)`. Dropping the future before it finishes cancels the
    /// pending too, unless protected.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut p = caller::Pending::<()>::new();
    /// let res = futures::executor::block_on(p.wait(Some(Duration::from_millis(1))));
    /// assert!(res.unwrap_err().is_timeout());
    /// assert!(p.cancelled());
    /// ```
    pub fn wait(&mut self, timeout: Option<Duration>) -> Wait<'_, T> {
        Wait::new(self, timeout)
    }

    /// Block this thread until the outcome is there (or `timeout` passes).
    ///
    /// On timeout the pending is cancelled unless protected, and `Err(Error::TimedOut)` is
    /// returned. Called on the thread of the caller that must run the pending (so that
    /// blocking would deadlock) it returns `Err(Error::WouldDeadlock)` at once. A short,
    /// bounded spin precedes parking, so that quick cross-thread round trips avoid the cost
    /// of waking a sleeping thread.
    ///
    /// ```
    /// let mut p = caller::Pending::new();
    /// p.set_result(1);
    /// assert_eq!(p.wait_sync(None).unwrap(), 1);
    /// ```
    pub fn wait_sync(&mut self, timeout: Option<Duration>) -> Result<T, Error> {
        match wait::wait_done_sync(self.shared.header(), timeout) {
            Ok(()) => self.shared.take().expect("done"),
            Err(e) => {
                if e.is_timeout() && !self.protected {
                    // Only a wait with a timeout times out.
                    let after = timeout.unwrap_or_default();
                    self.any
                        .cancel(format!("a synchronous wait timed out after {after:?}"));
                }
                Err(e)
            }
        }
    }
}

impl<T: Send + 'static> Default for Pending<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> std::ops::Deref for Pending<T> {
    type Target = AnyPending;

    fn deref(&self) -> &AnyPending {
        &self.any
    }
}

impl<T: Send + 'static> Future for Pending<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.waiter.is_none() {
            // Refused before it counts as a wait: dropping the handle then only detaches.
            if let Some(err) = wait::awaits_itself(&this.any) {
                return Poll::Ready(Err(err));
            }
        }
        this.polled = true;
        let mut waiter = this.waiter.take();
        let done = this.any.register(&mut waiter, cx.waker());
        this.waiter = waiter;
        if done {
            this.waiter = None;
            this.terminated = true;
            Poll::Ready(this.shared.take().expect("done"))
        } else {
            Poll::Pending
        }
    }
}

/// Done once it has given its outcome to a poll: `futures::select!` then skips it.
impl<T: Send + 'static> futures::future::FusedFuture for Pending<T> {
    fn is_terminated(&self) -> bool {
        self.terminated
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        self.any.unregister(&mut self.waiter);
        if self.polled && !self.protected && !self.any.done() {
            self.any
                .cancel("the wait on this pending was dropped before it finished");
        }
    }
}

impl<T> fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Pending");
        self.any.fmt_state(&mut d);
        d.field("protected", &self.protected);
        d.finish()
    }
}

/// A cloneable handle that finishes a [`Pending`] made by hand; see
/// [`Pending::resolver`].
pub struct Resolver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Resolver<T> {
    fn clone(&self) -> Self {
        Resolver {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Send + 'static> Resolver<T> {
    /// Finish with `value`; returns whether this completion won.
    ///
    /// ```
    /// let p = caller::Pending::new();
    /// assert!(p.resolver().set_result(1));
    /// ```
    pub fn set_result(&self, value: T) -> bool {
        self.shared.finish(Ok(value))
    }

    /// Finish with `err`; returns whether this completion won.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert!(p.resolver().set_error(caller::Error::failed("no")));
    /// ```
    pub fn set_error(&self, err: Error) -> bool {
        self.shared.finish(Err(err))
    }

    /// The view of the pending this resolver finishes (to check `cancelled()`, or set a
    /// canceller).
    pub fn any(&self) -> AnyPending {
        self.shared.view()
    }
}

impl<T> fmt::Debug for Resolver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("pending", &self.shared.header.meta.id)
            .finish()
    }
}

#[cfg(test)]
mod size_tests {
    /// The header stays small: it is paid for every in-flight call.
    #[test]
    fn header_stays_small() {
        let header = std::mem::size_of::<super::Header>();
        assert!(header <= 200, "Header grew to {header} bytes");
    }
}
