//! The options of a call ([`CallOptions`]) and the pool's `to_thread` functions (the
//! `call_*` methods themselves are in `mod.rs`, beside the `Caller` type, so that the
//! compiler names them `Caller::call_soon` in its messages).

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use super::pool;
use crate::context::{Context, Trackers};
use crate::job::{IntoJob, JobValue};
use crate::pending::Pending;

/// Options for scheduling one call with [`Caller::schedule_call`](crate::Caller::schedule_call).
///
/// ```
/// use caller::{CallOptions, Trackers};
/// let opts = CallOptions::new()
///     .name("load_user")
///     .trackers(Trackers::MANAGERS)
///     .meta("user", "42");
/// # let _ = opts;
/// ```
#[derive(Clone, Debug)]
pub struct CallOptions {
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) trackers: Trackers,
    pub(super) delay: Option<Duration>,
    pub(super) context: Option<Context>,
    pub(super) meta: Vec<(String, String)>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            name: None,
            trackers: Trackers::ALL,
            delay: None,
            context: None,
            meta: Vec::new(),
        }
    }
}

impl CallOptions {
    /// Default options: every tracker kind, the current context, no delay.
    #[must_use = "options do nothing until passed to `schedule_call` or `to_thread_with`"]
    pub fn new() -> Self {
        Self::default()
    }

    /// The function name shown in metadata, `Debug` and tracing (default: the path of the
    /// function the job is, or for a closure the function it is written in).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Which tracker kinds the pending joins (default [`Trackers::ALL`]).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn trackers(mut self, trackers: Trackers) -> Self {
        self.trackers = trackers;
        self
    }

    /// Start no sooner than `delay` after it reaches the caller.
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// The context to run in (default: [`Context::current`]).
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn context(mut self, ctx: Context) -> Self {
        self.context = Some(ctx);
        self
    }

    /// A user key/value stored in the pending's metadata.
    #[must_use = "a builder method returns the changed builder: use it (this one is left unchanged)"]
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.push((key.into(), value.into()));
        self
    }
}

/// Run `job` on a pooled worker thread; see [`Caller::to_thread`](crate::Caller::to_thread). For a closure that
/// returns a future, use [`to_thread_async`]: a plain `to_thread(|| async { .. })` hands
/// the future back unpolled (see [`Caller::call_soon`](crate::Caller::call_soon)).
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// assert_eq!(caller::to_thread(|| 2 + 2).wait_sync(None)?, 4);
/// # Ok(()) }
/// ```
pub fn to_thread<T, J>(job: J) -> Pending<T>
where
    T: Send + JobValue + 'static,
    J: IntoJob<T>,
{
    pool::to_thread(job, CallOptions::default())
}

/// [`to_thread_with`] without its `JobValue` bound (see [`Caller::schedule_job`]).
pub(crate) fn to_thread_job<T, J>(job: J, options: CallOptions) -> Pending<T>
where
    T: Send + 'static,
    J: IntoJob<T>,
{
    pool::to_thread(job, options)
}

/// [`to_thread`] with options (name, trackers, metadata).
pub fn to_thread_with<T, J>(job: J, options: CallOptions) -> Pending<T>
where
    T: Send + JobValue + 'static,
    J: IntoJob<T>,
{
    pool::to_thread(job, options)
}

/// [`to_thread`] for an async function.
///
/// ```
/// # fn main() -> Result<(), caller::Error> {
/// let p = caller::to_thread_async(|| async { 5 });
/// assert_eq!(futures::executor::block_on(p)?, 5);
/// # Ok(()) }
/// ```
pub fn to_thread_async<F, Fut>(f: F) -> Pending<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    pool::to_thread(crate::job::future(f), CallOptions::default())
}
