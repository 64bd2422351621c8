//! Thread-confined state: a value that a caller's thread owns and only its calls touch.
//!
//! [`Caller::new_thread_with`](crate::Caller::new_thread_with) builds the value *on* the new
//! thread (so it need not be `Send`) and keeps it there, in a thread-local slot, until the
//! caller stops. Calls made with the jobs of this module receive `&mut S`. They take turns:
//! the value sits behind a first-come-first-served async lock, so an async call that holds
//! it across an `.await` makes the next state call wait (other calls of the caller go on),
//! and calls get the value in the order they started.
//!
//! ```
//! use std::collections::BTreeMap;
//! # fn main() -> Result<(), caller::Error> {
//! let store = caller::Caller::new_thread_with("doc-store", BTreeMap::<String, u32>::new)?;
//! // Sync and async calls, from any thread, each with `&mut` to the map.
//! let _ = store.call_with(|m: &mut BTreeMap<String, u32>| m.insert("a".into(), 1));
//! let total = store.call_soon(caller::state::with_state_async(
//!     async |m: &mut BTreeMap<String, u32>| m.values().sum::<u32>(),
//! ));
//! assert_eq!(futures::executor::block_on(total)?, 1);
//! # store.stop(true); Ok(()) }
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::error::{BoxError, Error};
use crate::job::{BuiltJob, IntoJob, JobBuilder};

/// The state of the caller on this thread: the value behind its lock, and its type name.
struct Slot {
    value: Rc<dyn Any>,
    type_name: &'static str,
}

thread_local! {
    static STATE: RefCell<Option<Slot>> = const { RefCell::new(None) };
}

type Cell<S> = tokio::sync::Mutex<S>;

/// Keep `value` as this thread's state (called on the caller's thread, by its first call).
pub(crate) fn install<S: 'static>(value: S) {
    let slot = Slot {
        value: Rc::new(Cell::new(value)),
        type_name: std::any::type_name::<S>(),
    };
    STATE.with(|s| *s.borrow_mut() = Some(slot));
}

/// Drop this thread's state, here, on its own thread (the caller's loop has ended).
pub(crate) fn clear() {
    let slot = STATE.with(|s| s.borrow_mut().take());
    drop(slot);
}

/// This thread's state, if it is an `S`. `caller` names the caller, for the error.
fn get<S: 'static>(caller: &str) -> Result<Rc<Cell<S>>, Error> {
    STATE.with(|s| match &*s.borrow() {
        None => Err(Error::invalid(format!(
            "caller '{caller}' holds no state: a call that takes `&mut {}` runs on a caller \
             made with Caller::new_thread_with (or try_new_thread_with)",
            std::any::type_name::<S>()
        ))),
        Some(slot) => slot.value.clone().downcast::<Cell<S>>().map_err(|_| {
            Error::invalid(format!(
                "caller '{caller}' holds a `{}`, not the `{}` this call takes",
                slot.type_name,
                std::any::type_name::<S>()
            ))
        }),
    })
}

/// The name of the caller a job was scheduled on.
fn caller_name<T: Send + 'static>(b: &JobBuilder<T>) -> String {
    b.shared
        .header()
        .meta()
        .caller()
        .map_or_else(|| "?".to_owned(), |c| c.1.to_owned())
}

/// A sync call that receives the caller's state; see [`with_state`].
pub struct StateJob<S, F> {
    f: F,
    _state: PhantomData<fn() -> S>,
}

/// An async call that receives the caller's state; see [`with_state_async`].
pub struct StateAsyncJob<S, F> {
    f: F,
    _state: PhantomData<fn() -> S>,
}

/// [`with_state`] whose `Err` is a failure; see [`try_with_state`].
pub struct TryStateJob<S, F> {
    f: F,
    _state: PhantomData<fn() -> S>,
}

/// [`with_state_async`] whose `Err` is a failure; see [`try_with_state_async`].
pub struct TryStateAsyncJob<S, F> {
    f: F,
    _state: PhantomData<fn() -> S>,
}

macro_rules! debug_job {
    ($($ty:ident),*) => {$(
        impl<S, F> std::fmt::Debug for $ty<S, F> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("state", &std::any::type_name::<S>())
                    .finish()
            }
        }
    )*};
}
debug_job!(StateJob, StateAsyncJob, TryStateJob, TryStateAsyncJob);

/// A sync job that receives `&mut S`, the state of the caller it runs on (made with
/// [`Caller::new_thread_with`](crate::Caller::new_thread_with)). If that caller holds no
/// `S`, the pending fails with `Error::Invalid`, saying what it holds.
///
/// ```
/// use std::collections::HashMap;
/// # fn main() -> Result<(), caller::Error> {
/// let cache = caller::Caller::new_thread_with("doc-cache", HashMap::<u32, String>::new)?;
/// let _ = cache.call_soon(caller::state::with_state(|map: &mut HashMap<u32, String>| {
///     map.insert(1, "one".into())
/// }));
/// let mut one = cache.call_soon(caller::state::with_state(|map: &mut HashMap<u32, String>| {
///     map.get(&1).cloned()
/// }));
/// assert_eq!(one.wait_sync(None)?.as_deref(), Some("one"));
/// # cache.stop(true); Ok(()) }
/// ```
pub fn with_state<S, F, T>(f: F) -> StateJob<S, F>
where
    S: 'static,
    F: FnOnce(&mut S) -> T + Send + 'static,
{
    StateJob {
        f,
        _state: PhantomData,
    }
}

