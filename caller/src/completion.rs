//! `as_completed` and `wait`: consuming many pendings (or other futures) as they finish.
//!
//! Both take [`Completable`] items: a typed [`Pending<T>`] (handed back itself, done), a
//! type-erased [`AnyPending`] (handed back itself, done), or any other future pinned in a
//! box (`Box::pin(fut)`, handed back as its output). Pendings are watched, never polled as
//! futures, so watching one never cancels it; a boxed future is polled in place and
//! dropping it is what cancels it.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::stream::{FusedStream, FuturesUnordered};
use futures::{Stream, StreamExt};

use crate::caller::{Caller, PoolConfig};
use crate::error::Error;
use crate::pending::{AnyPending, Pending};
use crate::timer::Sleep;

/// An item [`as_completed`] and [`wait`] can watch, and what they hand back for it.
///
/// | item | handed back when it finishes |
/// |---|---|
/// | [`Pending<T>`] | the pending itself, done (`.await` or `try_take` it for the value) |
/// | [`AnyPending`] (e.g. from `group.members()`, or `p.any()` to mix value types) | the view itself, done |
/// | `Pin<Box<F>>` for any future `F` (`Box::pin(fut)`, `fut.boxed()`) | `F`'s output |
///
/// Why a future must be boxed: a blanket implementation for every future would cover
/// `Pending<T>` too (it is a future) and could then hand back only its value, not the
/// pending; Rust has no way to make one exception to a blanket implementation.
///
/// ```
/// use futures::{FutureExt, StreamExt};
/// let outputs: Vec<u32> = futures::executor::block_on(
///     caller::as_completed(vec![async { 1 }.boxed(), async { 2 }.boxed()]).collect(),
/// );
/// assert_eq!(outputs.len(), 2);
/// ```
pub trait Completable: Sized {
    /// What is handed back when the item finishes.
    type Output;
    #[doc(hidden)]
    type Watch: Future<Output = Self::Output> + Unpin;
    #[doc(hidden)]
    fn __watch(self) -> Self::Watch;
    #[doc(hidden)]
    fn __unwatch(watch: Self::Watch) -> Self;
    /// The pending behind the item, if it is one.
    #[doc(hidden)]
    fn __view(&self) -> Option<AnyPending>;
    /// Whether a finished item counts as an exception for `FirstException`.
    #[doc(hidden)]
    fn __exception(out: &Self::Output) -> bool;
    /// An item already failed with `err`, in place of this one.
    #[doc(hidden)]
    fn __refused(self, err: Error) -> Self;
}

/// Failed and cancelled pendings are exceptions, as in async-kernel's `wait`.
fn is_exception(view: &AnyPending) -> bool {
    view.error()
        .is_some_and(|e| e.is_failure() || e.is_cancelled())
}

/// Waits until a pending is done without cancelling it when dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct PendingWatch<P: AsRef<AnyPending>> {
    item: Option<P>,
    waiter: Option<usize>,
}

impl<P: AsRef<AnyPending> + Unpin> Future for PendingWatch<P> {
    type Output = P;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<P> {
        let this = &mut *self;
        let item = this.item.as_ref().expect("polled after completion");
        if item.as_ref().register(&mut this.waiter, cx.waker()) {
            this.waiter = None;
            Poll::Ready(this.item.take().expect("checked above"))
        } else {
            Poll::Pending
        }
    }
}

impl<P: AsRef<AnyPending>> PendingWatch<P> {
    fn new(item: P) -> Self {
        PendingWatch {
            item: Some(item),
            waiter: None,
        }
    }

    fn into_item(mut self) -> P {
        let item = self
            .item
            .take()
            .expect("an unfinished watch holds its item");
        item.as_ref().unregister(&mut self.waiter);
        item
    }
}

impl<P: AsRef<AnyPending>> Drop for PendingWatch<P> {
    fn drop(&mut self) {
        if let Some(item) = &self.item {
            item.as_ref().unregister(&mut self.waiter);
        }
    }
}

