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
//! The closure crosses threads, so it must be `Send + 'static`; the future it builds stays
//! on the target thread and need not be `Send`. An `Err` from a fallible job is a *failure*:
//! it fails a [`PendingGroup`](crate::PendingGroup), counts for `FIRST_EXCEPTION`, and is
//! logged, as an exception is in the seed.
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

use std::cell::Cell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use crate::context::{run_in_frame, Context};
use crate::error::{panic_message, BoxError, Error};
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
    pub(crate) span: tracing::Span,
    pub(crate) delay: Option<Duration>,
    /// Poll inside the shared background tokio runtime (a tokio guest on a host caller).
    pub(crate) guest: bool,
}

/// Enter the background tokio runtime when `guest` is set.
fn enter_guest(guest: bool) -> Option<tokio::runtime::EnterGuard<'static>> {
    guest.then(|| crate::backend::host::guest_runtime().enter())
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
        BuiltJob(Box::new(SyncCall { b: self, f }))
    }

    #[doc(hidden)]
    pub fn future<F, Fut>(self, f: F) -> BuiltJob
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + 'static,
    {
        BuiltJob(Box::new(AsyncCall { b: self, f }))
    }
}

thread_local! {
    /// Work handed to this thread's `LocalSet` (async calls, queue items) whose first poll
    /// has not happened yet; inline work waits for it so that calls start in the order
    /// they were scheduled.
    static UNSTARTED: Cell<usize> = const { Cell::new(0) };
}

/// Count one more piece of spawned work that has not started.
pub(crate) fn unstarted_add() {
    UNSTARTED.with(|u| u.set(u.get() + 1));
}

/// One piece of spawned work started.
pub(crate) fn unstarted_done() {
    UNSTARTED.with(|u| u.set(u.get().saturating_sub(1)));
}

/// A new loop starts on this thread: nothing is pending from an earlier one.
pub(crate) fn unstarted_reset() {
    UNSTARTED.with(|u| u.set(0));
}

/// How much spawned work has not started yet.
pub(crate) fn unstarted() -> usize {
    UNSTARTED.with(Cell::get)
}

/// A call on its way to (or inside) a caller's loop.
pub(crate) trait Runnable: Send {
    /// Whether `run` executes user code inline (then queued async calls must start first).
    fn inline(&self) -> bool;
    /// Run (sync) or spawn (async, delayed) on the caller's thread.
    fn run(self: Box<Self>);
    /// The call was refused (caller stopped): never run, finish as cancelled.
    fn refuse(self: Box<Self>, reason: &str);
}

struct SyncCall<T, F> {
    b: JobBuilder<T>,
    f: F,
}

impl<T, F> SyncCall<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    fn run_now(self) {
        let SyncCall { b, f } = self;
        let JobBuilder {
            shared,
            mut ctx,
            span,
            guest,
            ..
        } = b;
        if !shared.try_start() {
            return;
        }
        let view = shared.view();
        let res = run_in_frame(&mut ctx, &view, || {
            let _enter = span.enter();
            let _rt = enter_guest(guest);
            catch_unwind(AssertUnwindSafe(f))
        });
        finish(&shared, res, &span);
    }
}

/// Finish `shared` with what the user code produced (or cancelled, if a cancel was asked
/// while it ran: the value is discarded).
fn finish<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    res: std::thread::Result<Result<T, Error>>,
    span: &tracing::Span,
) {
    match res {
        Err(payload) => {
            let message = panic_message(&*payload);
            tracing::error!(parent: span, panic = %message, "call panicked");
            shared.finish(Err(Error::Panicked { message }));
        }
        Ok(_) if shared.header().cancel_requested() => shared.finish_cancelled(""),
        Ok(Err(e)) => {
            if e.is_failure() {
                tracing::debug!(parent: span, error = %e, "call failed");
            }
            shared.finish(Err(e));
        }
        Ok(Ok(v)) => {
            shared.finish(Ok(v));
        }
    }
}