/// An async job that receives `&mut S`, the state of the caller it runs on, for as long as
/// its future runs: other state calls wait their turn meanwhile. The future need not be
/// `Send`.
///
/// ```
/// use std::rc::Rc;
/// # fn main() -> Result<(), caller::Error> {
/// // The state is built on the caller's thread: an `Rc` is fine.
/// let c = caller::Caller::new_thread_with("doc-state-async", || Rc::new(vec![1u32, 2, 3]))?;
/// let p = c.call_soon(caller::state::with_state_async(async |v: &mut Rc<Vec<u32>>| {
///     tokio::task::yield_now().await;
///     v.iter().sum::<u32>()
/// }));
/// assert_eq!(futures::executor::block_on(p)?, 6);
/// # c.stop(true); Ok(()) }
/// ```
pub fn with_state_async<S, F, T>(f: F) -> StateAsyncJob<S, F>
where
    S: 'static,
    F: AsyncFnOnce(&mut S) -> T + Send + 'static,
{
    StateAsyncJob {
        f,
        _state: PhantomData,
    }
}

/// [`with_state`] for a function returning `Result`: `Err(e)` becomes
/// `Error::Failed(e)`, a failure for groups, as with [`try_sync`](crate::job::try_sync).
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let c = caller::Caller::new_thread_with("doc-try-state", || 0u8)?;
/// let mut p = c.call_soon(caller::state::try_with_state(|n: &mut u8| {
///     *n = n.checked_sub(1).ok_or("below zero")?;
///     Ok::<_, &str>(*n)
/// }));
/// assert!(p.wait_sync(None).unwrap_err().is_failure());
/// # c.stop(true); Ok(()) }
/// ```
pub fn try_with_state<S, F, T, E>(f: F) -> TryStateJob<S, F>
where
    S: 'static,
    F: FnOnce(&mut S) -> Result<T, E> + Send + 'static,
    E: Into<BoxError>,
{
    TryStateJob {
        f,
        _state: PhantomData,
    }
}

/// [`with_state_async`] for a future of `Result`: `Err(e)` becomes `Error::Failed(e)`.
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let c = caller::Caller::new_thread_with("doc-try-state-async", || String::from("7"))?;
/// let p = c.call_soon(caller::state::try_with_state_async(async |s: &mut String| {
///     s.parse::<u8>()
/// }));
/// assert_eq!(futures::executor::block_on(p)?, 7);
/// # c.stop(true); Ok(()) }
/// ```
pub fn try_with_state_async<S, F, T, E>(f: F) -> TryStateAsyncJob<S, F>
where
    S: 'static,
    F: AsyncFnOnce(&mut S) -> Result<T, E> + Send + 'static,
    E: Into<BoxError>,
{
    TryStateAsyncJob {
        f,
        _state: PhantomData,
    }
}

/// Run `use_it` with the state locked: the future every state job becomes.
fn locked<S, T, Fut>(
    caller: String,
    use_it: impl FnOnce(Rc<Cell<S>>) -> Fut,
) -> impl Future<Output = Result<T, Error>>
where
    S: 'static,
    Fut: Future<Output = Result<T, Error>>,
{
    let cell = get::<S>(&caller);
    async move { use_it(cell?).await }
}

impl<S, F, T> IntoJob<T> for StateJob<S, F>
where
    S: 'static,
    F: FnOnce(&mut S) -> T + Send + 'static,
    T: Send + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        let (f, caller) = (self.f, caller_name(&b));
        b.future(move || {
            locked::<S, T, _>(caller, move |cell| async move {
                let mut state = cell.lock().await;
                Ok(f(&mut state))
            })
        })
    }
}

impl<S, F, T> IntoJob<T> for StateAsyncJob<S, F>
where
    S: 'static,
    F: AsyncFnOnce(&mut S) -> T + Send + 'static,
    T: Send + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        let (f, caller) = (self.f, caller_name(&b));
        b.future(move || {
            locked::<S, T, _>(caller, move |cell| async move {
                let mut state = cell.lock().await;
                Ok(f(&mut state).await)
            })
        })
    }
}

impl<S, F, T, E> IntoJob<T> for TryStateJob<S, F>
where
    S: 'static,
    F: FnOnce(&mut S) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        let (f, caller) = (self.f, caller_name(&b));
        b.future(move || {
            locked::<S, T, _>(caller, move |cell| async move {
                let mut state = cell.lock().await;
                f(&mut state).map_err(Error::failed)
            })
        })
    }
}

impl<S, F, T, E> IntoJob<T> for TryStateAsyncJob<S, F>
where
    S: 'static,
    F: AsyncFnOnce(&mut S) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<BoxError> + 'static,
{
    fn __build(self, b: JobBuilder<T>) -> BuiltJob {
        let (f, caller) = (self.f, caller_name(&b));
        b.future(move || {
            locked::<S, T, _>(caller, move |cell| async move {
                let mut state = cell.lock().await;
                f(&mut state).await.map_err(Error::failed)
            })
        })
    }
}