impl<T: Send + 'static> AsRef<AnyPending> for Pending<T> {
    fn as_ref(&self) -> &AnyPending {
        self
    }
}

impl AsRef<AnyPending> for AnyPending {
    fn as_ref(&self) -> &AnyPending {
        self
    }
}

/// A [`Pending`] that already failed with `err`.
fn failed_like<T: Send + 'static>(err: Error) -> Pending<T> {
    let p = Pending::new();
    p.set_error(err);
    p
}

impl<T: Send + 'static> Completable for Pending<T> {
    type Output = Pending<T>;
    type Watch = PendingWatch<Pending<T>>;

    fn __watch(self) -> Self::Watch {
        PendingWatch::new(self)
    }

    fn __unwatch(watch: Self::Watch) -> Self {
        watch.into_item()
    }

    fn __view(&self) -> Option<AnyPending> {
        Some(self.any())
    }

    fn __exception(out: &Self::Output) -> bool {
        is_exception(out)
    }

    fn __refused(self, err: Error) -> Self {
        failed_like(err)
    }
}

impl Completable for AnyPending {
    type Output = AnyPending;
    type Watch = PendingWatch<AnyPending>;

    fn __watch(self) -> Self::Watch {
        PendingWatch::new(self)
    }

    fn __unwatch(watch: Self::Watch) -> Self {
        watch.into_item()
    }

    fn __view(&self) -> Option<AnyPending> {
        Some(self.clone())
    }

    fn __exception(out: &Self::Output) -> bool {
        is_exception(out)
    }

    fn __refused(self, err: Error) -> Self {
        failed_like::<()>(err).any()
    }
}

impl<F: Future + ?Sized> Completable for Pin<Box<F>> {
    type Output = F::Output;
    type Watch = Pin<Box<F>>;

    fn __watch(self) -> Self::Watch {
        self
    }

    fn __unwatch(watch: Self::Watch) -> Self {
        watch
    }

    fn __view(&self) -> Option<AnyPending> {
        None
    }

    /// A future's output is opaque here: only pendings count as exceptions.
    fn __exception(_: &Self::Output) -> bool {
        false
    }

    fn __refused(self, _: Error) -> Self {
        self
    }
}

/// An item being watched, tagged with where it came from.
struct Tagged<W> {
    index: usize,
    view: Option<u64>,
    watch: W,
}

impl<W: Future + Unpin> Future for Tagged<W> {
    type Output = (usize, Option<u64>, W::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.watch)
            .poll(cx)
            .map(|out| (this.index, this.view, out))
    }
}

/// Refuse an item that is the pending running this very code: waiting on it would hang.
fn guard_self_wait<I: Completable>(item: I) -> I {
    let Some(view) = item.__view() else {
        return item;
    };
    if Caller::current_pending().is_some_and(|c| c == view) {
        let caller = view
            .metadata()
            .caller()
            .map(|c| c.1.to_owned())
            .unwrap_or_default();
        return item.__refused(Error::WouldDeadlock { caller });
    }
    item
}

enum Source<'a, I> {
    Iter(Box<dyn Iterator<Item = I> + Send + 'a>),
    Stream(Pin<Box<dyn Stream<Item = I> + Send + 'a>>),
    Empty,
}

/// A [`Stream`] of items in the order they finish; see [`as_completed`].
///
/// # Cancellation
/// Dropped before the end, it cancels the pendings it has taken from its source and not
/// handed back yet, unless `cancel_unfinished(false)`. Boxed futures it holds are dropped
/// with it (a future that is not polled cannot go on running).
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<'a, I: Completable> {
    source: Source<'a, I>,
    running: FuturesUnordered<Tagged<I::Watch>>,
    /// The pendings in `running`, by id: cancelled if the stream is dropped early.
    views: HashMap<u64, AnyPending>,
    taken: usize,
    limit: Option<usize>,
    cancel_unfinished: bool,
    finished: bool,
}

