//! A queue's machinery: the queue itself (its items, the async runner task, the gate that
//! lets a close wait for the running item), the items the caller's inbox carries, and the
//! flush message.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::task::{Poll, Waker};

use super::{AnyQueue, QueueResult};
use crate::caller::{Fold, Msg};
use crate::context::{run_in_frame, Context};
use crate::error::panic_message;
use crate::job::Runnable;
use crate::pending::{AnyPending, Pending, Resolver};
use crate::rt::{unstarted_add, unstarted_done};
use crate::sync::{lock, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::unwind::drop_caught;

pub(super) enum Kind<F> {
    Sync(F),
    Async(F),
}

pub(super) struct Queue<A, F> {
    kind: Kind<F>,
    /// Arguments waiting for the async runner, each with whether it counts as unstarted
    /// work (it does only if the runner was idle: then it starts at the runner's next
    /// poll; behind a busy runner it waits for its queue, not for the caller).
    items: Mutex<VecDeque<(A, bool)>>,
    /// The async runner is waiting for items (touched only on the caller's thread).
    runner_idle: AtomicBool,
    runner: Mutex<Option<Waker>>,
    runner_spawned: AtomicBool,
    closed: AtomicBool,
    /// Whether an item is running, and how to finish the queue's pending when it stops
    /// (a close that came while it ran). Lock order: `gate` before the pending's lock.
    gate: Mutex<Gate>,
    pending: Pending<()>,
    ctx: Mutex<Context>,
    /// Calls handed to the queue on the caller's thread, and calls finished (run or
    /// skipped): a flush waits until `finished` reaches what `sent` was when it arrived.
    sent: AtomicU64,
    finished: AtomicU64,
    flushes: Mutex<Vec<(u64, Resolver<()>)>>,
    /// Whether `flushes` may hold a flush: a finished call looks at them only then.
    flushing: AtomicBool,
    /// See [`AnyQueue::function`].
    function: Option<&'static str>,
}

impl<A, F> Queue<A, F> {
    pub(super) fn new(
        kind: Kind<F>,
        pending: Pending<()>,
        ctx: Context,
        function: Option<&'static str>,
    ) -> Self {
        Queue {
            kind,
            items: Mutex::new(VecDeque::new()),
            runner: Mutex::new(None),
            runner_spawned: AtomicBool::new(false),
            runner_idle: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            gate: Mutex::new(Gate::default()),
            pending,
            ctx: Mutex::new(ctx),
            sent: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            flushes: Mutex::new(Vec::new()),
            flushing: AtomicBool::new(false),
            function,
        }
    }

    /// The span of one queued call, when debug spans can be enabled at all.
    fn span(&self) -> tracing::Span {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!("queued", queue = self.name())
        } else {
            tracing::Span::none()
        }
    }

    /// Whether the queue was closed (its calls no longer run).
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The pending the queue lives inside.
    pub(super) fn pending(&self) -> &Pending<()> {
        &self.pending
    }
}

#[derive(Default)]
struct Gate {
    running: bool,
    /// Set by a close while an item runs: `Some(reason)` if the caller stopped.
    finish: Option<Option<String>>,
}

impl<A: Send + 'static, F: Send + Sync + 'static> AnyQueue for Queue<A, F> {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    /// Close: items not started never run, the running one is cancelled (an async
    /// item's future is dropped at its next suspension point; a sync one cannot be
    /// interrupted), and the queue's pending is done once nothing runs.
    fn close(&self, reason: Option<&str>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Calls not yet run never will: a flush waiting for them ends cancelled (taken
        // before the runner is woken, whose cancelled item must not complete a flush).
        let flushes = std::mem::take(&mut *lock(&self.flushes));
        for (_, done) in flushes {
            done.any()
                .cancel(format!("queue '{}' was closed", self.name()));
        }
        if let Some(w) = lock(&self.runner).take() {
            w.wake();
        }
        {
            let mut gate = lock(&self.gate);
            if gate.running {
                gate.finish = Some(reason.map(str::to_owned));
                return;
            }
        }
        self.finish(reason);
    }

    fn view(&self) -> AnyPending {
        self.pending.any()
    }

    fn function(&self) -> Option<&'static str> {
        self.function
    }

    fn flush(self: Arc<Self>, done: Resolver<()>) -> Box<dyn Runnable> {
        Box::new(Flush { queue: self, done })
    }
}

/// A flush on its way through the caller's inbox: it arrives after every call sent before
/// it, and resolves once the queue has finished them.
struct Flush<A, F> {
    queue: Arc<Queue<A, F>>,
    done: Resolver<()>,
}

