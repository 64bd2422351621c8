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
mod inbox;
mod loops;
mod pool;
mod registry;

pub(crate) use attach::OnStop;
pub(crate) use inbox::Msg;
pub use loops::HostLoop;
pub use pool::PoolConfig;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crate::context::{Context, Trackers};
use crate::error::Error;
use crate::job::{IntoJob, JobBuilder, JobValue};
use crate::pending::{AnyPending, Metadata, Pending, Resolver, Shared};
use crate::rt::CallerId;
use crate::sync::{lock, AtomicBool, AtomicU8, Mutex, Ordering};

use inbox::Inbox;

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

/// The top-level callers found or made by name (see `Caller::top_level`), so that a name is
/// not looked up in the whole registry at every call.
fn top_level_names() -> &'static Mutex<HashMap<String, Caller>> {
    static NAMES: OnceLock<Mutex<HashMap<String, Caller>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// Options for scheduling one call with [`Caller::schedule_call`].
///
/// ```
/// use caller::{CallOptions, Trackers};
/// let opts = CallOptions::new()
///     .name("load_user")
///     .trackers(Trackers::MANAGERS)
///     .meta("user", "42");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct CallOptions {
    name: Option<Cow<'static, str>>,
    trackers: Trackers,
    delay: Option<Duration>,
    context: Option<Context>,
    meta: Vec<(String, String)>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            name: None,
            trackers: Trackers::ALL,
            delay: None,
            context: None,
            meta: Vec::new(),
        }
    }
}

impl CallOptions {
    /// Default options: every tracker kind, the current context, no delay.
    #[must_use = "options do nothing until passed to `schedule_call` or `to_thread_with`"]
    pub fn new() -> Self {
        Self::default()
    }

    /// The function name shown in metadata, `Debug` and tracing (default: the path of the
    /// function the job is, or for a closure the function it is written in).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Which tracker kinds the pending joins (default [`Trackers::ALL`]).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn trackers(mut self, trackers: Trackers) -> Self {
        self.trackers = trackers;
        self
    }

    /// Start no sooner than `delay` after it reaches the caller.
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// The context to run in (default: [`Context::current`]).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn context(mut self, ctx: Context) -> Self {
        self.context = Some(ctx);
        self
    }

    /// A user key/value stored in the pending's metadata.
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.push((key.into(), value.into()));
        self
    }
}

/// Options to create a caller: [`Caller::builder`].
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let db = caller::Caller::builder().name("db").spawn()?;
/// assert_eq!(db.name(), "db");
/// # db.stop(true); Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct CallerBuilder {
    name: Option<String>,
    backend: Backend,
    /// Whether `backend` was asked for: only then is an existing caller's checked.
    backend_asked: bool,
    protected: bool,
    parent: Option<Caller>,
}