/// The items of `items` in the order they finish, as a [`Stream`].
///
/// Items are [`Completable`]: pendings (typed or [`AnyPending`]), handed back themselves
/// and done, or boxed futures, handed back as their outputs.
///
/// `items` is taken whole at the first poll: an eager collection (a `Vec`, an array,
/// pendings already made) is never limited, and every item is handed back as soon as it
/// finishes. For a lazy source that *starts* work as it is pulled (an iterator that
/// schedules a call per item), set [`max_concurrent`](AsCompleted::max_concurrent): then
/// at most that many items are taken and not handed back yet. (async-kernel limits a
/// generator by default; Rust cannot tell an iterator that makes work from a
/// collection, so here the limit is asked for.) The source may borrow from the stack of
/// the code that polls the stream.
///
/// Waiting on the pending that is running the iteration is an error, not a deadlock: in
/// its place the stream hands back a pending that failed with `Error::WouldDeadlock`.
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
pub fn as_completed<'a, I, It>(items: It) -> AsCompleted<'a, I>
where
    I: Completable,
    It: IntoIterator<Item = I>,
    It::IntoIter: Send + 'a,
{
    AsCompleted::new(Source::Iter(Box::new(items.into_iter())), None)
}

/// [`as_completed`] over a lazy [`Stream`] of items: at most
/// [`max_concurrent`](AsCompleted::max_concurrent) are taken and not handed back yet
/// (default [`PoolConfig::max_idle`], async-kernel's `MAX_IDLE_POOL_INSTANCES`).
///
/// ```
/// use futures::StreamExt;
/// let jobs = futures::stream::iter(0..3u8).map(|n| caller::to_thread(move || n));
/// let mut got: Vec<u8> = futures::executor::block_on(
///     caller::as_completed_stream(jobs).then(|p| async { p.await.unwrap() }).collect(),
/// );
/// got.sort();
/// assert_eq!(got, [0, 1, 2]);
/// ```
pub fn as_completed_stream<'a, I, S>(items: S) -> AsCompleted<'a, I>
where
    I: Completable,
    S: Stream<Item = I> + Send + 'a,
{
    AsCompleted::new(
        Source::Stream(Box::pin(items)),
        Some(PoolConfig::max_idle().max(1)),
    )
}

impl<'a, I: Completable> AsCompleted<'a, I> {
    fn new(source: Source<'a, I>, limit: Option<usize>) -> Self {
        AsCompleted {
            source,
            running: FuturesUnordered::new(),
            views: HashMap::new(),
            taken: 0,
            limit,
            cancel_unfinished: true,
            finished: false,
        }
    }

    /// Take at most `n` items from the source before they are handed back (`n` ≥ 1; 0 is
    /// read as 1; `usize::MAX` takes everything at once). For lazy sources.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.limit = Some(n.max(1));
        self
    }

    /// Whether dropping the stream early cancels the pendings taken and not handed back
    /// (default `true`).
    pub fn cancel_unfinished(mut self, cancel: bool) -> Self {
        self.cancel_unfinished = cancel;
        self
    }

    /// How many items are taken from the source and not handed back yet.
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }

    fn take(&mut self, item: I) {
        let item = guard_self_wait(item);
        let view = item.__view();
        let id = view.as_ref().map(AnyPending::id);
        if let Some(v) = view {
            self.views.insert(v.id(), v);
        }
        self.running.push(Tagged {
            index: self.taken,
            view: id,
            watch: item.__watch(),
        });
        self.taken += 1;
    }

    /// Pull from the source while there is room. `Ready(())` when the source is empty.
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.limit.is_none_or(|n| self.running.len() < n) {
            let next = match &mut self.source {
                Source::Iter(it) => it.next(),
                Source::Stream(s) => match s.as_mut().poll_next(cx) {
                    Poll::Ready(item) => item,
                    Poll::Pending => return Poll::Pending,
                },
                Source::Empty => return Poll::Ready(()),
            };
            match next {
                Some(item) => self.take(item),
                None => {
                    self.source = Source::Empty;
                    return Poll::Ready(());
                }
            }
        }
        Poll::Pending
    }
}

