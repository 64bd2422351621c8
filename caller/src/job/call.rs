//! How a call runs on its caller's thread: the sync call (run inline, or after its delay),
//! the async call's task, and the rules every call keeps — a call cancelled before it
//! starts never runs; user data (closure, future, discarded value) is dropped on the
//! caller's thread, before the pending is done, with a panicking `Drop` caught and noted;
//! a call dropped by its stopping caller finishes cancelled.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::{CallSpan, JobBuilder, Runnable};
use crate::context::{run_in_frame, Context};
use crate::error::Error;
use crate::pending::{AnyPending, Shared};
use crate::rt;
use crate::unwind::{drop_caught, join_notes, message_of};

/// Enter the background tokio runtime when `guest` is set.
fn enter_guest(guest: bool) -> Option<tokio::runtime::EnterGuard<'static>> {
    guest.then(|| rt::guest_runtime().enter())
}

/// Sleep out a delayed call's delay, unless its pending is done first (cancelled before it
/// started): then `false` at once, so that the task ends instead of holding the call (and
/// its timer) for the rest of the delay.
async fn sleep_unless_done(d: Duration, pending: &AnyPending) -> bool {
    let sleep = std::pin::pin!(rt::sleep(d));
    match futures::future::select(sleep, pending.wait_done(None)).await {
        futures::future::Either::Left(_) => true,
        futures::future::Either::Right(_) => false,
    }
}

pub(super) struct SyncCall<T, F> {
    pub(super) b: JobBuilder<T>,
    pub(super) f: F,
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
        let Some(f) = start_or_drop(&shared, f) else {
            return;
        };
        let view = shared.view();
        let res = run_in_frame(&mut ctx, &view, || {
            let _enter = span.get().enter();
            let _rt = enter_guest(guest);
            catch_unwind(AssertUnwindSafe(f))
        });
        finish(&shared, res, span.get(), None);
    }

    /// The call will never run: drop its closure, then finish it cancelled with `reason`
    /// (and a note if the closure's `Drop` panicked).
    fn give_up(self, reason: &str) {
        let SyncCall { b, f } = self;
        let note = dropped(&b.shared, f, "closure");
        b.shared.finish_cancelled_noting(reason, note.as_deref());
    }
}

/// Claim the call of `shared` for running (`Some(f)`), or give it up: a call cancelled
/// before it started never runs, and its closure is dropped here, on the caller's thread,
/// before the pending is finished (when a cancel has not finished it already), so that the
/// outcome can say if the closure's `Drop` panicked.
fn start_or_drop<T: Send + 'static, F>(shared: &Arc<Shared<T>>, f: F) -> Option<F> {
    if !shared.header().cancel_requested() && shared.try_start() {
        return Some(f);
    }
    let note = dropped(shared, f, "closure");
    shared.finish_cancelled_noting("", note.as_deref());
    None
}

/// Drop `value`, user data of the call of `shared`, catching a panic of its `Drop`: the
/// panic is logged, and returned as a note for the pending's outcome.
fn dropped<T: Send + 'static, V>(shared: &Shared<T>, value: V, what: &str) -> Option<String> {
    let message = drop_caught(value)?;
    let meta = shared.header().meta();
    tracing::error!(
        pending = meta.id(),
        name = %meta.name(),
        panic = %message,
        "the {what} of a call panicked in Drop; the panic was caught"
    );
    Some(format!(
        "the {what} panicked while being dropped: {message}"
    ))
}

/// Drop the future in `fut` (if any) in place, on its own thread, catching a panic of its
/// `Drop`: logged, and returned as a note for the pending's outcome.
fn drop_future<T: Send + 'static, Fut>(
    mut fut: Pin<&mut Option<Fut>>,
    shared: &Shared<T>,
) -> Option<String> {
    if fut.is_none() {
        return None;
    }
    // An assignment whose old value panics in `Drop` still stores the new one: `fut` is
    // `None` afterwards either way.
    let payload = catch_unwind(AssertUnwindSafe(|| fut.set(None))).err()?;
    let message = message_of(payload);
    let meta = shared.header().meta();
    tracing::error!(
        pending = meta.id(),
        name = %meta.name(),
        panic = %message,
        "the future of a call panicked in Drop; the panic was caught"
    );
    Some(format!(
        "the future panicked while being dropped: {message}"
    ))
}