impl CallerBuilder {
    /// The caller's name (and its thread's, for a new thread).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The backend (default [`Backend::Tokio`]).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = backend;
        self.backend_asked = true;
        self
    }

    /// A protected caller ignores a non-forced [`stop`](Caller::stop).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn protected(mut self, protected: bool) -> Self {
        self.protected = protected;
        self
    }

    /// Start the caller on a new thread (async-kernel's `"NewThread"`). Calls can be scheduled
    /// at once; they run when the loop starts.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::builder().name("worker-a").spawn()?;
    /// assert_eq!(c.call_soon(|| 1).wait_sync(None)?, 1);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn spawn(self) -> Result<Caller, Error> {
        if self.backend == Backend::Host {
            return Err(Error::invalid(
                "a host caller runs on a thread its host owns: create it there with CallerBuilder::host",
            ));
        }
        if let Some(parent) = &self.parent {
            if parent.state() >= CallerState::Stopping {
                return Err(Error::CallerStopped {
                    caller: parent.name().to_owned(),
                });
            }
        }
        let id = CallerId::fresh();
        let name = self.name.clone().unwrap_or_else(|| format!("caller-{id}"));
        check_name(&name)?;
        let caller = Caller::new_inner(id, name.clone(), &self, false);
        let c2 = caller.clone();
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || loops::run_thread(c2))
            .map_err(|e| Error::invalid(format!("cannot start a thread: {e}")))?;
        let _ = caller.inner.thread.set(handle.thread().clone());
        registry::insert(&caller);
        if let Some(parent) = &self.parent {
            lock(&parent.inner.children).push(caller.clone());
            // A parent that began to stop meanwhile may have stopped its children already
            // (it takes the list after its state changed): this one would run for ever.
            if parent.state() >= CallerState::Stopping {
                caller.stop(true);
            }
        }
        Ok(caller)
    }

    /// [`spawn`](Self::spawn) a caller whose thread owns the value `init` builds there:
    /// see [`Caller::new_thread_with`]. Returns once `init` has run; if it panicked, the
    /// caller is stopped and the error says why.
    pub fn spawn_with<S: 'static>(
        self,
        init: impl FnOnce() -> S + Send + 'static,
    ) -> Result<Caller, Error> {
        self.try_spawn_with(move || Ok::<S, std::convert::Infallible>(init()))
    }

    /// [`spawn_with`](Self::spawn_with) for an `init` that can fail: its `Err(e)` comes
    /// back as `Error::Failed(e)` (look at it with `Error::downcast_ref`), and the caller
    /// is stopped.
    pub fn try_spawn_with<S, E>(
        self,
        init: impl FnOnce() -> Result<S, E> + Send + 'static,
    ) -> Result<Caller, Error>
    where
        S: 'static,
        E: Into<crate::BoxError> + 'static,
    {
        let caller = self.spawn()?;
        let options = CallOptions::new()
            .name("new_thread_with")
            .trackers(Trackers::NONE)
            .context(Context::empty());
        // The first call of the new caller: nothing can run before the state exists.
        let mut made = caller.schedule_call(
            crate::job::try_sync(move || init().map(crate::state::install)),
            options,
        );
        match made.wait_sync(None) {
            Ok(()) => Ok(caller),
            Err(err) => {
                caller.stop(true);
                Err(err)
            }
        }
    }

    /// Run `fut` with the current thread as a caller, for the life of the future
    /// (async-kernel's async context, and what `#[caller::main]` expands to). The caller is
    /// protected while `fut` runs; when `fut` ends, the caller stops (children first,
    /// unfinished calls cancelled). On the main thread, this caller is
    /// [`Caller::main_thread`].
    ///
    /// Errors: this thread already runs a caller; the name is empty or contains a NUL
    /// byte (`Error::Invalid`, as for [`spawn`](Self::spawn)); the caller was
    /// force-stopped before `fut` finished (`Error::CallerStopped`).
    ///
    /// ```
    /// let out = caller::Caller::builder().name("doc-entry").block_on(async {
    ///     let me = caller::Caller::current().unwrap();
    ///     me.call_soon(|| 2).await.unwrap()
    /// });
    /// assert_eq!(out.unwrap(), 2);
    /// ```
    pub fn block_on<F: Future>(self, fut: F) -> Result<F::Output, Error> {
        if self.backend == Backend::Host {
            return Err(Error::invalid(
                "block_on runs a tokio loop; a host caller is driven by CallerBuilder::host",
            ));
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            if let Some(existing) = Caller::current() {
                return Err(Error::invalid(format!(
                    "block_on was called inside caller '{}': one caller per thread (schedule \
                     the work with call_soon, or await it where you are)",
                    existing.name()
                )));
            }
            return Err(Error::invalid(
                "block_on was called inside a tokio runtime, which cannot block its thread: \
                 use `Caller::builder().run_here(fut).await` to make this thread a caller for \
                 the life of `fut` without leaving the runtime",
            ));
        }
        let caller = self.register_here()?;
        loops::run_here(caller, fut)
    }

    /// Make the current thread a caller for the life of `fut`, inside the tokio runtime
    /// that already runs here: for programs that start with `#[tokio::main]` (either
    /// flavor), a `LocalSet`, or any task that is polled on one thread. The caller's loop
    /// runs inside the returned future, beside `fut`, so the runtime keeps its thread and
    /// its other tasks; calls sent to this caller run when the future is polled. Await it
    /// where it was made (it is not `Send`).
    ///
    /// As with [`block_on`](Self::block_on), the caller is protected while `fut` runs and
    /// stops when `fut` ends (children first, unfinished calls cancelled); on the main
    /// thread it is [`Caller::main_thread`]. Dropping the returned future stops it too.
    /// Tasks that `fut` spawns with `tokio::task::spawn_local` join the caller's own
    /// `LocalSet` and end with it. A synchronous wait, on this thread, for a call on this
    /// caller is `Err(WouldDeadlock)` even from another task of the runtime: the caller only
    /// runs when its future is polled.
    ///
    /// Errors: no tokio runtime runs here (use `block_on`); this thread already runs a
    /// caller; the backend is `Host`; the caller was force-stopped before `fut` finished.
    ///
    /// ```
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() -> Result<(), caller::Error> {
    ///     let answer = caller::Caller::builder()
    ///         .name("app")
    ///         .run_here(async {
    ///             let app = caller::Caller::current().expect("this thread is a caller now");
    ///             // A worker thread calls back into this thread's caller.
    ///             let back = app.clone();
    ///             caller::to_thread(move || back.call_soon(|| 21 * 2))
    ///                 .await?
    ///                 .await
    ///         })
    ///         .await??;
    ///     assert_eq!(answer, 42);
    ///     Ok(())
    /// }
    /// ```
    pub async fn run_here<F: Future>(self, fut: F) -> Result<F::Output, Error> {
        if self.backend == Backend::Host {
            return Err(Error::invalid(
                "run_here runs the caller on the tokio runtime of this thread; a host caller \
                 is driven by CallerBuilder::host",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::invalid(
                "run_here needs the tokio runtime that polls it (#[tokio::main], a LocalSet): \
                 outside one, use `Caller::builder().block_on(fut)`",
            ));
        }
        let caller = self.register_here()?;
        loops::run_inside(caller, fut).await
    }

    /// Make the current thread — one that its host owns, such as a GUI or game loop — a
    /// caller driven by the host: `wake` is called (from any thread) whenever work
    /// arrives, and the host answers by calling [`HostLoop::pump`](crate::HostLoop::pump)
    /// from its own loop. The caller never blocks the thread. It is protected while the
    /// returned loop lives (dropping the loop stops it). The backend must be
    /// [`Backend::Host`]; see [`HostLoop`](crate::HostLoop) for an example.
    ///
    /// Errors: the backend is not `Host`; this thread already runs a caller; the name is
    /// empty or contains a NUL byte.
    pub fn host(self, wake: impl Fn() + Send + Sync + 'static) -> Result<crate::HostLoop, Error> {
        if self.backend != Backend::Host {
            return Err(Error::invalid(
                "CallerBuilder::host needs .backend(Backend::Host)",
            ));
        }
        let caller = self.register_here()?;
        Ok(crate::HostLoop::start(caller, Box::new(wake)))
    }

    /// Register a caller for the current thread (protected while its loop is entered),
    /// named after the thread unless a name was given; the main thread's caller is
    /// [`Caller::main_thread`].
    fn register_here(self) -> Result<Caller, Error> {
        // `registry::get`: a caller entered with `run_here` is `current` only while its
        // future is polled, but it owns the thread for its whole life.
        if let Some(existing) = Caller::current().or_else(|| registry::get(CallerId::current())) {
            return Err(Error::invalid(format!(
                "this thread already runs caller '{}': one caller per thread",
                existing.name()
            )));
        }
        let id = CallerId::current();
        let thread = std::thread::current();
        let name = self
            .name
            .clone()
            .or_else(|| thread.name().map(str::to_owned))
            .unwrap_or_else(|| format!("caller-{id}"));
        check_name(&name)?;
        let is_main = thread.name() == Some("main");
        let mut opts = self;
        opts.protected = true;
        let caller = Caller::new_inner(id, name, &opts, is_main);
        let _ = caller.inner.thread.set(thread);
        registry::insert(&caller);
        Ok(caller)
    }

    /// The current thread's running caller, checked against these options (async-kernel's
    /// `"CurrentThread"` retrieval): an error if there is none, or its name or backend
    /// differs from one given here.
    ///
    /// ```
    /// caller::Caller::builder().name("here").block_on(async {
    ///     assert!(caller::Caller::builder().name("here").current().is_ok());
    ///     assert!(caller::Caller::builder().name("other").current().is_err());
    /// }).unwrap();
    /// ```
    pub fn current(self) -> Result<Caller, Error> {
        let c = Caller::current().ok_or_else(|| Error::invalid("this thread runs no caller"))?;
        c.check(&self)?;
        Ok(c)
    }
}

/// A caller's name names its thread too: the same check for every way of making one.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.contains('\0') {
        return Err(Error::invalid(
            "a caller's name must be non-empty and contain no NUL byte (it names a thread)",
        ));
    }
    Ok(())
}

