//! `as_completed` and `wait`: consuming many pendings as they finish.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::Stream;

use crate::caller::{Caller, PoolConfig};
use crate::error::Error;
use crate::pending::{CallbackId, Pending};
use crate::sync::{lock, Mutex};
use crate::timer::Sleep;

/// Shared between the done callbacks of the items and their consumer.
#[derive(Default)]
struct Ready {
    done: VecDeque<u64>,
    failed: bool,
    waker: Option<Waker>,
}

fn notify(ready: &Arc<Mutex<Ready>>, id: u64, failed: bool) {
    let waker = {
        let mut r = lock(ready);
        r.done.push_back(id);
        r.failed |= failed;
        r.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// Track `p`: when done, its id lands in `ready`.
fn watch<T: Send + 'static>(p: &Pending<T>, ready: &Arc<Mutex<Ready>>) -> CallbackId {
    let ready = ready.clone();
    p.add_done_callback(move |v| {
        let failed = v.error().is_some_and(|e| e.is_failure());
        notify(&ready, v.id(), failed);
    })
}

enum Source<T> {
    Iter(Box<dyn Iterator<Item = Pending<T>> + Send>),
    Stream(Pin<Box<dyn Stream<Item = Pending<T>> + Send>>),
    Empty,
}

/// A [`Stream`] of pendings in the order they finish; see [`as_completed`].
///
/// # Cancellation
/// Dropped before the end, it cancels the pendings it has taken from its source and not
/// yielded yet, unless `cancel_unfinished(false)`.
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T> {
    source: Source<T>,
    in_flight: HashMap<u64, (Pending<T>, CallbackId)>,
    ready: Arc<Mutex<Ready>>,
    max_concurrent: usize,
    cancel_unfinished: bool,
}

/// The pendings of `items` in the order they finish, as a [`Stream`].
///
/// `items` may be lazy (an iterator that schedules each call as it is pulled): at most
/// `max_concurrent` pendings are taken from it and not yet yielded (default
/// [`PoolConfig::max_idle`], the seed's `MAX_IDLE_POOL_INSTANCES`). Every yielded pending
/// is done; `.await` it (or `try_take`) for its value.
///
/// Waiting on the pending that is running the iteration is an error, not a deadlock: in
/// its place the stream yields a pending that failed with `Error::WouldDeadlock`.
///
/// ```
/// use futures::StreamExt;
/// # fn main() -> Result<(), caller::Error> {
/// let jobs = (1..=4u64).map(|n| caller::to_thread(move || n * n));
/// let mut squares: Vec<u64> = futures::executor::block_on(async {
///     let mut out = Vec::new();
///     let mut done = caller::as_completed(jobs).max_concurrent(2);
///     while let Some(p) = done.next().await {
///         out.push(p.await.unwrap());
///     }
///     out
/// });
/// squares.sort();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok(()) }
/// ```
pub fn as_completed<T, I>(items: I) -> AsCompleted<T>
where
    T: Send + 'static,
    I: IntoIterator<Item = Pending<T>>,
    I::IntoIter: Send + 'static,
{
    AsCompleted::new(Source::Iter(Box::new(items.into_iter())))
}

/// [`as_completed`] over a lazy [`Stream`] of pendings.
pub fn as_completed_stream<T, S>(items: S) -> AsCompleted<T>
where
    T: Send + 'static,
    S: Stream<Item = Pending<T>> + Send + 'static,
{
    AsCompleted::new(Source::Stream(Box::pin(items)))
}

impl<T: Send + 'static> AsCompleted<T> {
    fn new(source: Source<T>) -> Self {
        AsCompleted {
            source,
            in_flight: HashMap::new(),
            ready: Arc::default(),
            max_concurrent: PoolConfig::max_idle().max(1),
            cancel_unfinished: true,
        }
    }

    /// Take at most `n` pendings from the source before they are yielded (`n` ≥ 1; 0 is
    /// read as 1). `usize::MAX` takes everything at once.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Whether dropping the stream early cancels the pendings taken and not yielded
    /// (default `true`).
    pub fn cancel_unfinished(mut self, cancel: bool) -> Self {
        self.cancel_unfinished = cancel;
        self
    }

    /// How many pendings are taken from the source and not yielded yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn take(&mut self, p: Pending<T>) {
        let current = Caller::current_pending();
        let p = if current.is_some_and(|c| c.id() == p.id()) {
            let replacement = Pending::new();
            replacement.set_error(Error::WouldDeadlock {
                caller: p
                    .metadata()
                    .caller()
                    .map(|c| c.1.to_owned())
                    .unwrap_or_default(),
            });
            replacement
        } else {
            p
        };
        let cb = watch(&p, &self.ready);
        self.in_flight.insert(p.id(), (p, cb));
    }

    /// Pull from the source while there is room. `Ready(())` when the source is empty.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.in_flight.len() < self.max_concurrent {
            let next = match &mut self.source {
                Source::Iter(it) => it.next(),
                Source::Stream(s) => match s.as_mut().poll_next(cx) {
                    Poll::Ready(item) => item,
                    Poll::Pending => return Poll::Pending,
                },
                Source::Empty => None,
            };
            match next {
                Some(p) => self.take(p),
                None => {
                    self.source = Source::Empty;
                    return Poll::Ready(());
                }
            }
        }
        if matches!(self.source, Source::Empty) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl<T: Send + 'static> Stream for AsCompleted<T> {
    type Item = Pending<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Pending<T>>> {
        let this = &mut *self;
        loop {
            let source_done = this.fill(cx).is_ready();
            let id = {
                let mut r = lock(&this.ready);
                match r.done.pop_front() {
                    Some(id) => id,
                    None => {
                        if source_done && this.in_flight.is_empty() {
                            return Poll::Ready(None);
                        }
                        r.waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            };
            if let Some((p, _)) = this.in_flight.remove(&id) {
                return Poll::Ready(Some(p));
            }
        }
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for (_, (p, cb)) in self.in_flight.drain() {
            p.remove_done_callback(cb);
            if self.cancel_unfinished && !p.done() {
                p.cancel("as_completed was dropped before this pending finished");
            }
        }
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("in_flight", &self.in_flight.len())
            .field("max_concurrent", &self.max_concurrent)
            .field("cancel_unfinished", &self.cancel_unfinished)
            .finish()
    }
}

/// When [`wait`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ReturnWhen {
    /// As soon as any pending is done.
    FirstCompleted,
    /// As soon as any pending fails (panics or returns `Err`; cancellation is not a
    /// failure), or when all are done.
    FirstException,
    /// When every pending is done (the default).
    #[default]
    AllCompleted,
}