impl<T, F> Runnable for SyncCall<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    fn inline(&self) -> bool {
        self.b.delay.is_none()
    }

    fn run(self: Box<Self>) {
        match self.b.delay {
            None => self.run_now(),
            Some(d) => {
                let this = *self;
                // Made before the spawn: a task dropped before its first poll (the caller
                // stopped) must still finish its pending.
                let guard = FinishOnDrop(this.b.shared.clone());
                crate::backend::spawn_local(async move {
                    crate::backend::sleep(d).await;
                    this.run_now();
                    drop(guard);
                });
            }
        }
    }

    fn refuse(self: Box<Self>, reason: &str) {
        self.b.shared.finish_cancelled(reason);
    }
}

struct AsyncCall<T, F> {
    b: JobBuilder<T>,
    f: F,
}

impl<T, F, Fut> Runnable for AsyncCall<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Error>> + 'static,
{
    fn inline(&self) -> bool {
        false
    }

    fn run(self: Box<Self>) {
        let AsyncCall { b, f } = *self;
        let counted = b.delay.is_none();
        if counted {
            unstarted_add();
        }
        // Regression ("nothing is lost"): the guard used to be made inside the task, so a
        // task dropped before its first poll by a stopping caller left its pending
        // unfinished forever. It is made here and moved into the task.
        let guard = FinishOnDrop(b.shared.clone());
        crate::backend::spawn_local(run_async(b, f, counted, guard));
    }

    fn refuse(self: Box<Self>, reason: &str) {
        self.b.shared.finish_cancelled(reason);
    }
}

/// Finishes the pending as cancelled if the task running it is dropped first (the caller
/// stopped and its `LocalSet` dropped every task, on the caller's own thread).
struct FinishOnDrop<T: Send + 'static>(Arc<Shared<T>>);

impl<T: Send + 'static> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        if !self.0.header().is_done() {
            let caller = self
                .0
                .header()
                .meta()
                .caller()
                .map(|c| c.1.to_owned())
                .unwrap_or_default();
            self.0
                .finish_cancelled(&format!("caller '{caller}' stopped"));
        }
    }
}

async fn run_async<T, F, Fut>(b: JobBuilder<T>, f: F, counted: bool, guard: FinishOnDrop<T>)
where
    T: Send + 'static,
    F: FnOnce() -> Fut + 'static,
    Fut: Future<Output = Result<T, Error>> + 'static,
{
    let JobBuilder {
        shared,
        mut ctx,
        span,
        delay,
        guest,
    } = b;
    if counted {
        unstarted_done();
    }
    if let Some(d) = delay {
        crate::backend::sleep(d).await;
    }
    if !shared.try_start() {
        return;
    }
    let view = shared.view();
    let made = run_in_frame(&mut ctx, &view, || {
        let _enter = span.enter();
        let _rt = enter_guest(guest);
        catch_unwind(AssertUnwindSafe(f))
    });
    let res = match made {
        Err(payload) => Err(payload),
        Ok(fut) => {
            // The future lives in this block, so it is dropped (on this thread) before the
            // pending is finished below.
            let mut fut = std::pin::pin!(fut);
            std::future::poll_fn(|cx| {
                // Regression (lost wakeup): checking the flag, then storing the waker
                // let a cancel slip between the two and never wake this task.
                if !shared.header().set_runner(cx.waker()) {
                    return Poll::Ready(Ok(Err(Error::cancelled(""))));
                }
                run_in_frame(&mut ctx, &view, || {
                    let _enter = span.enter();
                    let _rt = enter_guest(guest);
                    match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                        Ok(Poll::Pending) => Poll::Pending,
                        Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
                        Err(payload) => Poll::Ready(Err(payload)),
                    }
                })
            })
            .await
        }
    };
    finish(&shared, res, &span);
    drop(guard);
}
