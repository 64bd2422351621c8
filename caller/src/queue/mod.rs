//! `queue_call`: a long-lived, per-function sequential queue on a caller.
//!
//! One queue exists per (caller, function *type*). Each `queue_call` sends its arguments
//! through the caller's inbox (so it keeps its place among the caller's other calls); on
//! the caller's thread a sync function runs inline, an async one is awaited by the
//! queue's runner task, one call at a time, in call order. Errors and panics are logged
//! and never stop the queue. The queue lives inside a pending (async-kernel's "the queue runs
//! inside a pending") that joins managers only; it is done when the queue is closed, and
//! cancelled when the caller stops.

mod run;

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};

use crate::caller::{Caller, CallerState, Msg, OnStop};
use crate::context::{Context, Trackers};
use crate::error::Error;
use crate::job::Runnable;
use crate::pending::{AnyPending, Metadata, Pending, Resolver, Shared};
use crate::rt::CallerId;
use crate::sync::{lock, Mutex};

use run::{AsyncItems, Kind, Queue, QueueItems, SyncItems, Target};

/// What a queued function may return: `()`, or `Result<(), E>` whose `Err` is logged.
#[diagnostic::on_unimplemented(
    message = "a queued function must return `()` or `Result<(), E>`, not `{Self}`",
    note = "queued calls return nothing to their caller: log or send the value somewhere instead"
)]
pub trait QueueResult: 'static {
    /// The error text, if the call failed.
    #[doc(hidden)]
    fn __error(self) -> Option<String>;
}

