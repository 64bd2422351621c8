//! The tokio loop: a current-thread runtime with a `LocalSet`, run three ways — on a
//! thread of its own ([`run_thread`]), on the calling thread for the life of a future
//! ([`run_here`]), and inside a tokio runtime that something else drives ([`run_inside`]).
//! Each follows the loop protocol of `mod.rs`; the run step is tokio's `block_on` (or the
//! outer runtime's polls), watched by the spin of `spin.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::spin::{LoopWake, Spin, Watched};
use super::{finish, scheduler, LoopBackend, LoopRun};
use crate::caller::{Caller, CallerState};
use crate::error::Error;
use crate::rt::{self, Spawner};
use crate::sync::{AtomicBool, Ordering};

/// The tokio backend: tasks go to the `LocalSet`, dropped inside the runtime (if the loop
/// has one of its own) when the loop stops.
struct TokioLoop {
    rt: Option<tokio::runtime::Runtime>,
    local: Option<tokio::task::LocalSet>,
}

impl LoopBackend for TokioLoop {
    fn spawner(&self) -> Spawner {
        Spawner::Tokio
    }

    fn drop_tasks(&mut self) {
        let _enter = self.rt.as_ref().map(tokio::runtime::Runtime::enter);
        // Running calls are dropped here, on the caller's own thread.
        drop(self.local.take());
        // The thread's state (`new_thread_with`) goes with its calls, before `stopped`.
        crate::state::clear();
    }
}

impl TokioLoop {
    fn local(&self) -> &tokio::task::LocalSet {
        self.local
            .as_ref()
            .expect("the LocalSet lives until the loop stops")
    }

    /// Run `fut` on the `LocalSet` inside the loop's runtime, watched by `wake` (what
    /// `LocalSet::block_on` does).
    fn block_on<F: Future>(&self, wake: &Arc<LoopWake>, fut: F) -> F::Output {
        let rt = self.rt.as_ref().expect("a loop that blocks has a runtime");
        let _marked = wake.mark_thread();
        rt.block_on(Watched::new(Box::pin(self.local().run_until(fut)), wake))
    }
}

fn build_runtime(caller: &Caller, wake: &Arc<LoopWake>) -> Result<tokio::runtime::Runtime, Error> {
    // The park hooks live in the runtime's handle, and the runtime's waker (kept in
    // `wake`) holds that handle: the hooks reach `wake` weakly, or the two would keep each
    // other (about 8 KiB per caller) for ever.
    let spin = Arc::new(Spin::new(Arc::downgrade(wake)));
    let after = spin.clone();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(move || spin.before_park())
        .on_thread_unpark(move || after.after_unpark())
        .build()
        .map_err(|e| {
            tracing::error!(caller = %caller.name(), error = %e, "cannot build the caller's runtime");
            Error::invalid(format!("cannot build a tokio runtime: {e}"))
        })
}

/// Start the loop of `caller` on this thread with a runtime of its own, or say why not
/// (the caller is then stopped and finished: nothing waits for it for ever).
fn start(caller: &Caller, wake: &Arc<LoopWake>) -> Result<LoopRun<TokioLoop>, Error> {
    match build_runtime(caller, wake) {
        Ok(rt) => {
            let backend = TokioLoop {
                rt: Some(rt),
                local: Some(tokio::task::LocalSet::new()),
            };
            Ok(LoopRun::start(caller, backend, true))
        }
        Err(e) => {
            caller.stop(true);
            finish(caller);
            Err(e)
        }
    }
}

/// The body of a new-thread caller.
pub(in crate::caller) fn run_thread(caller: Caller) {
    caller.id().adopt();
    let wake = LoopWake::new();
    let Ok(run) = start(&caller, &wake) else {
        return;
    };
    run.backend.block_on(&wake, scheduler(caller.clone()));
    run.stop();
}

/// The body of a caller entered on the current thread for the life of `fut`.
pub(in crate::caller) fn run_here<F: Future>(caller: Caller, fut: F) -> Result<F::Output, Error> {
    let wake = LoopWake::new();
    let run = start(&caller, &wake)?;
    // The scheduler runs inside the `block_on` future, beside `fut`, rather than as a task
    // of its own: a call made from `fut` then needs no task wake-up and no task switch.
    let mut sched = std::pin::pin!(scheduler(caller.clone()));
    let out = run.backend.block_on(&wake, async {
        let fut = std::pin::pin!(fut);
        Beside::new(fut, sched.as_mut(), &wake).await
    });
    caller.stop(true);
    // Let the loop finish its stop sequence (children first).
    run.backend.block_on(&wake, sched);
    run.stop();
    out.into_result(&caller)
}

