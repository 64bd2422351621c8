//! The one error type of the crate.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error of a function scheduled with one of the fallible job kinds.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a [`Pending`](crate::Pending) did not produce a value, or why a call into the
/// library was refused.
///
/// `Error` is cheap to clone (failures are shared behind an [`Arc`]) so that every waiter,
/// group and done callback can see the same outcome.
///
/// ```
/// use caller::Error;
/// let err = Error::cancelled("user pressed stop");
/// assert!(err.is_cancelled());
/// assert_eq!(err.to_string(), "cancelled: user pressed stop");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Error {
    /// The pending was cancelled. `message` holds every cancel message, newline-joined.
    Cancelled {
        /// The accumulated cancel messages (may be empty).
        message: String,
    },
    /// The function panicked; the panic was caught on its thread.
    Panicked {
        /// The panic payload rendered as text.
        message: String,
    },
    /// The function returned `Err` (fallible jobs, see [`job`](crate::job)): its own
    /// error, shared by every waiter. `Display` and `source()` are the function's error's
    /// own (transparent), so an error chain prints each message once.
    Failed(Failure),
    /// A wait gave up after `after`.
    TimedOut {
        /// How long the wait lasted.
        after: Duration,
    },
    /// A synchronous wait was asked on the very thread that must complete the pending.
    WouldDeadlock {
        /// The name of the caller whose thread would have been blocked.
        caller: String,
    },
    /// The caller is stopped (or stopping) and refused the request.
    CallerStopped {
        /// The caller's name.
        caller: String,
    },
    /// A structured-concurrency scope ended with failures (see
    /// [`PendingGroup`](crate::PendingGroup)).
    Group(Arc<GroupError>),
    /// A caller exists with other settings than the ones asked for.
    Mismatch {
        /// What differs (`"name"`, `"backend"`).
        what: &'static str,
        /// The setting that was asked for.
        expected: String,
        /// The setting the existing caller has.
        found: String,
    },
    /// A public function was given an argument it cannot use, or used in a state that does
    /// not allow it.
    Invalid {
        /// What was wrong, in plain words.
        message: String,
    },
    /// The value of this pending was already taken by an earlier wait.
    Taken,
}

impl Error {
    /// A cancellation with `message`.
    ///
    /// ```
    /// assert!(caller::Error::cancelled("bye").is_cancelled());
    /// ```
    pub fn cancelled(message: impl Into<String>) -> Self {
        Error::Cancelled {
            message: message.into(),
        }
    }

    /// A failure wrapping the function's own error.
    ///
    /// An `err` that is itself a `caller::Error` keeps its kind: a cancellation propagated
    /// with `?` stays a cancellation (a mode-0 group ignores it), a timeout stays a
    /// timeout. Only foreign errors become [`Error::Failed`].
    ///
    /// ```
    /// let err = caller::Error::failed(std::io::Error::other("disk full"));
    /// assert!(err.downcast_ref::<std::io::Error>().is_some());
    /// assert_eq!(err.to_string(), "disk full");
    /// // Our own errors are not wrapped again.
    /// assert!(caller::Error::failed(caller::Error::cancelled("stop")).is_cancelled());
    /// ```
    pub fn failed(err: impl Into<BoxError>) -> Self {
        match err.into().downcast::<Error>() {
            Ok(own) => *own,
            Err(foreign) => Error::Failed(Failure(Arc::new(foreign))),
        }
    }