impl<I: Completable> Stream for AsCompleted<'_, I> {
    type Item = I::Output;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<I::Output>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        let source_done = this.fill(cx).is_ready();
        match this.running.poll_next_unpin(cx) {
            Poll::Ready(Some((_, view, out))) => {
                if let Some(id) = view {
                    this.views.remove(&id);
                }
                Poll::Ready(Some(out))
            }
            Poll::Ready(None) if source_done => {
                this.finished = true;
                Poll::Ready(None)
            }
            // Nothing running: the source registered the waker (a stream), or there was
            // no room left (impossible with nothing running).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: Completable> FusedStream for AsCompleted<'_, I> {
    fn is_terminated(&self) -> bool {
        self.finished
    }
}

impl<I: Completable> Drop for AsCompleted<'_, I> {
    fn drop(&mut self) {
        if self.cancel_unfinished {
            for v in self.views.values() {
                if !v.done() {
                    v.cancel("as_completed was dropped before this pending finished");
                }
            }
        }
    }
}

impl<I: Completable> fmt::Debug for AsCompleted<'_, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("in_flight", &self.running.len())
            .field("max_concurrent", &self.limit)
            .field("cancel_unfinished", &self.cancel_unfinished)
            .finish()
    }
}

/// When [`wait`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ReturnWhen {
    /// As soon as any item is done.
    FirstCompleted,
    /// As soon as any pending fails (panics or returns `Err`) or is cancelled, as in
    /// async-kernel; or when all are done. A boxed future's output is opaque: it never
    /// counts as an exception.
    FirstException,
    /// When every item is done (the default).
    #[default]
    AllCompleted,
}

/// Wait for `items` until `return_when` holds or `timeout` passes, then return
/// `(done, not_done)`: what finished (in the order it finished, as [`as_completed`] hands
/// it back) and the unfinished items themselves (in the order given), which keep running.
/// It never fails with a timeout. Works on any executor; items are [`Completable`].
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
pub async fn wait<I, It>(
    items: It,
    timeout: Option<Duration>,
    return_when: ReturnWhen,
) -> (Vec<I::Output>, Vec<I>)
where
    I: Completable,
    It: IntoIterator<Item = I>,
{
    let mut running: FuturesUnordered<Tagged<I::Watch>> = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let item = guard_self_wait(item);
            Tagged {
                index,
                view: None,
                watch: item.__watch(),
            }
        })
        .collect();
    let mut done = Vec::new();
    let mut sleep = timeout.map(Sleep::new);
    std::future::poll_fn(|cx| {
        loop {
            match running.poll_next_unpin(cx) {
                Poll::Ready(Some((_, _, out))) => {
                    let exception = I::__exception(&out);
                    done.push(out);
                    let met = match return_when {
                        ReturnWhen::FirstCompleted => true,
                        ReturnWhen::FirstException => exception,
                        ReturnWhen::AllCompleted => false,
                    };
                    if met {
                        return Poll::Ready(());
                    }
                }
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Pending => break,
            }
        }
        if let Some(s) = &mut sleep {
            if Pin::new(s).poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await;
    let mut rest: Vec<Tagged<I::Watch>> = running.into_iter().collect();
    rest.sort_by_key(|t| t.index);
    let not_done = rest.into_iter().map(|t| I::__unwatch(t.watch)).collect();
    (done, not_done)
}

impl Caller {
    /// [`as_completed`], as a method for async-kernel's `Caller.as_completed`.
    pub fn as_completed<'a, I, It>(&self, items: It) -> AsCompleted<'a, I>
    where
        I: Completable,
        It: IntoIterator<Item = I>,
        It::IntoIter: Send + 'a,
    {
        as_completed(items)
    }

    /// [`wait`], as a method for async-kernel's `Caller.wait`.
    pub async fn wait<I, It>(
        &self,
        items: It,
        timeout: Option<Duration>,
        return_when: ReturnWhen,
    ) -> (Vec<I::Output>, Vec<I>)
    where
        I: Completable,
        It: IntoIterator<Item = I>,
    {
        wait(items, timeout, return_when).await
    }
}
