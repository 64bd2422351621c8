//! Per-caller attachments: state that a module standing above `caller` keeps for each
//! caller (the queue module's table of queues), made on first use and told when the
//! caller stops. The caller knows nothing of what is attached.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use super::Caller;
use crate::sync::lock;

/// Something attached to a caller with [`Caller::attachment`].
pub(crate) trait OnStop: Send + Sync + 'static {
    /// The caller stopped (`reason` says so in words): close what is attached. Called
    /// once, on the stopping thread; at once for an attachment made after the stop.
    fn caller_stopped(&self, reason: &str);
}

/// One attachment, seen as itself (to hand it back) and as a stop hook.
type Attached = (Arc<dyn Any + Send + Sync>, Arc<dyn OnStop>);

/// A caller's attachments, by type.
#[derive(Default)]
pub(super) struct Attachments {
    by_type: HashMap<TypeId, Attached>,
    /// Set once the stop hooks ran: later attachments are told at once.
    stopped: bool,
}

impl Caller {
    /// The `T` attached to this caller, made (with `T::default()`) on first use. After
    /// the caller stopped, a new `T` is told so before it is returned (and is not kept), so
    /// that nothing attached escapes the stop.
    pub(crate) fn attachment<T: OnStop + Default>(&self) -> Arc<T> {
        let mut all = lock(&self.inner.attachments);
        if let Some((any, _)) = all.by_type.get(&TypeId::of::<T>()) {
            return any
                .clone()
                .downcast::<T>()
                .expect("attachments are stored under their own type");
        }
        let made = Arc::new(T::default());
        if all.stopped {
            // Told before anyone else can see it, and never stored: each later use makes
            // its own, already stopped (regression: stored first and told after the lock
            // was released, another thread could use it meanwhile as if the caller ran).
            drop(all);
            made.caller_stopped(&self.stop_reason());
            return made;
        }
        all.by_type
            .insert(TypeId::of::<T>(), (made.clone(), made.clone()));
        made
    }

    /// Tell every attachment that the caller stopped (once).
    pub(super) fn stop_attachments(&self, reason: &str) {
        let hooks: Vec<Arc<dyn OnStop>> = {
            let mut all = lock(&self.inner.attachments);
            if std::mem::replace(&mut all.stopped, true) {
                return;
            }
            all.by_type.values().map(|(_, hook)| hook.clone()).collect()
        };
        for hook in hooks {
            hook.caller_stopped(reason);
        }
    }
}