/// Why a call was given up because its caller stopped.
fn stop_reason<T: Send + 'static>(shared: &Shared<T>) -> String {
    let caller = shared.header().meta().caller().map_or("", |c| c.1);
    format!("caller '{caller}' stopped")
}

/// Finish `shared` with what the user code produced (or cancelled, if a cancel was asked
/// while it ran: the value is discarded). `drop_note` says the call's future panicked when
/// it was dropped (already logged).
fn finish<T: Send + 'static>(
    shared: &Arc<Shared<T>>,
    res: std::thread::Result<Result<T, Error>>,
    span: &tracing::Span,
    drop_note: Option<String>,
) {
    match res {
        Err(payload) => {
            let message = message_of(payload);
            tracing::error!(parent: span, panic = %message, "call panicked");
            shared.finish(Err(Error::Panicked { message }));
        }
        Ok(discarded) if shared.header().cancel_requested() => {
            // Dropped here, before the pending is done, so that the outcome can say if its
            // `Drop` panicked (regression: it was dropped after, and unwound into the loop).
            let note = join_notes(drop_note, dropped(shared, discarded, "discarded value"));
            shared.finish_cancelled_noting("", note.as_deref());
        }
        Ok(out) => match drop_note {
            // The future returned, then panicked when dropped: the call panicked.
            Some(message) => {
                let _ = dropped(shared, out, "value");
                shared.finish(Err(Error::Panicked { message }));
            }
            None => match out {
                Err(e) => {
                    if e.is_failure() {
                        tracing::debug!(parent: span, error = %e, "call failed");
                    }
                    shared.finish(Err(e));
                }
                Ok(v) => {
                    shared.finish(Ok(v));
                }
            },
        },
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
                // Made before the spawn: a task dropped before it ran (the caller stopped)
                // must still drop the closure, then finish its pending.
                let mut slot = Unrun(Some(*self));
                let view = slot.0.as_ref().map(|c| c.b.shared.view());
                rt::spawn_local(async move {
                    // A cancel ends the wait at once: the task does not linger for the
                    // delay. Not run, the slot drops the closure and finishes the pending.
                    let due = match &view {
                        Some(v) => sleep_unless_done(d, v).await,
                        None => false,
                    };
                    if due {
                        if let Some(call) = slot.0.take() {
                            call.run_now();
                        }
                    }
                });
            }
        }
    }

    fn refuse(self: Box<Self>, reason: &str) {
        self.give_up(reason);
    }
}

/// A delayed sync call waiting for its time. Dropped before it ran (its caller stopped),
/// it drops the closure, then finishes the pending cancelled.
struct Unrun<T, F>(Option<SyncCall<T, F>>)
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static;

impl<T, F> Drop for Unrun<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    fn drop(&mut self) {
        if let Some(call) = self.0.take() {
            let reason = stop_reason(&call.b.shared);
            call.give_up(&reason);
        }
    }
}

pub(super) struct AsyncCall<T, F> {
    pub(super) b: JobBuilder<T>,
    pub(super) f: F,
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
        let JobBuilder {
            shared,
            ctx,
            span,
            delay,
            guest,
        } = b;
        let counted = delay.is_none();
        if counted {
            rt::unstarted_add();
        }
        // Regression ("nothing is lost"): the task is made here, before the spawn, so a
        // task dropped before its first poll by a stopping caller still finishes its
        // pending (see `CallTask`'s `Drop`).
        let task = CallTask {
            shared,
            ctx,
            span,
            f: Some(f),
            fut: None,
            counted,
            guest,
        };
        match delay {
            None => rt::spawn_local(task),
            // Only delayed calls carry a timer.
            Some(d) => rt::spawn_local(async move {
                // Cancelled during the delay: the task is dropped at once, which drops
                // the closure and finishes the pending (see `CallTask`'s `Drop`).
                let view = task.shared.view();
                if sleep_unless_done(d, &view).await {
                    task.await
                }
            }),
        }
    }

    fn refuse(self: Box<Self>, reason: &str) {
        let AsyncCall { b, f } = *self;
        let note = dropped(&b.shared, f, "closure");
        b.shared.finish_cancelled_noting(reason, note.as_deref());
    }
}

