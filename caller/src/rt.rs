//! The ground floor of a thread's loop: what every other module asks about "the loop that
//! runs here", without knowing which kind of loop it is.
//!
//! It owns:
//! - [`CallerId`]s: one per thread (assigned on first use), so a caller's id is its
//!   thread's;
//! - the thread's loop facts: which caller's loop runs here ([`set_loop`]), which caller
//!   owns the thread between the polls of its loop ([`set_owner`]), which pending's code
//!   runs here ([`enter_pending`]), and how much spawned work has not started yet
//!   ([`unstarted`]);
//! - the [`Spawner`] the running loop installs when it starts ([`install`]): runtime code
//!   spawns, sleeps and yields through [`spawn_local`], [`sleep`] and [`yield_now`] and
//!   never asks which backend runs;
//! - the shared background tokio runtime that serves tokio futures run as guests of a
//!   loop that is not tokio's ([`guest_runtime`]).
//!
//! Everything here is thread-local or process-wide and stands on `sync` and `timer` only.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::sync::global::AtomicU64;
use crate::sync::Ordering;

/// The id of a thread's caller. Each thread has one id (assigned on first use), so a
/// caller's id is also the id of its thread, as in async-kernel.
///
/// ```
/// let here = caller::CallerId::current();
/// assert_eq!(here, caller::CallerId::current());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallerId(u64);

impl CallerId {
    /// The id of the current thread (and of its caller, if it has one).
    pub fn current() -> CallerId {
        THREAD_ID.with(|t| match t.get() {
            Some(id) => id,
            None => {
                let id = CallerId::fresh();
                t.set(Some(id));
                id
            }
        })
    }

    /// The number inside.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// A new id, for a caller on a thread that does not exist yet.
    pub(crate) fn fresh() -> CallerId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        CallerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id with this number (as stored by [`as_u64`](Self::as_u64)).
    pub(crate) fn from_u64(n: u64) -> CallerId {
        CallerId(n)
    }

    /// Give the current (new) thread the id its caller was created with.
    pub(crate) fn adopt(self) {
        THREAD_ID.with(|t| t.set(Some(self)));
    }
}

impl fmt::Debug for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallerId({})", self.0)
    }
}

impl fmt::Display for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where the tasks of the loop running on this thread go. The loop installs it when it
/// starts ([`install`]); nothing probes for the backend later.
#[derive(Clone)]
pub(crate) enum Spawner {
    /// A tokio `LocalSet` is entered on this thread: `tokio::task::spawn_local`, tokio's
    /// timer.
    Tokio,
    /// A loop of the crate's own (the host loop): its executor, and the crate's timer
    /// thread for sleeps.
    Local(Rc<dyn LocalExecutor>),
}

/// A single-threaded executor the crate runs itself (the host loop's). A new backend
/// with an executor of its own implements this and installs `Spawner::Local`.
pub(crate) trait LocalExecutor {
    /// Run `task` on this thread's loop; it is dropped on this thread.
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()>>>);
}

thread_local! {
    static THREAD_ID: Cell<Option<CallerId>> = const { Cell::new(None) };
    /// The caller whose loop is running (being polled) on this thread.
    static LOOP: Cell<Option<CallerId>> = const { Cell::new(None) };
    /// The caller entered with `run_here` on this thread, for its whole life (its loop
    /// runs only while its future is polled, but a blocking wait here would still starve it).
    static OWNER: Cell<Option<CallerId>> = const { Cell::new(None) };
    /// The id of the pending whose code runs on this thread, or 0.
    static PENDING: Cell<u64> = const { Cell::new(0) };
    /// Work handed to this thread's loop (async calls, queue items) whose first poll has
    /// not happened yet; inline work waits for it so that calls start in the order they
    /// were scheduled.
    static UNSTARTED: Cell<usize> = const { Cell::new(0) };
    static SPAWNER: RefCell<Option<Spawner>> = const { RefCell::new(None) };
}