impl QueueResult for () {
    fn __error(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display + 'static> QueueResult for Result<(), E> {
    fn __error(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// A caller's queues, by key (attached to the caller: see [`OnStop`]).
#[derive(Default)]
struct QueueTable(Mutex<Queues>);

#[derive(Default)]
struct Queues {
    by_key: HashMap<TypeId, Arc<dyn AnyQueue>>,
    /// The caller stopped: no queue is made any more.
    closed: bool,
}

impl OnStop for QueueTable {
    /// Close every queue because the caller stops.
    fn caller_stopped(&self, reason: &str) {
        let queues: Vec<_> = {
            let mut table = lock(&self.0);
            table.closed = true;
            table.by_key.drain().map(|(_, q)| q).collect()
        };
        for q in queues {
            q.close(Some(reason));
        }
    }
}

/// A queue as its caller's table sees it.
trait AnyQueue: Send + Sync {
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// Close: no more calls run. `reason` set means the caller stopped.
    fn close(&self, reason: Option<&str>);
    fn view(&self) -> AnyPending;
    /// The path of the function whose queue this is, when keyed by something else
    /// (`#[queued]` keys by its body): `queue_get(&function)` looks it up by this.
    fn function(&self) -> Option<&'static str>;
    /// The message that resolves `done` once every call sent before it has run.
    fn flush(self: Arc<Self>, done: Resolver<()>) -> Box<dyn Runnable>;
}

/// The queue this thread last sent to, weakly (a closed queue's contents go as usual;
/// only its allocation waits for this thread's next send elsewhere, or its exit).
struct LastQueue {
    caller: CallerId,
    key: TypeId,
    queue: Weak<dyn Any + Send + Sync>,
}

thread_local! {
    static LAST_QUEUE: RefCell<Option<LastQueue>> = const { RefCell::new(None) };
}

impl Caller {
    /// Send `args` to the queue keyed by `key` (made with `make` if it does not exist):
    /// folded into the inbox's tail message when that is this queue's, else a new message
    /// (`new` makes its runnable). A burst of calls from one thread to the queue it sent
    /// to last skips the table (two locks and two lookups) and every reference count.
    fn send_call<A, F>(
        &self,
        key: TypeId,
        name: Cow<'static, str>,
        function: Option<&'static str>,
        make: impl FnOnce() -> Kind<F>,
        args: A,
        new: fn(QueueItems<A, F>) -> Box<dyn Runnable>,
    ) -> Result<(), Error>
    where
        A: Send + 'static,
        F: Send + Sync + 'static,
    {
        let stopped = |()| Error::CallerStopped {
            caller: self.name().to_owned(),
        };
        let mut args = Some(args);
        let sent = LAST_QUEUE.with(|last| {
            let last = last.borrow();
            match last
                .as_ref()
                .filter(|l| l.caller == self.id() && l.key == key)
            {
                Some(last) => self.send_with(|tail| {
                    QueueItems::fold(Target::Remembered(&last.queue), &mut args, tail, new)
                }),
                None => Ok(false),
            }
        });
        if sent.map_err(stopped)? {
            return Ok(());
        }
        let queue = self.queue_for(key, name, function, make)?;
        let queue_any: Arc<dyn Any + Send + Sync> = queue.clone();
        LAST_QUEUE.with(|last| {
            *last.borrow_mut() = Some(LastQueue {
                caller: self.id(),
                key,
                queue: Arc::downgrade(&queue_any),
            });
        });
        self.send_with(|tail| QueueItems::fold(Target::Known(&queue), &mut args, tail, new))
            .map_err(stopped)
            .map(drop)
    }

    fn queue_for<A, F>(
        &self,
        key: TypeId,
        name: Cow<'static, str>,
        function: Option<&'static str>,
        make: impl FnOnce() -> Kind<F>,
    ) -> Result<Arc<Queue<A, F>>, Error>
    where
        A: Send + 'static,
        F: Send + Sync + 'static,
    {
        let table = self.attachment::<QueueTable>();
        let mut map = lock(&table.0);
        // Checked under the table's lock (regression: checked before it, a queue made while
        // the caller stopped was inserted after `stop` had closed every queue, and stayed
        // open for ever). The stop closes the table under this lock, so either this sees
        // the stop, or the stop sees this queue.
        if map.closed {
            return Err(Error::CallerStopped {
                caller: self.name().to_owned(),
            });
        }
        if let Some(q) = map.by_key.get(&key) {
            return q
                .clone()
                .as_any()
                .downcast::<Queue<A, F>>()
                .map_err(|_| Error::invalid("a queue keyed by this function has other arguments"));
        }
        let shared = Shared::<()>::new(Metadata::new(name, Some((self.id(), self.name().into()))));
        let pending = Pending::from_shared(shared);
        // A queue outlives the scope it was first used in: its context holds managers
        // only, never groups.
        let ctx = Context::current().only(Trackers::MANAGERS);
        ctx.register(&pending, Trackers::MANAGERS);
        let q = Arc::new(Queue::new(make(), pending, ctx, function));
        map.by_key.insert(key, q.clone());
        drop(map);
        // Cancelling the queue's pending closes the queue (the outcome is cancelled: the
        // cancel was asked before the queue finished).
        let weak = Arc::downgrade(&q);
        let table = Arc::downgrade(&table);
        q.pending().set_canceller(move |_| {
            if let Some(q) = weak.upgrade() {
                if let Some(table) = table.upgrade() {
                    let mut map = lock(&table.0);
                    if map
                        .by_key
                        .get(&key)
                        .is_some_and(|open| open.view() == q.pending().any())
                    {
                        map.by_key.remove(&key);
                    }
                }
                q.close(None);
            }
        });
        Ok(q)
    }

    /// Queue `func(args)` on this caller: one queue per (caller, function type); its calls
    /// run one at a time, in call order, on this caller's thread. Returns at once. Errors
    /// (`Err` results) and panics are logged with tracing and never stop the queue.
    ///
    /// The queue is keyed by the *type* of `func`: use a function item (or one closure
    /// expression) per queue. The first call's `func` is the one the queue keeps: a
    /// closure's captured state in later calls is ignored, so pass state in `args`. The
    /// queue is created by the first call, runs in that call's context, joins managers
    /// only (never groups), and ends on
    /// [`queue_close`](Self::queue_close) or when the caller stops.
    ///
    /// `Err(CallerStopped)` if the caller no longer accepts calls.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-queue")?;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// fn append((log, n): (Arc<Mutex<Vec<u32>>>, u32)) {
    ///     log.lock().unwrap().push(n);
    /// }
    /// for n in 0..5 {
    ///     c.queue_call(append, (log.clone(), n))?;
    /// }
    /// c.call_soon(|| ()).wait_sync(None)?; // everything queued before has run
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn queue_call<F, A, R>(&self, func: F, args: A) -> Result<(), Error>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: QueueResult,
    {
        self.queue_call_as(TypeId::of::<F>(), type_name::<F>(), None, func, args)
    }

    /// [`queue_call`](Self::queue_call) for an async function: each call's future is
    /// awaited to the end before the next one starts. The futures need not be `Send`.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-queue-async")?;
    /// async fn store(n: u32) {
    ///     tokio::task::yield_now().await;
    ///     let _ = n;
    /// }
    /// c.queue_call_async(store, 1)?;
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn queue_call_async<F, A, Fut, R>(&self, func: F, args: A) -> Result<(), Error>
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        A: Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: QueueResult,
    {
        self.queue_call_async_as(TypeId::of::<F>(), type_name::<F>(), None, func, args)
    }

    /// [`queue_call`](Self::queue_call) for the queue keyed by `key`, named `name`, and
    /// found by `queue_get(&f)` for the function whose path is `function` (`#[queued]`:
    /// the key is the function's body, a closure that only the macro can name).
    pub(crate) fn queue_call_as<F, A, R>(
        &self,
        key: TypeId,
        name: Cow<'static, str>,
        function: Option<&'static str>,
        func: F,
        args: A,
    ) -> Result<(), Error>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: QueueResult,
    {
        self.send_call(
            key,
            name,
            function,
            || Kind::Sync(func),
            args,
            |items| Box::new(SyncItems(items)),
        )
    }

    /// [`queue_call_async`](Self::queue_call_async) for the queue keyed by `key`.
    pub(crate) fn queue_call_async_as<F, A, Fut, R>(
        &self,
        key: TypeId,
        name: Cow<'static, str>,
        function: Option<&'static str>,
        func: F,
        args: A,
    ) -> Result<(), Error>
    where
        F: Fn(A) -> Fut + Send + Sync + 'static,
        A: Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: QueueResult,
    {
        self.send_call(
            key,
            name,
            function,
            || Kind::Async(func),
            args,
            |items| Box::new(AsyncItems(items)),
        )
    }

    /// The pending inside which `func`'s queue runs, if the queue exists. For a
    /// `#[caller::queued]` function, pass the function itself (on the caller that runs it:
    /// `caller::queue_caller()` by default).
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-queue-get")?;
    /// fn work(_: ()) {}
    /// assert!(c.queue_get(&work).is_none());
    /// c.queue_call(work, ())?;
    /// assert!(!c.queue_get(&work).unwrap().done());
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn queue_get<F: 'static>(&self, func: &F) -> Option<AnyPending> {
        self.find_queue(func).map(|(_, q)| q.view())
    }

    /// `func`'s queue and its key: keyed by `func`'s type (`queue_call`), or by the body of
    /// the `#[queued]` function `func` (found by the function's path).
    fn find_queue<F: 'static>(&self, func: &F) -> Option<(TypeId, Arc<dyn AnyQueue>)> {
        let _ = func;
        let table = self.attachment::<QueueTable>();
        let queues = lock(&table.0);
        if let Some(q) = queues.by_key.get(&TypeId::of::<F>()) {
            return Some((TypeId::of::<F>(), q.clone()));
        }
        let path = std::any::type_name::<F>();
        queues
            .by_key
            .iter()
            .find(|(_, q)| q.function() == Some(path))
            .map(|(k, q)| (*k, q.clone()))
    }

    /// Close `func`'s queue: calls not yet started never run, and its pending is done.
    /// Returns whether a queue was open. `func` may be a `#[caller::queued]` function.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-queue-close")?;
    /// fn work(_: ()) {}
    /// c.queue_call(work, ())?;
    /// let queue = c.queue_get(&work).unwrap();
    /// assert!(c.queue_close(&work));
    /// assert!(queue.done());
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn queue_close<F: 'static>(&self, func: &F) -> bool {
        let q = self
            .find_queue(func)
            .and_then(|(key, _)| lock(&self.attachment::<QueueTable>().0).by_key.remove(&key));
        match q {
            Some(q) => {
                q.close(None);
                true
            }
            None => false,
        }
    }

