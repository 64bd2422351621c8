//! `Caller`: a single-threaded async loop owned by one thread, reachable from all.
//!
//! # Lifecycle
//!
//! ```text
//!   Starting ──loop runs──▶ Running ──stop()──▶ Stopping ──children stopped,
//!                                                           tasks dropped──▶ Stopped
//! ```
//! - `stop()` closes the inbox at once: queued calls are cancelled on the stopping thread
//!   (they never started), later calls are refused (already cancelled, with the reason).
//! - The loop then stops its children, drops its `LocalSet` (running async calls are
//!   dropped *on the caller's thread* and finish cancelled), and leaves the registry.
//! - A protected caller ignores a non-forced stop.

mod attach;
mod builder;
mod calls;
mod inbox;
mod lifecycle;
mod loops;
mod names;
mod pool;
mod registry;

pub(crate) use attach::OnStop;
pub use builder::CallerBuilder;
pub(crate) use calls::to_thread_job;
pub use calls::{to_thread, to_thread_async, to_thread_with, CallOptions};
pub(crate) use inbox::{Fold, Msg};
pub use loops::HostLoop;
pub use pool::PoolConfig;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crate::context::{Context, Trackers};
use crate::error::Error;
use crate::job::{IntoJob, JobBuilder, JobValue};
use crate::pending::{Metadata, Pending, Resolver, Shared};
use crate::rt::CallerId;
use crate::sync::{lock, AtomicBool, AtomicU8, Mutex};

use attach::Attachments;
use inbox::Inbox;
use names::default_name;

/// The async backend a caller runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// A tokio current-thread runtime with a `LocalSet` (the default).
    #[default]
    Tokio,
    /// Driven by the loop of a thread that something else owns (a GUI or game loop):
    /// see [`CallerBuilder::host`] and [`HostLoop`](crate::HostLoop).
    Host,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Tokio => f.write_str("tokio"),
            Backend::Host => f.write_str("host"),
        }
    }
}

/// Where a caller is in its life; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallerState {
    /// Created; its loop has not started yet (calls already queue).
    Starting,
    /// Running calls.
    Running,
    /// `stop` was called; no new calls are accepted.
    Stopping,
    /// The loop has ended.
    Stopped,
}

impl CallerState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => CallerState::Starting,
            1 => CallerState::Running,
            2 => CallerState::Stopping,
            _ => CallerState::Stopped,
        }
    }
}

pub(crate) struct Inner {
    id: CallerId,
    name: Arc<str>,
    backend: Backend,
    protected: AtomicBool,
    state: AtomicU8,
    inbox: Inbox,
    attachments: Mutex<Attachments>,
    parent: Option<Weak<Inner>>,
    children: Mutex<Vec<Caller>>,
    thread: OnceLock<std::thread::Thread>,
    is_main: bool,
    started: Resolver<()>,
    stopping: Resolver<()>,
    stopped: Resolver<()>,
    pooled: AtomicBool,
}

/// A thread's single-threaded async loop, reachable from every thread.
///
/// Any thread can schedule a function or future on it and get back a [`Pending`]. The
/// work runs on the caller's thread, so the future it builds need not be `Send`: `Rc`,
/// `RefCell`, GUI handles and other thread-confined resources stay on their thread while
/// the whole program talks to them. `Caller` is a cheap, cloneable handle.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// # fn main() -> Result<(), caller::Error> {
/// let owner = caller::Caller::builder().name("doc-owner").spawn()?;
/// // Build a !Send resource on the caller's thread and keep it there.
/// thread_local!(static LOG: Rc<RefCell<Vec<String>>> = Rc::default());
/// for word in ["a", "b"] {
///     drop(owner.call_soon(move || LOG.with(|l| l.borrow_mut().push(word.into()))));
/// }
/// let len = owner.call_soon(|| LOG.with(|l| l.borrow().len())).wait_sync(None)?;
/// assert_eq!(len, 2);
/// # owner.stop(true); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Caller {
    pub(crate) inner: Arc<Inner>,
}

impl PartialEq for Caller {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}
impl Eq for Caller {}

impl Caller {
    /// async-kernel's `MAX_IDLE_POOL_INSTANCES` default: idle workers kept by
    /// [`to_thread`](Self::to_thread); change it with [`PoolConfig`].
    pub const MAX_IDLE_POOL_INSTANCES: usize = 10;
    /// async-kernel's `IDLE_WORKER_SHUTDOWN_DURATION` default: an idle worker is stopped after
    /// this long; change it with [`PoolConfig`].
    pub const IDLE_WORKER_SHUTDOWN_DURATION: Duration = Duration::from_secs(60);