/// The body of a caller entered on the current thread *inside* a tokio runtime that
/// something else drives (`CallerBuilder::run_here`): the caller's `LocalSet` and loop run
/// inside this future, beside `fut`, and the thread is marked as the caller's only while
/// this future is polled (other tasks of the runtime share the thread between polls).
/// Dropping the future stops the caller like its end does.
pub(in crate::caller) async fn run_inside<F: Future>(
    caller: Caller,
    fut: F,
) -> Result<F::Output, Error> {
    let backend = TokioLoop {
        rt: None,
        local: Some(tokio::task::LocalSet::new()),
    };
    let mut here = Here {
        run: Some(LoopRun::start(&caller, backend, false)),
        prev_owner: rt::set_owner(Some(caller.id())),
    };
    let wake = LoopWake::new();
    let mut sched = std::pin::pin!(scheduler(caller.clone()));
    let out = {
        let run = here.run.as_ref().expect("set above");
        let local = run.backend.local();
        let mut watched = Watched::new(
            Box::pin(local.run_until(async {
                let fut = std::pin::pin!(fut);
                Beside::new(fut, sched.as_mut(), &wake).await
            })),
            &wake,
        );
        std::future::poll_fn(|cx| {
            let _on = run.enter();
            Pin::new(&mut watched).poll(cx)
        })
        .await
    };
    caller.stop(true);
    // Let the loop finish its stop sequence (children first).
    {
        let run = here.run.as_ref().expect("set above");
        let mut rest = std::pin::pin!(run.backend.local().run_until(sched));
        std::future::poll_fn(|cx| {
            let _on = run.enter();
            rest.as_mut().poll(cx)
        })
        .await;
    }
    here.finish();
    out.into_result(&caller)
}

/// Ends a caller run by [`run_inside`]: on its end, or when its future is dropped first.
struct Here {
    run: Option<LoopRun<TokioLoop>>,
    prev_owner: Option<crate::rt::CallerId>,
}

impl Here {
    fn finish(&mut self) {
        let Some(run) = self.run.take() else {
            return;
        };
        let caller = run.caller.clone();
        {
            let _on = run.enter();
            // Dropped before its end: stop the caller and its children here.
            if caller.state() < CallerState::Stopping {
                caller.stop(true);
            }
            for child in caller.children() {
                child.stop(true);
            }
        }
        rt::set_owner(self.prev_owner);
        run.stop();
    }
}

impl Drop for Here {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How the user's future and the scheduler beside it ended.
enum Ended<T> {
    /// The user's future finished.
    Done(T),
    /// The scheduler ended first: the caller was stopped.
    Stopped,
}

impl<T> Ended<T> {
    fn into_result(self, caller: &Caller) -> Result<T, Error> {
        match self {
            Ended::Done(out) => Ok(out),
            Ended::Stopped => Err(Error::CallerStopped {
                caller: caller.name().to_owned(),
            }),
        }
    }
}

/// Polls the user's future and the scheduler side by side until one finishes, each only
/// when its own waker fired (so the user's future is not polled for every call the
/// scheduler runs, nor the reverse). Both wakers wake the loop through its [`LoopWake`].
struct Beside<A, B> {
    a: A,
    b: B,
    a_wake: Arc<SideWake>,
    b_wake: Arc<SideWake>,
    a_waker: Waker,
    b_waker: Waker,
}

struct SideWake {
    woken: AtomicBool,
    outer: Arc<LoopWake>,
}

impl Wake for SideWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.outer.wake_by_ref();
        }
    }
}

impl<A: Future + Unpin, B: Future<Output = ()> + Unpin> Beside<A, B> {
    fn new(a: A, b: B, outer: &Arc<LoopWake>) -> Self {
        let side = || {
            Arc::new(SideWake {
                woken: AtomicBool::new(true),
                outer: outer.clone(),
            })
        };
        let (a_wake, b_wake) = (side(), side());
        Beside {
            a,
            b,
            a_waker: Waker::from(a_wake.clone()),
            b_waker: Waker::from(b_wake.clone()),
            a_wake,
            b_wake,
        }
    }
}

impl<A: Future + Unpin, B: Future<Output = ()> + Unpin> Future for Beside<A, B> {
    type Output = Ended<A::Output>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // Clear a side's flag before polling it: a wake-up during the poll sets it again.
        // (Load first: a flag left clear needs no read-modify-write.)
        if this.a_wake.woken.load(Ordering::Relaxed)
            && this.a_wake.woken.swap(false, Ordering::AcqRel)
        {
            let cx = &mut Context::from_waker(&this.a_waker);
            if let Poll::Ready(out) = Pin::new(&mut this.a).poll(cx) {
                return Poll::Ready(Ended::Done(out));
            }
        }
        if this.b_wake.woken.load(Ordering::Relaxed)
            && this.b_wake.woken.swap(false, Ordering::AcqRel)
        {
            let cx = &mut Context::from_waker(&this.b_waker);
            if Pin::new(&mut this.b).poll(cx).is_ready() {
                return Poll::Ready(Ended::Stopped);
            }
        }
        Poll::Pending
    }
}