impl<A: Send + 'static, F: Send + Sync + 'static> Runnable for Flush<A, F> {
    fn inline(&self) -> bool {
        false
    }

    fn run(self: Box<Self>) {
        let Flush { queue, done } = *self;
        // Under the lock: a close either came first (seen here) or drains this flush after.
        let mut flushes = lock(&queue.flushes);
        if queue.closed.load(Ordering::Acquire) {
            drop(flushes);
            done.any()
                .cancel(format!("queue '{}' was closed", queue.name()));
            return;
        }
        // Set before `finished` is read: a call finishing meanwhile then looks (it runs
        // on this same thread today, but the order keeps it right from any thread).
        queue.flushing.store(true, Ordering::SeqCst);
        let target = queue.sent.load(Ordering::Acquire);
        if queue.finished.load(Ordering::SeqCst) >= target {
            drop(flushes);
            done.set_result(());
        } else {
            flushes.push((target, done));
        }
    }

    fn refuse(self: Box<Self>, reason: &str) {
        self.done.any().cancel(reason);
    }
}

impl<A, F> Queue<A, F> {
    /// One call sent to the queue (on the caller's thread).
    fn sent_one(&self) {
        self.sent_many(1);
    }

    /// `n` calls sent to the queue (on the caller's thread).
    fn sent_many(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::AcqRel);
    }

    /// One call finished (run, failed or skipped): resolve the flushes it completes.
    fn finished_one(&self) {
        self.finished_many(1);
    }

    /// `n` calls finished: resolve the flushes they complete.
    fn finished_many(&self, n: u64) {
        let finished = self.finished.fetch_add(n, Ordering::SeqCst) + n;
        if !self.flushing.load(Ordering::SeqCst) {
            return;
        }
        let mut flushes = lock(&self.flushes);
        let (ready, waiting): (Vec<_>, Vec<_>) = flushes
            .drain(..)
            .partition(|(target, _)| *target <= finished);
        *flushes = waiting;
        if flushes.is_empty() {
            self.flushing.store(false, Ordering::SeqCst);
        }
        drop(flushes);
        for (_, done) in ready {
            done.set_result(());
        }
    }
}

impl<A, F> Queue<A, F> {
    fn name(&self) -> &str {
        self.pending.metadata().name()
    }

    fn finish(&self, reason: Option<&str>) {
        match reason {
            Some(r) => self.pending.shared_finish_cancelled(r),
            // Finished by a cancel of the queue's pending: the outcome is cancelled.
            None => {
                self.pending.set_result(());
            }
        }
    }

    /// Claim the queue for one item; `false` if it is closed.
    fn begin(&self) -> bool {
        let mut gate = lock(&self.gate);
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        gate.running = true;
        true
    }

    /// The running item stopped: finish the queue if a close came meanwhile.
    fn end(&self) {
        let finish = {
            let mut gate = lock(&self.gate);
            gate.running = false;
            gate.finish.take()
        };
        if let Some(reason) = finish {
            self.finish(reason.as_deref());
        }
    }

    fn log(&self, res: std::thread::Result<Option<String>>) {
        match res {
            Ok(None) => {}
            Ok(Some(err)) => {
                tracing::error!(queue = self.name(), error = %err, "a queued call failed; the queue goes on")
            }
            Err(payload) => tracing::error!(
                queue = self.name(),
                panic = %panic_message(&*payload),
                "a queued call panicked; the queue goes on"
            ),
        }
    }
}

/// The queue a call is for: looked up (a strong handle), or the one this thread sent to
/// last (a weak one, so that a burst of calls touches no reference count).
pub(super) enum Target<'a, A, F> {
    Known(&'a Arc<Queue<A, F>>),
    Remembered(&'a Weak<dyn Any + Send + Sync>),
}

impl<A, F> Target<'_, A, F> {
    /// Whether `queue` is this target.
    fn is(&self, queue: &Arc<Queue<A, F>>) -> bool {
        match self {
            Target::Known(known) => Arc::ptr_eq(known, queue),
            Target::Remembered(weak) => std::ptr::addr_eq(Weak::as_ptr(weak), Arc::as_ptr(queue)),
        }
    }
}

/// Calls of one queue on their way through the caller's inbox: the arguments of a burst
/// of `queue_call`s that met no other message in the inbox, folded into one message (see
/// [`QueueItems::fold`]). One message per call would cost a box and an inbox push each.
pub(super) struct QueueItems<A, F> {
    queue: Arc<Queue<A, F>>,
    first: A,
    more: VecDeque<A>,
}