pub(crate) struct Inner {
    id: CallerId,
    name: Arc<str>,
    backend: Backend,
    protected: AtomicBool,
    state: AtomicU8,
    inbox: Inbox,
    attachments: Mutex<attach::Attachments>,
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

    /// The caller whose loop runs on this thread (inside a scheduled call: the caller
    /// running it).
    ///
    /// ```
    /// assert!(caller::Caller::current().is_none());
    /// ```
    pub fn current() -> Option<Caller> {
        crate::rt::loop_id().and_then(registry::get)
    }

    /// The main thread's caller, if the main thread runs one (`#[caller::main]` or
    /// [`CallerBuilder::block_on`] on the main thread). async-kernel's `"MainThread"`.
    pub fn main_thread() -> Option<Caller> {
        registry::main()
    }

    /// The id of the current thread's caller (async-kernel's `id_current`).
    pub fn id_current() -> CallerId {
        CallerId::current()
    }

    /// The running top-level caller named `name` (no parent, not a pooled worker), or a new
    /// one on its own thread: what `#[on_thread(name = "..")]` uses when there is no
    /// current or main-thread caller to hang a child from.
    pub(crate) fn top_level(name: &str) -> Result<Caller, Error> {
        // One lookup-or-create at a time, so two threads asking for the same new name
        // share one caller.
        let mut known = lock(top_level_names());
        if let Some(c) = Caller::known_top_level(&known, name) {
            return Ok(c);
        }
        let c = match Caller::scan_top_level(name) {
            Some(c) => c,
            None => Caller::builder().name(name).spawn()?,
        };
        known.insert(name.to_owned(), c.clone());
        Ok(c)
    }

