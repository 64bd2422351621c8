//! What a scheduled call runs: sync closures, futures, and their fallible forms.
//!
//! Every scheduling method takes an [`IntoJob<T>`]. A plain closure `FnOnce() -> T` *is*
//! a job (a sync call). The other kinds are made with the functions of this module:
//!
//! | made with | runs | the pending's outcome |
//! |---|---|---|
//! | `|| value` (a closure) | the closure, on the target thread | `Ok(value)` |
//! | [`future(f)`](future) | `f()` builds a future **on the target thread** (it need not be `Send`) and it is awaited there | `Ok(output)` |
//! | [`try_sync(f)`](try_sync) | `f() -> Result<T, E>` | `Ok(t)`, or `Err(Error::Failed(e))` |
//! | [`try_future(f)`](try_future) | a future of `Result<T, E>` | `Ok(t)`, or `Err(Error::Failed(e))` |
//!
//! Jobs that receive `&mut` to the state a caller's thread owns
//! ([`Caller::new_thread_with`](crate::Caller::new_thread_with)) are in
//! [`state`](crate::state).
//!
//! The closure crosses threads, so it must be `Send + 'static`; the future it builds stays
//! on the target thread and need not be `Send`. An `Err` from a fallible job is a *failure*:
//! it fails a [`PendingGroup`](crate::PendingGroup), counts for `FIRST_EXCEPTION`, and is
//! logged, as an exception is in async-kernel.
//!
//! ```
//! use std::rc::Rc;
//! # fn main() -> Result<(), caller::Error> {
//! let worker = caller::Caller::builder().name("doc-job").spawn()?;
//! // The future holds an `Rc`: it is not `Send`, and it does not have to be.
//! let mut p = worker.call_soon(caller::job::future(|| async {
//!     let local = Rc::new(5);
//!     *local * 2
//! }));
//! assert_eq!(p.wait_sync(None)?, 10);
//! let mut failing = worker.call_soon(caller::job::try_sync(|| "x".parse::<u8>()));
//! assert!(failing.wait_sync(None).unwrap_err().is_failure());
//! # worker.stop(true); Ok(()) }
//! ```

mod call;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::context::Context;
use crate::error::{BoxError, Error};
use crate::pending::Shared;

/// Something that can be scheduled as a call whose pending yields `T`.
///
/// Implemented by every `FnOnce() -> T + Send + 'static` closure (a sync call) and by the
/// wrappers of this module. See the [module docs](self).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be scheduled as a call",
    label = "expected a `FnOnce() -> T + Send + 'static` closure, or caller::job::future(..)",
    note = "the closure crosses threads, so it must be `Send + 'static`: move owned values into it"
)]
pub trait IntoJob<T>: Send + 'static {
    #[doc(hidden)]
    fn __build(self, b: JobBuilder<T>) -> BuiltJob;
}

impl<F, T> IntoJob<T> for F
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        b.sync(move || Ok(self()))
    }
}

/// What a scheduling method may hand back as a call's value: any `Unpin` type.
///
/// The bound is there to catch `call_soon(|| async { .. })` at compile time: that closure
/// is a *sync* job whose value is the future, which would come back unpolled, its body
/// never run. Stable Rust cannot say "any `T` but a future" (`T: !Future`), but every
/// future that `async` blocks and `async fn`s make is `!Unpin`, while values handed across
/// threads almost never are. Async work goes through [`future`] (`call_soon_async`,
/// `to_thread_async`, `call_later_async`); a `!Unpin` value that is not a future can be
/// returned boxed (`Box::pin(value)`).
///
/// ```compile_fail
/// # let c = caller::Caller::new_thread("doc-job-value").unwrap();
/// let p = c.call_soon(|| async { 1 }); // error: not `Unpin` (is the job a closure that returns a future?)
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the value of a job: it is not `Unpin` (is the job a closure that returns a future?)",
    label = "a future returned by this job would come back unpolled, its body never run",
    note = "for async work use `call_soon_async(|| async {{ .. }})`, `to_thread_async`, `call_later_async` or `caller::job::future`",
    note = "in generic code, bound the value type with `Unpin`; a `!Unpin` value that is not a future can be returned boxed (`Box::pin(value)`)"
)]
pub trait JobValue {}

impl<T: Unpin> JobValue for T {}

/// A job that builds a future on the target thread; see [`future`].
#[derive(Debug)]
pub struct FutureJob<F>(F);

/// A sync job returning `Result`; see [`try_sync`].
#[derive(Debug)]
pub struct TrySyncJob<F>(F);

/// A future job yielding `Result`; see [`try_future`].
#[derive(Debug)]
pub struct TryFutureJob<F>(F);

