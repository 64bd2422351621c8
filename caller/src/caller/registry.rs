//! The process-wide registry of callers: every caller not yet stopped, by id, and which
//! one is the main thread's.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Caller;
use crate::rt::CallerId;
use crate::sync::global::AtomicU64;
use crate::sync::{lock, Mutex, Ordering};

static MAIN: AtomicU64 = AtomicU64::new(0);

fn callers() -> &'static Mutex<HashMap<CallerId, Caller>> {
    static CALLERS: OnceLock<Mutex<HashMap<CallerId, Caller>>> = OnceLock::new();
    CALLERS.get_or_init(Default::default)
}

pub(super) fn insert(c: &Caller) {
    if c.inner.is_main {
        MAIN.store(c.inner.id.as_u64(), Ordering::Release);
    }
    lock(callers()).insert(c.inner.id, c.clone());
}

pub(super) fn remove(c: &Caller) {
    if c.inner.is_main {
        let _ = MAIN.compare_exchange(c.inner.id.as_u64(), 0, Ordering::AcqRel, Ordering::Acquire);
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
        id => get(CallerId::from_u64(id)),
    }
}

pub(super) fn all() -> Vec<Caller> {
    let mut v: Vec<Caller> = lock(callers()).values().cloned().collect();
    v.sort_by_key(|c| c.inner.id);
    v
}