/// Wait for `items` until `return_when` holds or `timeout` passes, then return
/// `(done, not_done)`. It never fails with a timeout: what is unfinished is in the second
/// list (and keeps running). Works on any executor.
///
/// ```
/// use std::time::Duration;
/// use caller::ReturnWhen;
/// # fn main() -> Result<(), caller::Error> {
/// let fast = caller::to_thread(|| 1);
/// let slow = caller::to_thread_async(std::future::pending::<i32>);
/// let (done, not_done) = futures::executor::block_on(caller::wait(
///     [fast, slow],
///     Some(Duration::from_secs(5)),
///     ReturnWhen::FirstCompleted,
/// ));
/// assert_eq!((done.len(), not_done.len()), (1, 1));
/// not_done[0].cancel("not needed");
/// # Ok(()) }
/// ```
pub async fn wait<T, I>(
    items: I,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<Pending<T>>, Vec<Pending<T>>)
where
    T: Send + 'static,
    I: IntoIterator<Item = Pending<T>>,
{
    let items: Vec<Pending<T>> = items.into_iter().collect();
    let ready: Arc<Mutex<Ready>> = Arc::default();
    let callbacks: Vec<CallbackId> = items.iter().map(|p| watch(p, &ready)).collect();
    let total = items.len();
    let mut sleep = timeout.map(Sleep::new);
    std::future::poll_fn(|cx| {
        {
            let mut r = lock(&ready);
            let finished = r.done.len();
            let met = finished == total
                || match return_when {
                    ReturnWhen::FirstCompleted => finished > 0,
                    ReturnWhen::FirstException => r.failed,
                    ReturnWhen::AllCompleted => false,
                };
            if met {
                return Poll::Ready(());
            }
            r.waker = Some(cx.waker().clone());
        }
        if let Some(s) = &mut sleep {
            if Pin::new(s).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
    for (p, cb) in items.iter().zip(callbacks) {
        p.remove_done_callback(cb);
    }
    items.into_iter().partition(|p| p.done())
}

impl Caller {
    /// [`as_completed`], as a method for the seed's `Caller.as_completed`.
    pub fn as_completed<T, I>(&self, items: I) -> AsCompleted<T>
    where
        T: Send + 'static,
        I: IntoIterator<Item = Pending<T>>,
        I::IntoIter: Send + 'static,
    {
        as_completed(items)
    }

    /// [`wait`], as a method for the seed's `Caller.wait`.
    pub async fn wait<T, I>(
        &self,
        items: I,
        timeout: Option<Duration>,
        return_when: ReturnWhen,
    ) -> (Vec<Pending<T>>, Vec<Pending<T>>)
    where
        T: Send + 'static,
        I: IntoIterator<Item = Pending<T>>,
    {
        wait(items, timeout, return_when).await
    }
}