impl<A: Send + 'static, F: Send + Sync + 'static> QueueItems<A, F> {
    /// What to do with `args` for `target`'s caller, given `tail` (the message at the
    /// tail of its inbox): fold them into `tail` when that is an open batch of this queue,
    /// else push a new message (`new` makes its runnable). The order is the same either
    /// way: nothing was sent to the caller in between. A remembered queue that closed (or
    /// is gone) declines, and the sender looks the queue up again.
    pub(super) fn fold(
        target: Target<'_, A, F>,
        args: &mut Option<A>,
        tail: Option<&mut Msg>,
        new: fn(QueueItems<A, F>) -> Box<dyn Runnable>,
    ) -> Fold {
        if let Some(Msg::Run(tail)) = tail {
            if let Some(items) = tail
                .as_any_mut()
                .and_then(|any| any.downcast_mut::<QueueItems<A, F>>())
                .filter(|items| target.is(&items.queue) && !items.queue.is_closed())
            {
                items.more.extend(args.take());
                return Fold::Folded;
            }
        }
        let queue = match target {
            Target::Known(queue) => queue.clone(),
            Target::Remembered(weak) => match weak
                .upgrade()
                .and_then(|any| any.downcast::<Queue<A, F>>().ok())
                .filter(|queue| !queue.is_closed())
            {
                Some(queue) => queue,
                None => return Fold::Declined,
            },
        };
        match args.take() {
            Some(first) => Fold::Push(Msg::Run(new(QueueItems {
                queue,
                first,
                more: VecDeque::new(),
            }))),
            None => Fold::Declined,
        }
    }

    fn into_parts(self) -> (Arc<Queue<A, F>>, impl Iterator<Item = A>) {
        let QueueItems { queue, first, more } = self;
        (queue, std::iter::once(first).chain(more))
    }

    /// The caller stopped before these calls ran: drop their arguments.
    fn refused(self, reason: &str) {
        tracing::debug!(
            queue = self.queue.name(),
            reason,
            calls = 1 + self.more.len(),
            "queued calls dropped"
        );
        let (queue, calls) = self.into_parts();
        calls.for_each(|args| queue.drop_args(args));
    }
}

impl<A, F> Queue<A, F> {
    /// Drop the arguments of a call that will not run, one by one: a panicking `Drop` is
    /// logged, and cannot unwind into the next call's (a second panic while unwinding would
    /// abort the process).
    fn drop_args(&self, args: A) {
        if let Some(panic) = drop_caught(args) {
            tracing::error!(
                queue = self.name(),
                panic = %panic,
                "the arguments of a queued call panicked in Drop; the panic was caught"
            );
        }
    }
}

/// Sync calls: each runs inline, in order, on the caller's thread.
pub(super) struct SyncItems<A, F>(pub(super) QueueItems<A, F>);
/// Async calls: handed to the queue's runner task, in order.
pub(super) struct AsyncItems<A, F>(pub(super) QueueItems<A, F>);

impl<A, F, R> Runnable for SyncItems<A, F>
where
    A: Send + 'static,
    F: Fn(A) -> R + Send + Sync + 'static,
    R: QueueResult,
{
    fn inline(&self) -> bool {
        true
    }

    fn run(self: Box<Self>) {
        let (queue, calls) = self.0.into_parts();
        let Kind::Sync(func) = &queue.kind else {
            unreachable!("sync items of an async queue")
        };
        // One claim for the whole burst: a close meanwhile is seen before each call (the
        // rest are dropped), and finishes the queue when the burst is over.
        if !queue.begin() {
            tracing::debug!(queue = queue.name(), "calls dropped: the queue is closed");
            calls.for_each(|args| queue.drop_args(args));
            return;
        }
        let _end = EndItem(&*queue);
        let mut ctx = lock(&queue.ctx).clone();
        let view = queue.pending.any();
        // Counted once for the burst: a flush reads the counts on this thread, before or
        // after the burst, never inside it (it is a message of its own).
        let ran = run_in_frame(&mut ctx, &view, || {
            let mut ran = 0;
            for args in calls {
                if queue.is_closed() {
                    tracing::debug!(queue = queue.name(), "call dropped: the queue is closed");
                    queue.drop_args(args);
                    continue;
                }
                let span = queue.span();
                let res = {
                    let _enter = span.enter();
                    catch_unwind(AssertUnwindSafe(|| func(args).__error()))
                };
                queue.log(res);
                ran += 1;
            }
            ran
        });
        queue.sent_many(ran);
        queue.finished_many(ran);
    }

    fn refuse(self: Box<Self>, reason: &str) {
        (*self).0.refused(reason);
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(&mut self.0)
    }
}