    /// The running top-level caller named `name`, if any (see [`top_level`](Self::top_level)).
    pub(crate) fn existing_top_level(name: &str) -> Option<Caller> {
        let mut known = lock(top_level_names());
        if let Some(c) = Caller::known_top_level(&known, name) {
            return Some(c);
        }
        let c = Caller::scan_top_level(name)?;
        known.insert(name.to_owned(), c.clone());
        Some(c)
    }

    /// The remembered top-level caller of that name, if it still runs.
    fn known_top_level(known: &HashMap<String, Caller>, name: &str) -> Option<Caller> {
        known
            .get(name)
            .filter(|c| c.state() <= CallerState::Running)
            .cloned()
    }

    /// Search the registry (a caller made with `Caller::new_thread(name)` counts).
    fn scan_top_level(name: &str) -> Option<Caller> {
        registry::all().into_iter().find(|c| {
            c.name() == name
                && c.inner.parent.is_none()
                && !c.is_pooled()
                && c.state() <= CallerState::Running
        })
    }

    /// The caller with this id, if it exists and has not stopped.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-existing")?;
    /// assert_eq!(caller::Caller::get_existing(c.id()), Some(c.clone()));
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn get_existing(id: CallerId) -> Option<Caller> {
        registry::get(id)
    }

    /// Every caller not yet stopped; with `running_only`, only those whose loop runs.
    pub fn all_callers(running_only: bool) -> Vec<Caller> {
        registry::all()
            .into_iter()
            .filter(|c| !running_only || c.running())
            .collect()
    }

