//! The caller's inbox: a mutex-guarded queue with a `closed` flag. A push either lands
//! before the close (and the loop runs or refuses it) or is handed back to the pusher
//! (which refuses it), so no call is ever lost between the two. The loop takes the whole
//! queue at once (see `loops/mod.rs`).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::task::{Context, Poll, Waker};

use crate::job::Runnable;
use crate::sync::{lock, Mutex};
use crate::unwind::message_of;

pub(crate) enum Msg {
    Run(Box<dyn Runnable>),
    Direct(Box<dyn FnOnce() + Send>),
}

impl Msg {
    /// Refuse the message because the caller stopped. User data dropped here (a closure,
    /// a queued call's arguments) may panic in `Drop`: the panic is caught and logged, so
    /// that `stop()` never panics and refuses the rest (regression: the panic came out of
    /// `stop()`, and the calls behind it were never finished).
    pub(crate) fn refuse(self, reason: &str) {
        let refused = catch_unwind(AssertUnwindSafe(|| match self {
            Msg::Run(r) => r.refuse(reason),
            Msg::Direct(f) => {
                tracing::debug!(reason, "a direct call was dropped: the caller stopped");
                drop(f);
            }
        }));
        if let Err(payload) = refused {
            tracing::error!(
                reason,
                panic = %message_of(payload),
                "a refused call panicked in Drop; the panic was caught"
            );
        }
    }
}

/// What a sender does with the inbox's tail; see [`Inbox::push_with`].
pub(crate) enum Fold {
    /// Folded into the tail message.
    Folded,
    /// Pushed as a new message.
    Push(Msg),
    /// Neither: the sender goes another way.
    Declined,
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

    /// Queue what `make` decides, after letting it look at the message at the tail of the
    /// queue (not yet taken by the loop): `make` may fold its content into that message,
    /// which keeps the order a push would have given, without a new message; or push a
    /// message; or decline (then nothing happens: `Ok(false)`). `Err(())` if the inbox is
    /// closed (`make` is not called).
    pub(crate) fn push_with(
        &self,
        make: impl FnOnce(Option<&mut Msg>) -> Fold,
    ) -> Result<bool, ()> {
        let mut q = lock(&self.q);
        if q.closed {
            return Err(());
        }
        let msg = match make(q.items.back_mut()) {
            // Folded into a message the loop was already woken for.
            Fold::Folded => return Ok(true),
            Fold::Declined => return Ok(false),
            Fold::Push(msg) => msg,
        };
        q.items.push_back(msg);
        let waker = q.waker.take();
        drop(q);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(true)
    }

    /// Close the inbox; returns what was still queued.
    pub(crate) fn close(&self) -> VecDeque<Msg> {
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
    pub(super) fn poll_recv(&self, cx: &mut Context<'_>, out: &mut VecDeque<Msg>) -> Poll<bool> {
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