impl<A, F, Fut, R> Runnable for AsyncItems<A, F>
where
    A: Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + 'static,
    R: QueueResult,
{
    fn inline(&self) -> bool {
        false
    }

    fn run(self: Box<Self>) {
        let (queue, calls) = self.0.into_parts();
        if queue.closed.load(Ordering::Acquire) {
            tracing::debug!(queue = queue.name(), "calls dropped: the queue is closed");
            calls.for_each(|args| queue.drop_args(args));
            return;
        }
        for args in calls {
            let first = !queue.runner_spawned.load(Ordering::Acquire);
            let counted = first || queue.runner_idle.load(Ordering::Acquire);
            if counted {
                unstarted_add();
                // Later items behind this one wait for it, not for the caller.
                queue.runner_idle.store(false, Ordering::Release);
            }
            lock(&queue.items).push_back((args, counted));
            queue.sent_one();
            if !queue.runner_spawned.swap(true, Ordering::AcqRel) {
                crate::rt::spawn_local(run_queue(queue.clone()));
            } else if let Some(w) = lock(&queue.runner).take() {
                w.wake();
            }
        }
    }

    fn refuse(self: Box<Self>, reason: &str) {
        (*self).0.refused(reason);
    }

    fn as_any_mut(&mut self) -> Option<&mut dyn Any> {
        Some(&mut self.0)
    }
}

/// Marks the end of a queue item, on every path out of it.
struct EndItem<'a, A, F>(&'a Queue<A, F>);

impl<A, F> Drop for EndItem<'_, A, F> {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The runner task of an async queue: one call at a time, in order, until closed.
async fn run_queue<A, F, Fut, R>(queue: Arc<Queue<A, F>>)
where
    A: Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + 'static,
    R: QueueResult,
{
    let Kind::Async(func) = &queue.kind else {
        unreachable!("async runner of a sync queue")
    };
    let view = queue.pending.any();
    let mut ctx = lock(&queue.ctx).clone();
    loop {
        let next = std::future::poll_fn(|cx| {
            if let Some(a) = lock(&queue.items).pop_front() {
                return Poll::Ready(Some(a));
            }
            if queue.closed.load(Ordering::Acquire) {
                return Poll::Ready(None);
            }
            queue.runner_idle.store(true, Ordering::Release);
            *lock(&queue.runner) = Some(cx.waker().clone());
            // A push may have landed between the pop and storing the waker.
            if !lock(&queue.items).is_empty() || queue.closed.load(Ordering::Acquire) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await;
        let Some((args, counted)) = next else { break };
        queue.runner_idle.store(false, Ordering::Release);
        if counted {
            unstarted_done();
        }
        if !queue.begin() {
            queue.drop_args(args);
            queue.finished_one();
            continue;
        }
        // Ends the item also when the runner task is dropped (the caller stopped).
        let _end = EndItem(&*queue);
        let span = queue.span();
        let made = run_in_frame(&mut ctx, &view, || {
            let _enter = span.enter();
            catch_unwind(AssertUnwindSafe(|| func(args)))
        });
        let res = match made {
            Err(p) => Err(p),
            Ok(fut) => {
                let mut fut = std::pin::pin!(Some(fut));
                std::future::poll_fn(|cx| {
                    // Let `close` wake this item's poll, then look whether it came.
                    {
                        let mut slot = lock(&queue.runner);
                        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            *slot = Some(cx.waker().clone());
                        }
                    }
                    if queue.closed.load(Ordering::Acquire) {
                        // Cancelled: drop the future here, on its own thread.
                        let dropped = run_in_frame(&mut ctx, &view, || {
                            catch_unwind(AssertUnwindSafe(|| fut.set(None)))
                        });
                        return Poll::Ready(match dropped {
                            Ok(()) => Ok(Some("cancelled: the queue was closed".to_owned())),
                            Err(p) => Err(p),
                        });
                    }
                    let Some(f) = fut.as_mut().as_pin_mut() else {
                        return Poll::Ready(Ok(None));
                    };
                    run_in_frame(&mut ctx, &view, || {
                        let _enter = span.enter();
                        match catch_unwind(AssertUnwindSafe(|| f.poll(cx))) {
                            Ok(Poll::Pending) => Poll::Pending,
                            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r.__error())),
                            Err(p) => Poll::Ready(Err(p)),
                        }
                    })
                })
                .await
            }
        };
        queue.log(res);
        queue.finished_one();
    }
    // Closed: what is left never runs.
    let left = std::mem::take(&mut *lock(&queue.items));
    for (args, counted) in left {
        if counted {
            unstarted_done();
        }
        queue.drop_args(args);
    }
}

impl<A, F> fmt::Debug for Queue<A, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("pending", &self.pending)
            .finish()
    }
}
