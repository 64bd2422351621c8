//! An executor-independent timer.
//!
//! Waits with a timeout must work from any executor (tokio, `futures::executor`, another
//! caller) without a tokio context, so the crate keeps one lazily started timer thread. It
//! holds deadlines in an ordered map and sleeps on a condvar until the earliest one. Each
//! [`Sleep`] removes its entry when dropped, so abandoned timeouts cost nothing.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::sync::{lock, Condvar, Mutex};

struct Timers {
    entries: Mutex<Entries>,
    cond: Condvar,
}

#[derive(Default)]
struct Entries {
    next_id: u64,
    map: BTreeMap<(Instant, u64), Waker>,
}

fn timers() -> &'static Timers {
    static TIMERS: OnceLock<&'static Timers> = OnceLock::new();
    TIMERS.get_or_init(|| {
        let t: &'static Timers = Box::leak(Box::new(Timers {
            entries: Mutex::new(Entries::default()),
            cond: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("caller-timer".into())
            .spawn(move || run(t))
            .expect("caller: cannot start the timer thread");
        t
    })
}

fn run(t: &'static Timers) {
    let mut entries = lock(&t.entries);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(entry) = entries.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            drop(entries);
            due.into_iter().for_each(Waker::wake);
            entries = lock(&t.entries);
            continue;
        }
        entries = match entries.map.keys().next() {
            Some(&(deadline, _)) => {
                let wait = deadline.saturating_duration_since(now);
                t.cond
                    .wait_timeout(entries, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => t.cond.wait(entries).unwrap_or_else(|e| e.into_inner()),
        };
    }
}

/// A future that completes at `deadline`; works on any executor. A deadline too far to
/// represent (`Duration::MAX` from now) never comes.
pub(crate) struct Sleep {
    deadline: Option<Instant>,
    key: Option<(Instant, u64)>,
}

impl Sleep {
    pub(crate) fn until(deadline: Option<Instant>) -> Self {
        Sleep {
            deadline,
            key: None,
        }
    }

    pub(crate) fn new(after: Duration) -> Self {
        Self::until(Instant::now().checked_add(after))
    }
}

impl Sleep {
    /// [`poll`](Future::poll) with the clock read at `now` (before the timer's lock is
    /// taken, so the timer may have fired this sleep since).
    fn poll_at(&mut self, cx: &mut Context<'_>, now: Instant) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        if now >= deadline {
            if let Some(key) = self.key.take() {
                remove(key);
            }
            return Poll::Ready(());
        }
        let t = timers();
        let mut entries = lock(&t.entries);
        match self.key {
            Some(key) => match entries.map.get_mut(&key) {
                Some(w) => w.clone_from(cx.waker()),
                // The timer fired it between our clock reading and now (it removes only
                // due entries): the sleep is over. Regression: this put the entry back
                // without waking the timer thread; asleep on an empty map, the thread
                // never saw it, nor any later entry (none came before it), and every
                // sleep and timeout of the process hung.
                None => {
                    self.key = None;
                    return Poll::Ready(());
                }
            },
            None => {
                entries.next_id += 1;
                let key = (deadline, entries.next_id);
                let first = entries.map.keys().next().is_none_or(|k| key < *k);
                entries.map.insert(key, cx.waker().clone());
                self.key = Some(key);
                if first {
                    t.cond.notify_one();
                }
            }
        }
        Poll::Pending
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.poll_at(cx, Instant::now())
    }
}

fn remove(key: (Instant, u64)) {
    let t = timers();
    lock(&t.entries).map.remove(&key);
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            remove(key);
        }
    }
}

/// Run `fut` with a time limit, on any executor.
///
/// Returns `Err(Error::TimedOut)` when `after` passes first; `fut` is then dropped, which
/// for a [`Pending`](crate::Pending) that was being awaited means it is cancelled unless
/// it is protected.
///
/// ```
/// use std::time::Duration;
/// let slow = std::future::pending::<()>();
/// let res = futures::executor::block_on(caller::timeout(Duration::from_millis(5), slow));
/// assert!(res.unwrap_err().is_timeout());
/// ```
pub async fn timeout<F: std::future::IntoFuture>(
    after: Duration,
    fut: F,
) -> Result<F::Output, crate::Error> {
    let fut = std::pin::pin!(fut.into_future());
    let sleep = std::pin::pin!(Sleep::new(after));
    match futures::future::select(fut, sleep).await {
        futures::future::Either::Left((out, _)) => Ok(out),
        futures::future::Either::Right(((), _)) => Err(crate::Error::TimedOut { after }),
    }
}

/// Sleep for `after`, on any executor.
///
/// ```
/// use std::time::Duration;
/// futures::executor::block_on(caller::sleep(Duration::from_millis(1)));
/// ```
pub async fn sleep(after: Duration) {
    Sleep::new(after).await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Wake, Waker};
    use std::time::{Duration, Instant};

    use super::Sleep;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_sleep_fired_while_its_poll_read_the_clock_is_over_and_the_timer_runs_on() {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        let cx = &mut Context::from_waker(&waker);
        let before = Instant::now();
        let mut sleep = Sleep::new(Duration::from_millis(1));
        assert!(
            sleep.poll_at(cx, before).is_pending(),
            "a new sleep is pending"
        );
        let limit = Instant::now() + Duration::from_secs(10);
        while !flag.0.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < limit,
                "the timer did not fire a 1 ms sleep in 10 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // A poll whose clock reading came before the timer fired the sleep.
        assert!(
            sleep.poll_at(cx, before).is_ready(),
            "a sleep the timer fired is over, whatever the poll's clock said"
        );
        // And the timer thread still serves the sleeps that follow.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            futures::executor::block_on(super::sleep(Duration::from_millis(5)));
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a later 5 ms sleep never ended: the timer thread was left asleep");
    }
}
