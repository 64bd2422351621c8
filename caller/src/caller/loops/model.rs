//! loom models of the loop hand-off: the inbox, the loop's [`LoopWake`] waker and the
//! spin before a park (run with the pending models, see `pending/models.rs`).
//!
//! The loop is modelled as tokio runs it: poll the loop's future ([`Watched`]) with the
//! runtime's waker; when it is pending, call the park hook ([`Spin::before_park`]), park
//! until the runtime's waker fires (a wake before the park is kept, as tokio's unpark
//! token), then go round again. A push whose wake-up is lost leaves the
//! loop parked for ever: loom reports the deadlock.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::spin::{LoopWake, Spin, Watched};
use crate::caller::inbox::{Inbox, Msg};
use crate::sync::model;
use crate::sync::{lock, Condvar, Mutex};

/// The runtime's waker: unparks the loop's thread. A wake-up before the park is kept (the
/// token of tokio's park).
struct Unpark {
    token: Mutex<bool>,
    cond: Condvar,
}

impl Unpark {
    fn park(&self) {
        let mut token = lock(&self.token);
        while !*token {
            token = self.cond.wait(token).unwrap_or_else(|e| e.into_inner());
        }
        *token = false;
    }
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        *lock(&self.token) = true;
        self.cond.notify_one();
    }
}

/// Run the loop until the inbox is closed and empty; returns the messages it received.
/// `budget_ns` is the spin budget (0: park at once).
fn run_loop(inbox: &Inbox, budget_ns: u64, ran: &AtomicUsize) -> usize {
    let wake = LoopWake::new();
    let spin = Spin::new(Arc::downgrade(&wake));
    spin.budget_ns
        .store(budget_ns, crate::sync::Ordering::Relaxed);
    let unpark = Arc::new(Unpark {
        token: Mutex::new(false),
        cond: Condvar::new(),
    });
    let runtime = Waker::from(unpark.clone());
    let mut batch = VecDeque::new();
    let mut received = 0;
    let mut watched = Watched::new(
        std::future::poll_fn(|cx| loop {
            match inbox.poll_recv(cx, &mut batch) {
                Poll::Ready(true) => {
                    for msg in batch.drain(..) {
                        received += 1;
                        if let Msg::Direct(f) = msg {
                            f();
                        }
                    }
                }
                Poll::Ready(false) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }),
        &wake,
    );
    loop {
        let mut cx = Context::from_waker(&runtime);
        if Pin::new(&mut watched).poll(&mut cx).is_ready() {
            break;
        }
        spin.before_park();
        unpark.park();
        // The unpark hook (`Spin::after_unpark`) is left out: it only adapts the budget to
        // the wall-clock time slept, which a model cannot replay; each model fixes the
        // budget instead.
    }
    drop(watched);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        received,
        "every received call ran"
    );
    received
}

fn push(inbox: &Inbox, ran: &Arc<AtomicUsize>) -> bool {
    let r = ran.clone();
    match inbox.push(Msg::Direct(Box::new(move || {
        r.fetch_add(1, Ordering::SeqCst);
    }))) {
        Ok(()) => true,
        // Handed back: the pusher refuses it (the caller stopped).
        Err(_) => false,
    }
}

#[test]
fn loom_a_push_while_the_loop_parks_or_spins_is_never_lost() {
    for budget_ns in [0, 5_000] {
        model(move || {
            let inbox = Arc::new(Inbox::new());
            let ran = Arc::new(AtomicUsize::new(0));
            let (i, r) = (inbox.clone(), ran.clone());
            let pusher = thread::spawn(move || {
                assert!(push(&i, &r), "the inbox is open");
                assert!(push(&i, &r), "the inbox is open");
            });
            let (i, r) = (inbox.clone(), ran.clone());
            let looper = thread::spawn(move || run_loop(&i, budget_ns, &r));
            pusher.join().unwrap();
            // Both calls ran before the stop: the loop saw every push.
            loom::future::block_on(std::future::poll_fn(|cx| {
                if ran.load(Ordering::SeqCst) == 2 {
                    Poll::Ready(())
                } else {
                    // Woken by nothing: a loop that lost a push leaves this (and loom)
                    // deadlocked; one that ran both is seen on the next check.
                    cx.waker().wake_by_ref();
                    thread::yield_now();
                    Poll::Pending
                }
            }));
            assert!(inbox.close().is_empty());
            assert_eq!(looper.join().unwrap(), 2);
        });
    }
}

#[test]
fn loom_a_push_racing_a_stop_runs_or_is_handed_back() {
    model(|| {
        let inbox = Arc::new(Inbox::new());
        let ran = Arc::new(AtomicUsize::new(0));
        let (i, r) = (inbox.clone(), ran.clone());
        let pusher = thread::spawn(move || push(&i, &r));
        let (i, r) = (inbox.clone(), ran.clone());
        let looper = thread::spawn(move || run_loop(&i, 5_000, &r));
        let leftovers = inbox.close().len();
        let accepted = pusher.join().unwrap();
        let received = looper.join().unwrap();
        // Accepted: the loop ran it, or the stop took it back to refuse it. Refused: the
        // pusher has it. Never both, never neither.
        assert_eq!(
            usize::from(accepted),
            received + leftovers,
            "accepted {accepted}, ran {received}, left {leftovers}"
        );
    });
}
