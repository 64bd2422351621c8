//! The loop that runs on a caller's thread, and the inbox that feeds it.
//!
//! The inbox is a mutex-guarded queue with a `closed` flag: a push either lands before
//! the close (and the loop runs or refuses it) or is handed back to the pusher (which
//! refuses it), so no call is ever lost between the two. The loop takes the whole queue
//! at once, then runs each message in order: sync calls inline, async calls spawned on
//! the `LocalSet`. Inline work first waits until every async call spawned before it has
//! been polled once, so calls from one thread *start* in the order they were scheduled.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::{Context, Poll, Waker};

use super::{registry, Caller, CallerState};
use crate::context::set_loop;
use crate::error::{panic_message, Error};
use crate::job::{unstarted, Runnable};
use crate::sync::{lock, Mutex, Ordering};

pub(crate) enum Msg {
    Run(Box<dyn Runnable>),
    Direct(Box<dyn FnOnce() + Send>),
}

impl Msg {
    pub(super) fn refuse(self, reason: &str) {
        match self {
            Msg::Run(r) => r.refuse(reason),
            Msg::Direct(_) => {
                tracing::debug!(reason, "a direct call was dropped: the caller stopped")
            }
        }
    }
}

pub(crate) struct Inbox {
    q: Mutex<Queue>,
}

struct Queue {
    items: VecDeque<Msg>,
    closed: bool,
    waker: Option<Waker>,
}

impl Inbox {
    pub(super) fn new() -> Self {
        Inbox {
            q: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
                waker: None,
            }),
        }
    }

    /// Queue `msg`; hands it back if the inbox is closed.
    pub(crate) fn push(&self, msg: Msg) -> Result<(), Msg> {
        let mut q = lock(&self.q);
        if q.closed {
            return Err(msg);
        }
        q.items.push_back(msg);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Close the inbox; returns what was still queued.
    pub(super) fn close(&self) -> VecDeque<Msg> {
        let mut q = lock(&self.q);
        q.closed = true;
        let items = std::mem::take(&mut q.items);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        items
    }

    /// Move everything queued into `out`. `Ready(false)` once closed and empty.
    fn poll_recv(&self, cx: &mut Context<'_>, out: &mut VecDeque<Msg>) -> Poll<bool> {
        let mut q = lock(&self.q);
        if !q.items.is_empty() {
            std::mem::swap(&mut q.items, out);
            return Poll::Ready(true);
        }
        if q.closed {
            return Poll::Ready(false);
        }
        match &mut q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

fn build_runtime(caller: &Caller) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            tracing::error!(caller = %caller.name(), error = %e, "cannot build the caller's runtime");
            Error::invalid(format!("cannot build a tokio runtime: {e}"))
        })
}

/// Mark the loop as started (unless a stop came first).
pub(crate) fn mark_started(caller: &Caller) {
    let _ = caller
        .inner
        .state
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    caller.inner.started.set_result(());
    tracing::debug!(caller = %caller.name(), id = %caller.id(), "caller started");
}

/// The body of a new-thread caller.
pub(super) fn run_thread(caller: Caller) {
    registry::adopt_thread_id(caller.id());
    let rt = match build_runtime(&caller) {
        Ok(rt) => rt,
        Err(_) => {
            caller.stop(true);
            finish(&caller);
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    let prev = set_loop(Some(caller.id()));
    crate::job::unstarted_reset();
    mark_started(&caller);
    local.block_on(&rt, scheduler(caller.clone()));
    shutdown(&caller, local, &rt);
    drop(rt);
    set_loop(prev);
    finish(&caller);
}

/// The body of a caller entered on the current thread for the life of `fut`.
pub(super) fn run_here<F: Future>(caller: Caller, fut: F) -> Result<F::Output, Error> {
    let rt = match build_runtime(&caller) {
        Ok(rt) => rt,
        Err(e) => {
            caller.stop(true);
            finish(&caller);
            return Err(e);
        }
    };
    let local = tokio::task::LocalSet::new();
    let prev = set_loop(Some(caller.id()));
    crate::job::unstarted_reset();
    mark_started(&caller);
    let mut sched = local.spawn_local(scheduler(caller.clone()));
    let out = local.block_on(&rt, async {
        let fut = std::pin::pin!(fut);
        match futures::future::select(fut, &mut sched).await {
            futures::future::Either::Left((out, _)) => Ok(out),
            futures::future::Either::Right(_) => Err(Error::CallerStopped {
                caller: caller.name().to_owned(),
            }),
        }
    });
    caller.stop(true);
    // Let the loop finish its stop sequence (children first).
    let _ = local.block_on(&rt, sched);
    shutdown(&caller, local, &rt);
    drop(rt);
    set_loop(prev);
    finish(&caller);
    out
}

/// Wait until every async call spawned so far has been polled once.
async fn wait_started() {
    while unstarted() > 0 {
        crate::backend::yield_now().await;
    }
}

pub(crate) async fn scheduler(caller: Caller) {
    let inbox = &caller.inner.inbox;
    let mut batch = VecDeque::new();
    'outer: loop {
        let open = std::future::poll_fn(|cx| inbox.poll_recv(cx, &mut batch)).await;
        while let Some(msg) = batch.pop_front() {
            if caller.state() >= CallerState::Stopping {
                batch.push_front(msg);
                break 'outer;
            }
            match msg {
                Msg::Run(r) => {
                    if r.inline() {
                        wait_started().await;
                    }
                    r.run();
                }
                Msg::Direct(f) => {
                    wait_started().await;
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                        tracing::error!(
                            caller = %caller.name(),
                            panic = %panic_message(&*payload),
                            "a direct call panicked"
                        );
                    }
                }
            }
        }
        if !open {
            break;
        }
    }
    let reason = caller.stop_reason();
    for msg in batch.drain(..) {
        msg.refuse(&reason);
    }
    // Children first: stop them and wait until they have stopped.
    let children = caller.children();
    for child in &children {
        child.stop(true);
    }
    for child in &children {
        let _ = child.stopped().await;
    }
}

/// Refuse what is still queued (it never started).
pub(crate) fn refuse_leftovers(caller: &Caller) {
    let reason = caller.stop_reason();
    for msg in caller.inner.inbox.close() {
        msg.refuse(&reason);
    }
}

/// Cancel everything left: what is still queued (never started) and every running task
/// (dropped here, on the caller's own thread, by dropping the `LocalSet`).
fn shutdown(caller: &Caller, local: tokio::task::LocalSet, rt: &tokio::runtime::Runtime) {
    refuse_leftovers(caller);
    let _enter = rt.enter();
    drop(local);
}

/// Leave the registry and the parent, and signal `stopped`.
pub(crate) fn finish(caller: &Caller) {
    registry::remove(caller);
    if let Some(parent) = caller.parent() {
        lock(&parent.inner.children).retain(|c| c != caller);
    }
    caller.inner.state.store(3, Ordering::Release);
    tracing::info!(caller = %caller.name(), "caller stopped");
    caller.inner.stopped.set_result(());
}
