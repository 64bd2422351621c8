//! The process-wide registry of callers, and per-thread ids.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::{Caller, CallerId};
use crate::sync::global::AtomicU64;
use crate::sync::{lock, Mutex, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static MAIN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_ID: Cell<Option<CallerId>> = const { Cell::new(None) };
}

fn callers() -> &'static Mutex<HashMap<CallerId, Caller>> {
    static CALLERS: OnceLock<Mutex<HashMap<CallerId, Caller>>> = OnceLock::new();
    CALLERS.get_or_init(Default::default)
}

/// A fresh id, for a caller on a thread that does not exist yet.
pub(super) fn new_id() -> CallerId {
    CallerId(NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The id of the current thread, assigned on first use.
pub(super) fn thread_id() -> CallerId {
    THREAD_ID.with(|t| match t.get() {
        Some(id) => id,
        None => {
            let id = new_id();
            t.set(Some(id));
            id
        }
    })
}

/// Give the current (new) thread the id its caller was created with.
pub(super) fn adopt_thread_id(id: CallerId) {
    THREAD_ID.with(|t| t.set(Some(id)));
}

pub(super) fn insert(c: &Caller) {
    if c.inner.is_main {
        MAIN.store(c.inner.id.0, Ordering::Release);
    }
    lock(callers()).insert(c.inner.id, c.clone());
}

pub(super) fn remove(c: &Caller) {
    if c.inner.is_main {
        let _ = MAIN.compare_exchange(c.inner.id.0, 0, Ordering::AcqRel, Ordering::Acquire);
    }
    let mut map = lock(callers());
    if map.get(&c.inner.id).is_some_and(|x| x == c) {
        map.remove(&c.inner.id);
    }
}

pub(crate) fn get(id: CallerId) -> Option<Caller> {
    lock(callers()).get(&id).cloned()
}

pub(super) fn main() -> Option<Caller> {
    match MAIN.load(Ordering::Acquire) {
        0 => None,
        id => get(CallerId(id)),
    }
}

pub(super) fn all() -> Vec<Caller> {
    let mut v: Vec<Caller> = lock(callers()).values().cloned().collect();
    v.sort_by_key(|c| c.inner.id);
    v
}