    /// The pending of the call running on this thread, if any. A sync function can poll
    /// its `cancelled()` to stop early.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-current-pending")?;
    /// let seen = c.call_soon(|| caller::Caller::current_pending().is_some()).wait_sync(None)?;
    /// assert!(seen);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn current_pending() -> Option<AnyPending> {
        crate::context::current_pending()
    }

    /// This caller's id.
    pub fn id(&self) -> CallerId {
        self.inner.id
    }

    /// This caller's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The backend this caller runs.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The thread the caller runs on.
    pub fn thread(&self) -> &std::thread::Thread {
        self.inner
            .thread
            .get()
            .expect("a caller's thread is set when it is created")
    }

    /// Whether a non-forced [`stop`](Self::stop) is ignored.
    pub fn protected(&self) -> bool {
        self.inner.protected.load(Ordering::Acquire)
    }

    /// Where the caller is in its life.
    pub fn state(&self) -> CallerState {
        CallerState::from_u8(self.inner.state.load(Ordering::Acquire))
    }

    /// `true` while the caller runs calls.
    pub fn running(&self) -> bool {
        self.state() == CallerState::Running
    }

    /// Whether this caller is a worker of the [`to_thread`](Self::to_thread) pool (it may
    /// stop when idle, so it is no place for long-lived children).
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let mut on_worker = caller::to_thread(|| caller::Caller::current().unwrap().is_pooled());
    /// assert!(on_worker.wait_sync(None)?);
    /// # Ok(()) }
    /// ```
    pub fn is_pooled(&self) -> bool {
        self.inner.pooled.load(Ordering::Acquire)
    }

    /// The caller that created this one with [`get`](Self::get), if any.
    pub fn parent(&self) -> Option<Caller> {
        self.inner
            .parent
            .as_ref()
            .and_then(Weak::upgrade)
            .map(|inner| Caller { inner })
    }

    /// The children created with [`get`](Self::get) that have not stopped.
    pub fn children(&self) -> Vec<Caller> {
        lock(&self.inner.children).clone()
    }

    /// Done when the loop has started.
    pub fn started(&self) -> crate::WaitDone {
        self.inner.started.any().wait_done(None)
    }

    /// Done when `stop` has been accepted.
    pub fn stopping(&self) -> crate::WaitDone {
        self.inner.stopping.any().wait_done(None)
    }

    /// Done when the loop has ended (every call done, children stopped).
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-stopped")?;
    /// c.stop(false);
    /// futures::executor::block_on(c.stopped())?;
    /// # Ok(()) }
    /// ```
    pub fn stopped(&self) -> crate::WaitDone {
        self.inner.stopped.any().wait_done(None)
    }

    /// Stop the caller: every unfinished call (queued or running) is cancelled with a
    /// message that says the caller stopped, children are stopped first, and the thread's
    /// loop ends. Returns at once with the state; await [`stopped`](Self::stopped) to know
    /// when it is over. A protected caller ignores a non-forced stop.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-stop")?;
    /// c.stop(false);
    /// let mut late = c.call_soon(|| 1);
    /// assert!(late.wait_sync(None).unwrap_err().is_cancelled());
    /// # Ok(()) }
    /// ```
    pub fn stop(&self, force: bool) -> CallerState {
        if self.protected() && !force {
            tracing::debug!(caller = %self.inner.name, "protected caller ignored a stop");
            return self.state();
        }
        let mut cur = self.inner.state.load(Ordering::Acquire);
        loop {
            if cur >= 2 {
                return CallerState::from_u8(cur);
            }
            match self
                .inner
                .state
                .compare_exchange(cur, 2, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        tracing::info!(caller = %self.inner.name, force, "caller stopping");
        self.inner.stopping.set_result(());
        let reason = self.stop_reason();
        for msg in self.inner.inbox.close() {
            msg.refuse(&reason);
        }
        self.stop_attachments(&reason);
        CallerState::Stopping
    }

    /// Hand `msg` to this caller's loop; handed back if the caller stopped.
    pub(crate) fn send(&self, msg: Msg) -> Result<(), Msg> {
        self.inner.inbox.push(msg)
    }

    pub(crate) fn stop_reason(&self) -> String {
        format!("caller '{}' stopped", self.inner.name)
    }

    /// Get the child caller named `name`, creating it (on a new thread) if needed. The
    /// child is stopped with this caller. async-kernel's `Caller.get`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let parent = caller::Caller::new_thread("doc-parent")?;
    /// let a = parent.get("io")?;
    /// assert_eq!(parent.get("io")?, a);
    /// assert_eq!(a.parent(), Some(parent.clone()));
    /// # parent.stop(true); Ok(()) }
    /// ```
    pub fn get(&self, name: &str) -> Result<Caller, Error> {
        self.get_with(Caller::builder().name(name))
    }

    /// [`get`](Self::get) with options: an existing child of that name with another
    /// backend is an error (`Error::Mismatch`).
    pub fn get_with(&self, opts: CallerBuilder) -> Result<Caller, Error> {
        let name = opts
            .name
            .clone()
            .ok_or_else(|| Error::invalid("Caller::get_with needs a name"))?;
        let mut children = lock(&self.inner.children);
        if let Some(c) = children.iter().find(|c| c.name() == name) {
            c.check(&opts)?;
            return Ok(c.clone());
        }
        drop(children);
        let child = CallerBuilder {
            parent: Some(self.clone()),
            ..opts
        }
        .spawn()?;
        children = lock(&self.inner.children);
        // Another thread may have created the same child meanwhile: keep the first.
        if let Some(first) = children.iter().find(|c| c.name() == name && **c != child) {
            let first = first.clone();
            children.retain(|c| *c != child);
            drop(children);
            child.stop(true);
            return Ok(first);
        }
        Ok(child)
    }

    fn check(&self, opts: &CallerBuilder) -> Result<(), Error> {
        if let Some(name) = &opts.name {
            if **name != *self.inner.name {
                return Err(Error::Mismatch {
                    what: "name",
                    expected: name.clone(),
                    found: self.inner.name.to_string(),
                });
            }
        }
        if opts.backend_asked && opts.backend != self.inner.backend {
            return Err(Error::Mismatch {
                what: "backend",
                expected: opts.backend.to_string(),
                found: self.inner.backend.to_string(),
            });
        }
        Ok(())
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
        let span = crate::job::CallSpan::new(tracing::debug_span!(
            "call",
            name = %pending.metadata().name(),
            caller = %self.inner.name,
            pending = pending.id(),
        ));
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

/// The default name of a call of job type `J`, from `type_name::<J>()`: the function's
/// path as the user wrote it. A function item is its path already (`app::db::load`); a
/// closure or async block is named after the function it is written in
/// (`app::main::{{closure}}` → `app::main`), and the `job::*` wrappers are looked through
/// (`caller::job::FutureJob<app::fetch>` → `app::fetch`). Only slices of the type name:
/// nothing is allocated (and, inlined into the generic `schedule` where the type name is a
/// constant, the comparisons are on constant strings).
#[inline]
pub(crate) fn default_name(mut name: &'static str) -> &'static str {
    if let Some(wrapped) = name.strip_prefix("caller::job::") {
        for wrapper in ["FutureJob<", "TrySyncJob<", "TryFutureJob<"] {
            if let Some(inner) = wrapped
                .strip_prefix(wrapper)
                .and_then(|n| n.strip_suffix('>'))
            {
                name = inner;
                break;
            }
        }
    }
    if let Some(wrapped) = name.strip_prefix("caller::state::") {
        // `StateJob<S, F>` and its kin: the function is the last type argument.
        let inner = [
            "StateJob<",
            "StateAsyncJob<",
            "TryStateJob<",
            "TryStateAsyncJob<",
        ]
        .iter()
        .find_map(|w| wrapped.strip_prefix(w))
        .and_then(|n| n.strip_suffix('>'));
        if let Some(args) = inner {
            name = last_type_argument(args);
        }
    }
    while let Some(outer) = name.strip_suffix("::{{closure}}") {
        name = outer;
    }
    name
}

/// The last of the comma-separated type arguments `args` (commas inside `<..>`, `(..)`
/// and `[..]` do not separate).
fn last_type_argument(args: &'static str) -> &'static str {
    let mut depth = 0usize;
    let mut start = 0;
    for (i, b) in args.bytes().enumerate() {
        match b {
            b'<' | b'(' | b'[' => depth += 1,
            b'>' | b')' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => start = i + 1,
            _ => {}
        }
    }
    args[start..].trim_start()
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

/// Run `job` on a pooled worker thread; see [`Caller::to_thread`]. For a closure that
/// returns a future, use [`to_thread_async`]: a plain `to_thread(|| async { .. })` hands
/// the future back unpolled (see [`Caller::call_soon`]).
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// assert_eq!(caller::to_thread(|| 2 + 2).wait_sync(None)?, 4);
/// # Ok(()) }
/// ```
pub fn to_thread<T, J>(job: J) -> Pending<T>
where
    T: Send + JobValue + 'static,
    J: IntoJob<T>,
{
    pool::to_thread(job, CallOptions::default())
}

/// [`to_thread_with`] without its `JobValue` bound (see [`Caller::schedule_job`]).
pub(crate) fn to_thread_job<T, J>(job: J, options: CallOptions) -> Pending<T>
where
    T: Send + 'static,
    J: IntoJob<T>,
{
    pool::to_thread(job, options)
}

/// [`to_thread`] with options (name, trackers, metadata).
pub fn to_thread_with<T, J>(job: J, options: CallOptions) -> Pending<T>
where
    T: Send + JobValue + 'static,
    J: IntoJob<T>,
{
    pool::to_thread(job, options)
}

/// [`to_thread`] for an async function.
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let p = caller::to_thread_async(|| async { 5 });
/// assert_eq!(futures::executor::block_on(p)?, 5);
/// # Ok(()) }
/// ```
pub fn to_thread_async<F, Fut>(f: F) -> Pending<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    pool::to_thread(crate::job::future(f), CallOptions::default())
}