pin_project_lite::pin_project! {
    /// The task that runs an async call on its caller's thread. Hand-written rather than
    /// an `async fn` so that it carries only what it needs (it lives as long as the call).
    ///
    /// First poll: claim the call, build the future (inside the call's context). Every
    /// poll: give up if a cancel was asked (dropping the future here, on its own thread),
    /// else poll the future inside the context. Panics are caught, those of the future's
    /// `Drop` too; the pending is finished after the future is dropped.
    ///
    /// Dropped before it finished (its caller stopped and dropped every task, on the
    /// caller's own thread), it drops the closure or future first and then finishes the
    /// pending cancelled, as a cancel does (regression: the pending was done first, and
    /// waiters and groups resumed while the future's destructor still ran).
    struct CallTask<T, F, Fut>
    where
        T: Send,
        T: 'static,
    {
        shared: Arc<Shared<T>>,
        ctx: Context,
        span: CallSpan,
        f: Option<F>,
        #[pin]
        fut: Option<Fut>,
        counted: bool,
        guest: bool,
    }

    impl<T, F, Fut> PinnedDrop for CallTask<T, F, Fut>
    where
        T: Send,
        T: 'static,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let shared = &**this.shared;
            if this.f.is_none() && this.fut.is_none() && shared.header().is_done() {
                return;
            }
            let closure = this.f.take().and_then(|f| dropped(shared, f, "closure"));
            let future = drop_future(this.fut, shared);
            if !shared.header().is_done() {
                let note = join_notes(closure, future);
                this.shared
                    .finish_cancelled_noting(&stop_reason(shared), note.as_deref());
            }
        }
    }
}

impl<T, F, Fut> Future for CallTask<T, F, Fut>
where
    T: Send + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if std::mem::take(this.counted) {
            rt::unstarted_done();
        }
        let shared = &*this.shared;
        let span = this.span.get();
        if let Some(f) = this.f.take() {
            let Some(f) = start_or_drop(shared, f) else {
                return Poll::Ready(());
            };
            let made = run_in_frame(this.ctx, &shared.view(), || {
                let _enter = span.enter();
                let _rt = enter_guest(*this.guest);
                catch_unwind(AssertUnwindSafe(f))
            });
            match made {
                Ok(fut) => this.fut.set(Some(fut)),
                Err(payload) => {
                    finish(shared, Err(payload), span, None);
                    return Poll::Ready(());
                }
            }
        }
        // Regression (lost wakeup): checking the flag, then storing the waker let a
        // cancel slip between the two and never wake this task.
        let res = if !shared.header().set_runner(cx.waker()) {
            Ok(Err(Error::cancelled("")))
        } else {
            let Some(fut) = this.fut.as_mut().as_pin_mut() else {
                return Poll::Ready(());
            };
            let polled = run_in_frame(this.ctx, &shared.view(), || {
                let _enter = span.enter();
                let _rt = enter_guest(*this.guest);
                catch_unwind(AssertUnwindSafe(|| fut.poll(cx)))
            });
            match polled {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(out)) => Ok(out),
                Err(payload) => Err(payload),
            }
        };
        // Drop the future here, on its own thread, before the pending is finished
        // (regression: a panic in its `Drop` unwound out of the task, and the pending was
        // reported as stopped while the caller still ran).
        let note = drop_future(this.fut, shared);
        finish(shared, res, span, note);
        Poll::Ready(())
    }
}

#[cfg(test)]
mod size_tests {
    /// A parked async call's task stays small: tokio's task cells grow in 128-byte steps,
    /// and every in-flight call pays for one.
    #[test]
    fn call_task_stays_small() {
        let shared =
            crate::pending::Shared::<()>::new(crate::pending::Metadata::new("x".into(), None));
        let task = super::CallTask {
            shared,
            ctx: Default::default(),
            span: super::CallSpan::new(tracing::Span::none()),
            f: Some(std::future::pending::<Result<(), crate::Error>>),
            fut: None::<std::future::Pending<Result<(), crate::Error>>>,
            counted: false,
            guest: false,
        };
        let size = std::mem::size_of_val(&task);
        assert!(size <= 32, "the call task grew to {size} bytes");
    }
}
