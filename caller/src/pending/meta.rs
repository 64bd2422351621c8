//! What a pending knows about itself: its [`Metadata`] (id, name, caller, creation time,
//! fixed when it is made), and the user's key/values ([`UserMeta`], set with
//! [`AnyPending::set_meta`]), kept under the state lock in the state's rarely used part.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use super::view::AnyPending;
use crate::sync::Ordering;

/// What a pending knows about itself: shown by `Debug` and attached to the call's tracing
/// span.
///
/// ```
/// let p = caller::Pending::<u8>::new();
/// assert_eq!(p.metadata().name(), "pending");
/// assert!(p.metadata().caller().is_none());
/// ```
#[derive(Clone, Debug)]
pub struct Metadata {
    id: u64,
    name: Cow<'static, str>,
    caller: Option<(crate::rt::CallerId, Arc<str>)>,
    created: Instant,
}

impl Metadata {
    pub(crate) fn new(
        name: Cow<'static, str>,
        caller: Option<(crate::rt::CallerId, Arc<str>)>,
    ) -> Self {
        static NEXT_ID: crate::sync::global::AtomicU64 = crate::sync::global::AtomicU64::new(1);
        Metadata {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            caller,
            created: Instant::now(),
        }
    }

    /// A process-unique id of the pending.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The function's name (its type name unless given in [`CallOptions`](crate::CallOptions)).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id and name of the caller the call runs on; `None` for a pending made by hand.
    pub fn caller(&self) -> Option<(crate::rt::CallerId, &str)> {
        self.caller.as_ref().map(|(id, n)| (*id, &**n))
    }

    /// When the pending was created.
    pub fn created(&self) -> Instant {
        self.created
    }
}

/// The user's key/values of a pending, in the order first set; a key appears once.
#[derive(Default)]
pub(super) struct UserMeta(Vec<(String, String)>);

impl UserMeta {
    /// Set `key` to `value`, replacing an earlier value of the same key in its place.
    fn set(&mut self, key: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(kv) => kv.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub(super) fn as_slice(&self) -> &[(String, String)] {
        &self.0
    }
}

impl AnyPending {
    /// The process-unique id of the pending.
    ///
    /// ```
    /// let (a, b) = (caller::Pending::<()>::new(), caller::Pending::<()>::new());
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.header().meta.id
    }

    /// The pending's metadata.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// assert_eq!(p.metadata().id(), p.id());
    /// ```
    pub fn metadata(&self) -> &Metadata {
        &self.header().meta
    }

    /// Every user key/value, in the order first set.
    pub(crate) fn user_meta(&self) -> Vec<(String, String)> {
        self.header().lock().user_meta().to_vec()
    }

    /// Attach a user key/value to the pending (shown by `Debug`). Replaces an earlier value
    /// of the same key.
    ///
    /// ```
    /// let p = caller::Pending::<()>::new();
    /// p.set_meta("request", "42");
    /// assert_eq!(p.meta("request").as_deref(), Some("42"));
    /// ```
    pub fn set_meta(&self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        let mut st = self.header().lock();
        st.rare().user_meta.set(key, value);
    }

    /// A user key/value set with [`set_meta`](Self::set_meta).
    pub fn meta(&self, key: &str) -> Option<String> {
        let st = self.header().lock();
        st.user_meta()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}