/// Install `spawner` as this thread's (or none); returns the one it replaces.
pub(crate) fn install(spawner: Option<Spawner>) -> Option<Spawner> {
    SPAWNER.with(|s| s.replace(spawner))
}

/// Spawn a task on the loop running on this thread, whatever its backend. With no loop
/// running here (a bug), the task is dropped at once, which finishes what it carries.
pub(crate) fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
    let local = SPAWNER.with(|s| match &*s.borrow() {
        Some(Spawner::Tokio) => None,
        Some(Spawner::Local(exec)) => Some(Some(exec.clone())),
        None => Some(None),
    });
    match local {
        None => drop(tokio::task::spawn_local(fut)),
        Some(Some(exec)) => exec.spawn(Box::pin(fut)),
        Some(None) => {
            tracing::error!("a task was spawned on a thread whose loop is not running; dropped");
            drop(fut);
        }
    }
}

/// Whether the loop running here sleeps on tokio's timer.
fn on_tokio() -> bool {
    SPAWNER.with(|s| matches!(&*s.borrow(), Some(Spawner::Tokio)))
}

/// Sleep on the loop running here: tokio's timer on a tokio loop, the crate's timer thread
/// on any other (which has no tokio driver).
pub(crate) async fn sleep(d: Duration) {
    if on_tokio() {
        tokio::time::sleep(d).await;
    } else {
        crate::timer::sleep(d).await;
    }
}

/// Yield once to the loop: other ready tasks run before this one continues.
pub(crate) fn yield_now() -> YieldNow {
    YieldNow(false)
}

/// The future of [`yield_now`].
pub(crate) struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Mark this thread as running the loop of caller `id` (or none); returns the previous.
pub(crate) fn set_loop(id: Option<CallerId>) -> Option<CallerId> {
    LOOP.with(|l| l.replace(id))
}

/// Mark this thread as owned by caller `id` (or none) between the polls of its loop.
pub(crate) fn set_owner(id: Option<CallerId>) -> Option<CallerId> {
    OWNER.with(|o| o.replace(id))
}

/// Whether this thread runs (or owns) the loop of caller `id`: a blocking wait here for
/// work of that caller would wait for itself.
pub(crate) fn loop_running_here(id: CallerId) -> bool {
    LOOP.with(Cell::get) == Some(id) || OWNER.with(Cell::get) == Some(id)
}

/// The id of the caller whose loop runs on this thread.
pub(crate) fn loop_id() -> Option<CallerId> {
    LOOP.with(Cell::get)
}

/// The code of pending `id` runs here (0: none); returns the previous id.
pub(crate) fn enter_pending(id: u64) -> u64 {
    PENDING.with(|p| p.replace(id))
}

/// The id of the pending whose code runs on this thread, if any.
pub(crate) fn pending_here() -> Option<u64> {
    Some(PENDING.with(Cell::get)).filter(|&id| id != 0)
}

/// Count one more piece of spawned work that has not started.
pub(crate) fn unstarted_add() {
    UNSTARTED.with(|u| u.set(u.get() + 1));
}

/// One piece of spawned work started.
pub(crate) fn unstarted_done() {
    UNSTARTED.with(|u| u.set(u.get().saturating_sub(1)));
}

/// How much spawned work has not started yet.
pub(crate) fn unstarted() -> usize {
    UNSTARTED.with(Cell::get)
}

/// A new loop starts on this thread: nothing is pending from an earlier one.
pub(crate) fn unstarted_reset() {
    UNSTARTED.with(|u| u.set(0));
}

/// The shared background runtime whose driver serves guest tokio futures: a
/// current-thread runtime whose one thread sits in `block_on`, driving timers and I/O for
/// every guest that enters its handle.
pub(crate) fn guest_runtime() -> &'static tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("caller: cannot start the background tokio runtime");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("caller-tokio-guest".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("caller: cannot start the background tokio thread");
        handle
    })
}
