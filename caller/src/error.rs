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
    /// The function returned `Err` (fallible jobs, see [`job`](crate::job)).
    Failed(Arc<dyn std::error::Error + Send + Sync + 'static>),
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
    Group(Arc<crate::tracker::GroupError>),
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

    /// A failure wrapping the function's own error (its `source` is kept).
    ///
    /// ```
    /// let err = caller::Error::failed(std::io::Error::other("disk full"));
    /// assert!(err.downcast_ref::<std::io::Error>().is_some());
    /// ```
    pub fn failed(err: impl Into<BoxError>) -> Self {
        Error::Failed(Arc::from(err.into()))
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

    /// `true` for [`Error::TimedOut`].
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(caller::Error::TimedOut { after: Duration::from_secs(1) }.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }

    /// `true` for [`Error::Panicked`].
    ///
    /// ```
    /// assert!(!caller::Error::cancelled("").is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        matches!(self, Error::Panicked { .. })
    }

    /// `true` when this error is a *failure* in the seed's sense of an exception: the
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
            Error::Failed(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }

    /// The cancel message, for a cancellation.
    ///
    /// ```
    /// assert_eq!(caller::Error::cancelled("x").cancel_message(), Some("x"));
    /// ```
    pub fn cancel_message(&self) -> Option<&str> {
        match self {
            Error::Cancelled { message } => Some(message),
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
            Error::Failed(e) => write!(f, "failed: {e}"),
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
            Error::Failed(e) => Some(&**e),
            Error::Group(g) => Some(&**g),
            _ => None,
        }
    }
}

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