    /// Options to create a caller.
    #[must_use = "a builder does nothing until `spawn`, `block_on`, `host` or `current`"]
    pub fn builder() -> CallerBuilder {
        CallerBuilder::default()
    }

    /// Start a caller named `name` on a new thread; short for
    /// `Caller::builder().name(name).spawn()`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-new")?;
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn new_thread(name: impl Into<String>) -> Result<Caller, Error> {
        Caller::builder().name(name).spawn()
    }

    /// A caller on a new thread that owns a value only that thread touches: `init` runs
    /// there, first, and what it returns lives there until the caller stops (it is dropped
    /// on that thread, before [`stopped`](Self::stopped) is done). It need not be `Send`
    /// or `Sync`: a database connection, an interpreter, a `Rc` graph. Calls reach it with
    /// [`call_with`](Self::call_with) / [`call_with_async`](Self::call_with_async), the
    /// [`state`](crate::state) jobs, or `#[caller::on_thread(caller = .., state = db)]`;
    /// they take turns, in the order they start.
    ///
    /// Returns once `init` has run (it blocks the calling thread meanwhile). If `init`
    /// panics, the caller is stopped and the error says why; for an `init` that returns a
    /// `Result`, use [`try_new_thread_with`](Self::try_new_thread_with).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// # fn main() -> Result<(), caller::Error> {
    /// // `Rc<RefCell<..>>` is neither `Send` nor `Sync`: it stays on the "graph" thread.
    /// let graph = caller::Caller::new_thread_with("doc-graph", || Rc::new(RefCell::new(vec![0u32])))?;
    /// let from_elsewhere = std::thread::spawn({
    ///     let graph = graph.clone();
    ///     move || graph.call_with(|g: &mut Rc<RefCell<Vec<u32>>>| g.borrow_mut().push(1))
    /// });
    /// from_elsewhere.join().unwrap().wait_sync(None)?;
    /// let mut len = graph.call_with(|g: &mut Rc<RefCell<Vec<u32>>>| g.borrow().len());
    /// assert_eq!(len.wait_sync(None)?, 2);
    /// # graph.stop(true); Ok(()) }
    /// ```
    pub fn new_thread_with<S: 'static>(
        name: impl Into<String>,
        init: impl FnOnce() -> S + Send + 'static,
    ) -> Result<Caller, Error> {
        Caller::builder().name(name).spawn_with(init)
    }

    /// [`new_thread_with`](Self::new_thread_with) for an `init` that can fail, such as
    /// opening a connection: `Err(e)` comes back as `Error::Failed(e)` and the caller is
    /// stopped.
    ///
    /// ```
    /// # fn main() {
    /// let err = caller::Caller::try_new_thread_with("doc-try-init", || "x".parse::<u32>())
    ///     .unwrap_err();
    /// assert!(err.is_failure());
    /// assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
    /// # }
    /// ```
    pub fn try_new_thread_with<S, E>(
        name: impl Into<String>,
        init: impl FnOnce() -> Result<S, E> + Send + 'static,
    ) -> Result<Caller, Error>
    where
        S: 'static,
        E: Into<crate::BoxError> + 'static,
    {
        Caller::builder().name(name).try_spawn_with(init)
    }

    fn new_inner(id: CallerId, name: String, opts: &CallerBuilder, is_main: bool) -> Caller {
        let event = || Pending::<()>::new().resolver();
        Caller {
            inner: Arc::new(Inner {
                id,
                name: name.into(),
                backend: opts.backend,
                protected: AtomicBool::new(opts.protected),
                state: AtomicU8::new(0),
                inbox: Inbox::new(),
                attachments: Mutex::default(),
                parent: opts.parent.as_ref().map(|p| Arc::downgrade(&p.inner)),
                children: Mutex::new(Vec::new()),
                thread: OnceLock::new(),
                is_main,
                started: event(),
                stopping: event(),
                stopped: event(),
                pooled: AtomicBool::new(false),
            }),
        }
    }

    /// Schedule `job` on this caller with `options` (the low-level method the others use).
    ///
    /// The pending joins the active trackers of the kinds the options allow, and the job
    /// runs inside the context it was scheduled from. On a stopped caller the pending is
    /// already cancelled, with the reason.
    ///
    /// ```
    /// use caller::CallOptions;
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-schedule")?;
    /// let mut p = c.schedule_call(|| "hi", CallOptions::new().name("greet").meta("k", "v"));
    /// assert_eq!(p.metadata().name(), "greet");
    /// assert_eq!(p.wait_sync(None)?, "hi");
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn schedule_call<T, J>(&self, job: J, options: CallOptions) -> Pending<T>
    where
        T: Send + JobValue + 'static,
        J: IntoJob<T>,
    {
        self.schedule(job, options, false)
    }

    /// [`schedule_call`](Self::schedule_call) without its `JobValue` bound, for callers
    /// whose value cannot be a closure's future (the async methods, the macros).
    pub(crate) fn schedule_job<T, J>(&self, job: J, options: CallOptions) -> Pending<T>
    where
        T: Send + 'static,
        J: IntoJob<T>,
    {
        self.schedule(job, options, false)
    }

    fn schedule<T, J>(&self, job: J, options: CallOptions, guest: bool) -> Pending<T>
    where
        T: Send + 'static,
        J: IntoJob<T>,
    {
        let CallOptions {
            name,
            trackers,
            delay,
            context,
            meta,
        } = options;
        let name = name.unwrap_or_else(|| Cow::Borrowed(default_name(std::any::type_name::<J>())));
        let shared = Shared::<T>::new(Metadata::new(
            name,
            Some((self.inner.id, self.inner.name.clone())),
        ));
        let pending = Pending::from_shared(shared.clone());
        for (k, v) in meta {
            pending.set_meta(k, v);
        }
        let ctx = context.unwrap_or_else(Context::current);
        if trackers != Trackers::NONE {
            ctx.register(&pending, trackers);
        }
        let ctx = ctx.only(trackers);
        let span = crate::job::CallSpan::debug(|| {
            tracing::debug_span!(
                "call",
                name = %pending.metadata().name(),
                caller = %self.inner.name,
                pending = pending.id(),
            )
        });
        let built = job.__build(JobBuilder {
            shared,
            ctx,
            span,
            delay,
            guest,
        });
        if let Err(Msg::Run(r)) = self.send(Msg::Run(built.0)) {
            r.refuse(&self.stop_reason());
        }
        pending
    }

    /// Run `job` on this caller's thread as soon as possible.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-soon")?;
    /// let mut name = c.call_soon(|| std::thread::current().name().unwrap().to_owned());
    /// assert_eq!(name.wait_sync(None)?, "doc-soon");
    /// # c.stop(true); Ok(()) }
    /// ```
    ///
    /// # A closure that returns a future
    ///
    /// `call_soon(|| async { .. })` would be a *sync* job whose value is the future, handed
    /// back unpolled with its body never run. It is a compile error instead: a job's value
    /// must be `Unpin` ([`JobValue`](crate::job::JobValue)), which the futures of `async`
    /// blocks and `async fn`s are not. Use [`call_soon_async`](Self::call_soon_async) (or
    /// [`job::future`](crate::job::future)). In generic code, bound the value type with
    /// `Unpin`.
    ///
    /// ```compile_fail
    /// # let c = caller::Caller::new_thread("doc-soon-future").unwrap();
    /// let p = c.call_soon(|| async { 1 }); // error: not `Unpin` (is the job a closure that returns a future?)
    /// ```
    pub fn call_soon<T, J>(&self, job: J) -> Pending<T>
    where
        T: Send + JobValue + 'static,
        J: IntoJob<T>,
    {
        self.schedule_call(job, CallOptions::default())
    }

    /// Run the future built by `f` on this caller's thread; the future need not be `Send`.
    /// Short for `call_soon(job::future(f))`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-soon-async")?;
    /// let p = c.call_soon_async(|| async {
    ///     let rc = std::rc::Rc::new(3);
    ///     tokio::task::yield_now().await;
    ///     *rc
    /// });
    /// assert_eq!(futures::executor::block_on(p)?, 3);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn call_soon_async<F, Fut>(&self, f: F) -> Pending<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.schedule_job(crate::job::future(f), CallOptions::default())
    }

    /// Run `f` on this caller's thread with `&mut` access to the state the thread owns
    /// (see [`new_thread_with`](Self::new_thread_with)). Short for
    /// `call_soon(state::with_state(f))`. If this caller holds no `S`, the pending fails
    /// with `Error::Invalid`, saying what it holds.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let counter = caller::Caller::new_thread_with("doc-call-with", || 0u64)?;
    /// for _ in 0..3 {
    ///     let _ = counter.call_with(|n: &mut u64| *n += 1); // fire and forget
    /// }
    /// assert_eq!(counter.call_with(|n: &mut u64| *n).wait_sync(None)?, 3);
    /// # counter.stop(true); Ok(()) }
    /// ```
    pub fn call_with<S, T, F>(&self, f: F) -> Pending<T>
    where
        S: 'static,
        T: Send + JobValue + 'static,
        F: FnOnce(&mut S) -> T + Send + 'static,
    {
        self.call_soon(crate::state::with_state(f))
    }

    /// [`call_with`](Self::call_with) for an async function: it holds `&mut S` until its
    /// future ends (other state calls wait their turn; the caller's other calls go on).
    /// Short for `call_soon(state::with_state_async(f))`.
    ///
    /// ```
    /// use std::rc::Rc;
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread_with("doc-call-with-async", || Rc::new(String::new()))?;
    /// let p = c.call_with_async(async |s: &mut Rc<String>| {
    ///     tokio::task::yield_now().await;
    ///     Rc::make_mut(s).push_str("hi");
    ///     s.len()
    /// });
    /// assert_eq!(futures::executor::block_on(p)?, 2);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn call_with_async<S, T, F>(&self, f: F) -> Pending<T>
    where
        S: 'static,
        T: Send + 'static,
        F: AsyncFnOnce(&mut S) -> T + Send + 'static,
    {
        // The value is the async function's output, never an unpolled future.
        self.schedule_job(crate::state::with_state_async(f), CallOptions::default())
    }

    /// Run `job` on this caller's thread no sooner than `delay` from now. Cancelling it
    /// before then means it never starts. For a closure that returns a future, use
    /// [`call_later_async`](Self::call_later_async) (see [`call_soon`](Self::call_soon)).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-later")?;
    /// let t0 = Instant::now();
    /// c.call_later(Duration::from_millis(20), || ()).wait_sync(None)?;
    /// assert!(t0.elapsed() >= Duration::from_millis(20));
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn call_later<T, J>(&self, delay: Duration, job: J) -> Pending<T>
    where
        T: Send + JobValue + 'static,
        J: IntoJob<T>,
    {
        self.schedule_call(job, CallOptions::default().delay(delay))
    }

    /// [`call_later`](Self::call_later) for an async function.
    pub fn call_later_async<F, Fut>(&self, delay: Duration, f: F) -> Pending<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        self.schedule_job(crate::job::future(f), CallOptions::default().delay(delay))
    }

    /// Run `f` inline in the caller's scheduler loop, with no pending: for tiny calls only
    /// (it blocks every other call on this caller while it runs). A panic is caught and
    /// logged. `Err(CallerStopped)` if the caller no longer accepts calls.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-direct")?;
    /// c.call_direct(|| println!("hello from the loop"))?;
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn call_direct(&self, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        self.inner
            .inbox
            .push(Msg::Direct(Box::new(f)))
            .map_err(|_| Error::CallerStopped {
                caller: self.inner.name.to_string(),
            })
    }

    /// Run `job` on a pooled worker caller (its own thread). Workers are reused: up to
    /// [`PoolConfig::max_idle`] idle ones are kept, and an idle one stops after
    /// [`PoolConfig::idle_shutdown`]. async-kernel's `to_thread`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let sum = caller::to_thread(|| (1..=100u64).sum::<u64>()).wait_sync(None)?;
    /// assert_eq!(sum, 5050);
    /// # Ok(()) }
    /// ```
    pub fn to_thread<T, J>(&self, job: J) -> Pending<T>
    where
        T: Send + JobValue + 'static,
        J: IntoJob<T>,
    {
        pool::to_thread(job, CallOptions::default())
    }

    /// [`to_thread`](Self::to_thread) for an async function.
    pub fn to_thread_async<F, Fut>(&self, f: F) -> Pending<Fut::Output>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        pool::to_thread(crate::job::future(f), CallOptions::default())
    }

    /// Run `job` with the given backend on this caller's thread.
    ///
    /// - `backend` is this caller's own: the same as [`call_soon`](Self::call_soon).
    /// - [`Backend::Tokio`] on a [`Backend::Host`] caller: the job runs on the host's
    ///   thread as a *guest*: every poll enters a shared background tokio runtime, so
    ///   tokio timers and sockets work, and that runtime's driver wakes the job.
    /// - Anything else (a host loop inside a tokio caller) is refused: the pending fails
    ///   with `Error::Mismatch`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-backend")?;
    /// let p = c.call_using_backend(caller::Backend::Tokio, caller::job::future(|| async {
    ///     tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     "slept"
    /// }));
    /// assert_eq!(futures::executor::block_on(p)?, "slept");
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn call_using_backend<T, J>(&self, backend: Backend, job: J) -> Pending<T>
    where
        T: Send + JobValue + 'static,
        J: IntoJob<T>,
    {
        match (self.inner.backend, backend) {
            (own, asked) if own == asked => self.call_soon(job),
            (Backend::Host, Backend::Tokio) => self.schedule(job, CallOptions::default(), true),
            (own, asked) => {
                let p = Pending::new();
                p.set_error(Error::Mismatch {
                    what: "backend",
                    expected: asked.to_string(),
                    found: own.to_string(),
                });
                p
            }
        }
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .field("protected", &self.protected())
            .field("children", &lock(&self.inner.children).len())
            .finish()
    }
}