    /// An invalid-argument error.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
        }
    }

    /// `true` for [`Error::Cancelled`], and for a group that ended cancelled.
    ///
    /// ```
    /// assert!(!caller::Error::Taken.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        match self {
            Error::Cancelled { .. } => true,
            Error::Group(g) => g.failures.is_empty() && g.cancelled.is_some(),
            _ => false,
        }
    }

    /// `true` for [`Error::TimedOut`], and for a group that ended because its own timeout
    /// passed ([`GroupError::timed_out`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(caller::Error::TimedOut { after: Duration::from_secs(1) }.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::TimedOut { .. } => true,
            Error::Group(g) => g.timed_out.is_some(),
            _ => false,
        }
    }

    /// `true` for [`Error::Panicked`].
    ///
    /// ```
    /// assert!(!caller::Error::cancelled("").is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked { .. })
    }

    /// `true` when this error is a *failure* in async-kernel's sense of an exception: the
    /// function panicked or returned `Err`, or a group ended with such failures.
    /// Cancellation and timeouts are not failures.
    ///
    /// ```
    /// assert!(caller::Error::failed("boom").is_failure());
    /// assert!(!caller::Error::cancelled("stop").is_failure());
    /// ```
    pub fn is_failure(&self) -> bool {
        match self {
            Error::Panicked { .. } | Error::Failed(_) => true,
            Error::Group(g) => !g.failures.is_empty(),
            _ => false,
        }
    }

    /// The function's own error, if this is [`Error::Failed`] with an `E` inside.
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Mine;
    /// impl std::fmt::Display for Mine {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("mine") }
    /// }
    /// impl std::error::Error for Mine {}
    /// assert!(caller::Error::failed(Mine).downcast_ref::<Mine>().is_some());
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Failed(e) => e.get().downcast_ref::<E>(),
            _ => None,
        }
    }

    /// Take the function's own error back by value, if this is [`Error::Failed`] with an
    /// `E` inside; otherwise `Err(self)` unchanged.
    ///
    /// A failure is shared by everyone who saw it (a group that recorded it, a done
    /// callback that kept a clone): it can be taken by value only while this is its one
    /// handle, as it is for the owner of a pending that awaited it. When it is shared,
    /// `Err(self)` comes back and [`downcast_ref`](Self::downcast_ref) still works.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let worker = caller::Caller::new_thread("doc-downcast")?;
    /// let mut p = worker.call_soon(caller::job::try_sync(|| "x".parse::<u8>()));
    /// let err = p.wait_sync(None).unwrap_err();
    /// let parse: std::num::ParseIntError = err.downcast().expect("the function's own error");
    /// assert_eq!(parse.to_string(), "invalid digit found in string");
    /// # worker.stop(true); Ok(()) }
    /// ```
    pub fn downcast<E: std::error::Error + 'static>(self) -> Result<E, Error> {
        match self {
            Error::Failed(Failure(arc)) => {
                if !arc.is::<E>() {
                    return Err(Error::Failed(Failure(arc)));
                }
                match Arc::try_unwrap(arc) {
                    Ok(boxed) => match boxed.downcast::<E>() {
                        Ok(e) => Ok(*e),
                        Err(boxed) => Err(Error::Failed(Failure(Arc::new(boxed)))),
                    },
                    Err(shared) => Err(Error::Failed(Failure(shared))),
                }
            }
            other => Err(other),
        }
    }

    /// The cancel message, for a cancellation (a group that ended cancelled included).
    ///
    /// ```
    /// assert_eq!(caller::Error::cancelled("x").cancel_message(), Some("x"));
    /// ```
    pub fn cancel_message(&self) -> Option<&str> {
        match self {
            Error::Cancelled { message } => Some(message),
            Error::Group(g) if g.failures.is_empty() => g.cancelled.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled { message } if message.is_empty() => f.write_str("cancelled"),
            Error::Cancelled { message } => write!(f, "cancelled: {message}"),
            Error::Panicked { message } => write!(f, "panicked: {message}"),
            // Transparent: the function's error speaks for itself; `source()` goes on
            // from there.
            Error::Failed(e) => fmt::Display::fmt(e, f),
            Error::TimedOut { after } => write!(f, "timed out after {after:?}"),
            Error::WouldDeadlock { caller } => write!(
                f,
                "would deadlock: a synchronous wait on caller '{caller}' from its own thread \
                 (await the pending instead)"
            ),
            Error::CallerStopped { caller } => write!(f, "caller '{caller}' is stopped"),
            Error::Group(g) => fmt::Display::fmt(g, f),
            Error::Mismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "a caller exists with {what} {found:?}, but {expected:?} was asked for"
            ),
            Error::Invalid { message } => write!(f, "invalid argument: {message}"),
            Error::Taken => f.write_str("the value of this pending was already taken"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            Error::Group(g) => f.debug_tuple("Group").field(g).finish(),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Both forward `Display` to the inner error, so `source()` is the inner
            // error's own source: each message is printed once in a chain.
            Error::Failed(e) => e.get().source(),
            Error::Group(g) => std::error::Error::source(&**g),
            _ => None,
        }
    }
}