/// An async job: `f` runs on the target thread and the future it returns is awaited there.
///
/// The future need not be `Send`; cancelling the pending drops it at its next suspension
/// point, on its own thread.
///
/// ```
/// let job = caller::job::future(|| async { 1 + 1 });
/// # let _ = job;
/// ```
pub fn future<F, Fut>(f: F) -> FutureJob<F>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
{
    FutureJob(f)
}

/// A fallible sync job: `Err(e)` becomes `Error::Failed(e)` (a failure).
///
/// ```
/// let job = caller::job::try_sync(|| std::fs::read_to_string("/nonexistent"));
/// # let _ = job;
/// ```
pub fn try_sync<F, T, E>(f: F) -> TrySyncJob<F>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    E: Into<BoxError>,
{
    TrySyncJob(f)
}

/// A fallible async job: the future's `Err(e)` becomes `Error::Failed(e)` (a failure).
///
/// ```
/// let job = caller::job::try_future(|| async { "7".parse::<u8>() });
/// # let _ = job;
/// ```
pub fn try_future<F, Fut, T, E>(f: F) -> TryFutureJob<F>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + 'static,
    E: Into<BoxError>,
{
    TryFutureJob(f)
}

impl<F, Fut> IntoJob<Fut::Output> for FutureJob<F>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    fn __build(self, b: JobBuilder<Fut::Output>) -> BuiltJob {
        let f = self.0;
        b.future(move || {
            let fut = f();
            async move { Ok(fut.await) }
        })
    }
}

impl<F, T, E> IntoJob<T> for TrySyncJob<F>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        let f = self.0;
        b.sync(move || f().map_err(Error::failed))
    }
}

impl<F, Fut, T, E> IntoJob<T> for TryFutureJob<F>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        let f = self.0;
        b.future(move || {
            let fut = f();
            async move { fut.await.map_err(Error::failed) }
        })
    }
}

/// Hands a job the pending it must finish. Not part of the public API.
#[doc(hidden)]
pub struct JobBuilder<T> {
    pub(crate) shared: Arc<Shared<T>>,
    pub(crate) ctx: Context,
    pub(crate) span: CallSpan,
    pub(crate) delay: Option<Duration>,
    /// Poll inside the shared background tokio runtime (a tokio guest on a host caller).
    pub(crate) guest: bool,
}

/// The tracing span of a call, boxed only when tracing wants it: a call's task carries
/// its span for its whole life, and a disabled span is 40 bytes of nothing.
pub(crate) struct CallSpan(Option<Box<tracing::Span>>);

impl CallSpan {
    pub(crate) fn new(span: tracing::Span) -> Self {
        CallSpan((!span.is_disabled()).then(|| Box::new(span)))
    }

    /// The span `make` builds, when debug spans can be enabled at all: a call pays nothing
    /// for it otherwise (with no subscriber, tracing's `log` feature would still evaluate
    /// its fields and hand them to `log`).
    #[inline]
    pub(crate) fn debug(make: impl FnOnce() -> tracing::Span) -> Self {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            CallSpan::new(make())
        } else {
            CallSpan(None)
        }
    }

    pub(crate) fn get(&self) -> &tracing::Span {
        static NONE: tracing::Span = tracing::Span::none();
        self.0.as_deref().unwrap_or(&NONE)
    }
}

/// A job ready to be sent to a caller. Not part of the public API.
#[doc(hidden)]
pub struct BuiltJob(pub(crate) Box<dyn Runnable>);

impl<T> std::fmt::Debug for JobBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobBuilder")
            .field("delay", &self.delay)
            .finish()
    }
}

impl std::fmt::Debug for BuiltJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BuiltJob")
    }
}

impl<T: Send + 'static> JobBuilder<T> {
    #[doc(hidden)]
    pub fn sync<F>(self, f: F) -> BuiltJob
    where
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        BuiltJob(Box::new(call::SyncCall { b: self, f }))
    }

    #[doc(hidden)]
    pub fn future<F, Fut>(self, f: F) -> BuiltJob
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + 'static,
    {
        BuiltJob(Box::new(call::AsyncCall { b: self, f }))
    }
}

/// A call on its way to (or inside) a caller's loop.
pub(crate) trait Runnable: Send {
    /// Whether `run` executes user code inline (then queued async calls must start first).
    fn inline(&self) -> bool;
    /// Run (sync) or spawn (async, delayed) on the caller's thread.
    fn run(self: Box<Self>);
    /// The call was refused (caller stopped): never run, finish as cancelled.
    fn refuse(self: Box<Self>, reason: &str);
    /// The message as `Any`, for a sender that may fold more work into it while it waits
    /// in the inbox (a burst of `queue_call`s); `None` for a message that takes none.
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}
