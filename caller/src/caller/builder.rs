//! Making callers: [`CallerBuilder`] (a new thread, this thread for the life of a future,
//! a host's thread) and the shorthands on [`Caller`].

use std::future::Future;

use super::{loops, registry, Backend, CallOptions, Caller, CallerState};
use crate::context::{Context, Trackers};
use crate::error::Error;
use crate::rt::CallerId;
use crate::sync::lock;

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
    pub(super) name: Option<String>,
    pub(super) backend: Backend,
    /// Whether `backend` was asked for: only then is an existing caller's checked.
    pub(super) backend_asked: bool,
    pub(super) protected: bool,
    pub(super) parent: Option<Caller>,
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