/// The function's own error inside [`Error::Failed`], shared by every waiter.
///
/// It dereferences to the error (`dyn Error + Send + Sync`), forwards `Display` and
/// `Debug` to it, and its `source()` is the error's own source.
///
/// ```
/// let err = caller::Error::failed(std::io::Error::other("disk full"));
/// let caller::Error::Failed(failure) = &err else { unreachable!() };
/// assert!(failure.downcast_ref::<std::io::Error>().is_some());
/// assert_eq!(failure.to_string(), "disk full");
/// ```
#[derive(Clone)]
pub struct Failure(Arc<BoxError>);

impl Failure {
    /// The error.
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &**self.0
    }

    /// A stand-in carrying only the error's text: what views of a pending see after its
    /// owner took the failure by value.
    pub(crate) fn text_only(&self) -> Failure {
        Failure(Arc::new(Box::new(FailureText(self.to_string()))))
    }
}

impl std::ops::Deref for Failure {
    type Target = dyn std::error::Error + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        self.get()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.get(), f)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.get(), f)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.get().source()
    }
}

/// The text of a failure whose error was taken by its owner.
#[derive(Debug)]
struct FailureText(String);

impl fmt::Display for FailureText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FailureText {}

/// How a [`PendingGroup`](crate::PendingGroup) ended when it did not end quietly.
///
/// Its `Display` lists every failure in its own words and its `source()` is `None` (a
/// group can hold many failures; each is in [`failures`](Self::failures)).
///
/// ```
/// use caller::{job, CallOptions, Error, GroupMode, PendingGroup};
/// let out = futures::executor::block_on(PendingGroup::new(GroupMode::CancelAndRaise).run(async {
///     let item = CallOptions::new().name("parse").meta("item", "17");
///     let _ = caller::to_thread_with(job::try_sync(|| "x".parse::<u8>()), item).await;
/// }));
/// let Err(Error::Group(g)) = out else { panic!("the group raises") };
/// assert_eq!(g.failures[0].meta("item"), Some("17"));
/// assert!(g.to_string().contains("invalid digit"));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GroupError {
    /// Every failure (panic or `Err`) of a member, in the order they happened. A nested
    /// group that raised is one entry, its own `GroupError` inside.
    pub failures: Vec<MemberFailure>,
    /// The cancel message, when the group ended cancelled.
    pub cancelled: Option<String>,
    /// The group's own timeout, when that is what ended it.
    pub timed_out: Option<Duration>,
    /// Members still running when the group gave up waiting for them.
    pub abandoned: Vec<String>,
}

/// One failed member of a group: which pending it was, and its error.
///
/// ```
/// let f = caller::MemberFailure::new(7, "load", caller::Error::failed("disk full"));
/// assert_eq!(f.to_string(), "'load' (#7): disk full");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MemberFailure {
    /// The member's pending id (a nested group's id for a nested group).
    pub id: u64,
    /// The member's name.
    pub name: String,
    /// The name of the caller the member ran on, if any.
    pub caller: Option<String>,
    /// The member's user metadata (key, value), as set with `set_meta`.
    pub meta: Vec<(String, String)>,
    /// What the member failed with.
    pub error: Error,
}

impl MemberFailure {
    /// A failure record (groups make these; public for tests and custom trackers).
    pub fn new(id: u64, name: impl Into<String>, error: Error) -> Self {
        MemberFailure {
            id,
            name: name.into(),
            caller: None,
            meta: Vec::new(),
            error,
        }
    }

    /// The member's metadata value for `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for MemberFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' (#{})", self.name, self.id)?;
        for (k, v) in &self.meta {
            write!(f, " {k}={v}")?;
        }
        // The whole chain: a group's `source()` is `None`, so nothing is printed twice.
        write!(f, ": {}", self.error)?;
        let mut next = std::error::Error::source(&self.error);
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            match (self.timed_out, self.cancelled.as_deref()) {
                (Some(after), _) => write!(f, "the group timed out after {after:?}")?,
                (None, Some(m)) if !m.is_empty() => write!(f, "group cancelled: {m}")?,
                _ => f.write_str("group cancelled")?,
            }
        } else {
            let n = self.failures.len();
            write!(
                f,
                "{n} member{} of the group failed",
                if n == 1 { "" } else { "s" }
            )?;
            for m in &self.failures {
                // A nested group's failures are indented under it.
                let text = m.to_string().replace('\n', "\n    ");
                write!(f, "\n  - {text}")?;
            }
        }
        if !self.abandoned.is_empty() {
            write!(
                f,
                "\n  still running when the group gave up waiting: {}",
                self.abandoned.join(", ")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for GroupError {}

/// Render a caught panic payload as text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