    /// A pending that is done once every call sent to `func`'s queue before this flush has
    /// run (or failed, or panicked: the queue logs those and goes on). Done at once if
    /// there is no such queue; cancelled if the queue is closed first, or the caller stops.
    /// For a `#[caller::queued]` function, pass the function itself.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// # fn main() -> Result<(), caller::Error> {
    /// let c = caller::Caller::new_thread("doc-queue-flush")?;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// async fn store((log, n): (Arc<Mutex<Vec<u32>>>, u32)) {
    ///     tokio::task::yield_now().await;
    ///     log.lock().unwrap().push(n);
    /// }
    /// for n in 0..3 {
    ///     c.queue_call_async(store, (log.clone(), n))?;
    /// }
    /// c.queue_flush(&store).wait_sync(None)?;
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    /// # c.stop(true); Ok(()) }
    /// ```
    pub fn queue_flush<F: 'static>(&self, func: &F) -> Pending<()> {
        let done = Pending::from_shared(Shared::new(Metadata::new(
            format!("flush of {}", type_name::<F>()).into(),
            Some((self.id(), self.name().into())),
        )));
        match self.find_queue(func).map(|(_, q)| q) {
            None => {
                done.set_result(());
            }
            Some(queue) => {
                let flush = queue.flush(done.resolver());
                if let Err(Msg::Run(r)) = self.send(Msg::Run(flush)) {
                    r.refuse(&self.stop_reason());
                }
            }
        }
        done
    }
}

/// The caller that `#[caller::queued]` functions run on when no `caller = ..` is given:
/// one process-wide, protected caller named `caller-queues`, started on first use (and
/// started again if it was force-stopped).
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let q = caller::queue_caller()?;
/// assert_eq!(q.name(), "caller-queues");
/// # Ok(()) }
/// ```
pub fn queue_caller() -> Result<Caller, Error> {
    static QUEUES: OnceLock<Mutex<Option<Caller>>> = OnceLock::new();
    let mut slot = lock(QUEUES.get_or_init(Default::default));
    if let Some(c) = slot.as_ref().filter(|c| c.state() <= CallerState::Running) {
        return Ok(c.clone());
    }
    let c = Caller::builder()
        .name("caller-queues")
        .protected(true)
        .spawn()?;
    *slot = Some(c.clone());
    Ok(c)
}

/// The name of a function type as the user wrote it: `crate::module::function` for a
/// function item (closure types keep their `{{closure}}` marker).
fn type_name<F>() -> Cow<'static, str> {
    Cow::Borrowed(std::any::type_name::<F>())
}
