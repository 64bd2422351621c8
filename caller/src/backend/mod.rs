//! Backends: where a caller's tasks run.
//!
//! - Tokio (default): the caller's thread runs a current-thread runtime with a `LocalSet`
//!   (see `caller/scheduler.rs`).
//! - Host: a thread that something else owns (a GUI or game loop) runs the caller's tasks
//!   when its loop calls [`HostLoop::pump`]; see `host.rs`.
//!
//! Runtime code spawns and yields through this module, so it runs on either.

pub(crate) mod host;

pub use host::HostLoop;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Spawn a task on the current thread's caller loop, whatever its backend.
pub(crate) fn spawn_local<F: Future<Output = ()> + 'static>(fut: F) {
    if host::is_host_thread() {
        host::spawn(fut);
    } else {
        // A tokio caller loop (the only other kind) runs on this thread.
        drop(tokio::task::spawn_local(fut));
    }
}

/// Sleep on the current thread's caller loop: tokio's timer on a tokio caller, the
/// crate's timer thread on a host caller (which has no tokio driver).
pub(crate) async fn sleep(d: std::time::Duration) {
    if host::is_host_thread() {
        crate::timer::sleep(d).await;
    } else {
        tokio::time::sleep(d).await;
    }
}

/// Sleep out a delayed call's delay, unless its pending is done first (cancelled before it
/// started): then `false` at once, so that the task ends instead of holding the call (and
/// its timer) for the rest of the delay.
pub(crate) async fn delay(d: std::time::Duration, pending: &crate::AnyPending) -> bool {
    let sleep = std::pin::pin!(sleep(d));
    match futures::future::select(sleep, pending.wait_done(None)).await {
        futures::future::Either::Left(_) => true,
        futures::future::Either::Right(_) => false,
    }
}

/// Yield once to the loop: other ready tasks run before this one continues.
pub(crate) fn yield_now() -> YieldNow {
    YieldNow(false)
}

pub(crate) struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
