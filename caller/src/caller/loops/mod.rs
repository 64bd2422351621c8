//! The loop protocol: the steps of a caller's life on its thread, written once for every
//! backend.
//!
//! Every loop goes through the same steps; only "run" differs by backend:
//!
//! | step | what happens | written in |
//! |---|---|---|
//! | start | the thread is marked as the caller's ([`OnLoop`]: loop id and spawner), the not-yet-started count is reset, the caller is marked started | [`LoopRun::start`] |
//! | run | the [`scheduler`] runs: it takes the inbox's messages in order and runs them (sync calls inline, async calls spawned) | tokio: `block_on` (`tokio.rs`); host: each `pump` (`host.rs`) |
//! | stop | what is still queued is refused, the backend drops its tasks on this thread (running calls finish cancelled), the thread's state is dropped, the caller leaves the registry and says `stopped` | [`LoopRun::stop`] |
//!
//! A backend is a [`LoopBackend`]: the spawner its tasks go to, and how to drop its
//! tasks. A third backend implements it in one file and drives `scheduler` its own way.

mod host;
#[cfg(all(test, caller_loom))]
mod model;
mod spin;
mod tokio;

pub use host::HostLoop;
pub(super) use tokio::{run_here, run_inside, run_thread};

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::inbox::Msg;
use super::{registry, Caller, CallerState};
use crate::rt::{self, CallerId, Spawner};
use crate::sync::{lock, Ordering};
use crate::unwind::message_of;

/// What a backend gives the loop protocol.
pub(crate) trait LoopBackend {
    /// Where the tasks of this loop go; installed on the thread while the loop runs.
    fn spawner(&self) -> Spawner;
    /// Drop every task still in the loop, on this thread: running calls are dropped
    /// where they run and finish cancelled. Then the thread's own state (see
    /// [`state`](crate::state)) is dropped, inside whatever context the backend's tasks
    /// needed (tokio's runtime), since that state may hold such resources too.
    fn drop_tasks(&mut self);
}

/// Marks this thread as running caller `id`'s loop, with its spawner, until dropped: for
/// a loop's whole life on a thread it owns, or for each poll of a loop that shares its
/// thread with other tasks (`run_inside`).
pub(crate) struct OnLoop {
    prev_loop: Option<CallerId>,
    prev_spawner: Option<Spawner>,
}

impl OnLoop {
    pub(crate) fn enter(id: CallerId, spawner: Spawner) -> OnLoop {
        OnLoop {
            prev_loop: rt::set_loop(Some(id)),
            prev_spawner: rt::install(Some(spawner)),
        }
    }
}

impl Drop for OnLoop {
    fn drop(&mut self) {
        rt::install(self.prev_spawner.take());
        rt::set_loop(self.prev_loop);
    }
}

/// One run of a caller's loop on this thread, from start to stop; see the module docs.
pub(crate) struct LoopRun<B: LoopBackend> {
    caller: Caller,
    pub(crate) backend: B,
    /// Set when the loop owns the thread for its whole life.
    on: Option<OnLoop>,
}

impl<B: LoopBackend> LoopRun<B> {
    /// Start the loop of `caller` on this thread with `backend`. `owns_thread`: the thread
    /// is marked as the loop's from now until [`stop`](Self::stop); otherwise only while
    /// [`enter`](Self::enter)'s guard lives (each poll).
    pub(crate) fn start(caller: &Caller, backend: B, owns_thread: bool) -> LoopRun<B> {
        let on = OnLoop::enter(caller.id(), backend.spawner());
        rt::unstarted_reset();
        mark_started(caller);
        LoopRun {
            caller: caller.clone(),
            on: owns_thread.then_some(on),
            backend,
        }
    }

    /// Mark this thread as the loop's while the guard lives.
    pub(crate) fn enter(&self) -> OnLoop {
        OnLoop::enter(self.caller.id(), self.backend.spawner())
    }

    /// The stop step: refuse what is still queued, drop the backend's tasks, leave the
    /// thread, then say `stopped`.
    pub(crate) fn stop(self) {
        let LoopRun {
            caller,
            mut backend,
            on,
        } = self;
        let on = on.unwrap_or_else(|| OnLoop::enter(caller.id(), backend.spawner()));
        refuse_leftovers(&caller);
        backend.drop_tasks();
        drop(backend);
        drop(on);
        finish(&caller);
    }
}

/// Mark the loop as started (unless a stop came first).
fn mark_started(caller: &Caller) {
    let _ = caller
        .inner
        .state
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    caller.inner.started.set_result(());
    tracing::debug!(caller = %caller.name(), id = %caller.id(), "caller started");
}

/// Wait until every async call spawned so far has been polled once.
async fn wait_started() {
    while rt::unstarted() > 0 {
        rt::yield_now().await;
    }
}

/// The run step every backend drives: take the inbox's messages in order and run them
/// until the caller stops; then refuse what was taken but not run, and stop the children
/// (waiting until they have stopped).
///
/// Inline work (a sync call, a direct call) first waits until every async call spawned
/// before it has been polled once, so calls from one thread *start* in the order they were
/// scheduled.
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
                    // Calls catch the panics of user code themselves; this is the last
                    // line (a queued call's arguments dropped by a closed queue): nothing
                    // unwinds out of the loop.
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| r.run())) {
                        tracing::error!(
                            caller = %caller.name(),
                            panic = %message_of(payload),
                            "a call panicked outside its own guard; the caller goes on"
                        );
                    }
                }
                Msg::Direct(f) => {
                    wait_started().await;
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                        tracing::error!(
                            caller = %caller.name(),
                            panic = %message_of(payload),
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
fn refuse_leftovers(caller: &Caller) {
    let reason = caller.stop_reason();
    for msg in caller.inner.inbox.close() {
        msg.refuse(&reason);
    }
}

/// Leave the registry and the parent, and signal `stopped`.
fn finish(caller: &Caller) {
    registry::remove(caller);
    if let Some(parent) = caller.parent() {
        lock(&parent.inner.children).retain(|c| c != caller);
    }
    caller.inner.state.store(3, Ordering::Release);
    tracing::info!(caller = %caller.name(), "caller stopped");
    caller.inner.stopped.set_result(());
}
