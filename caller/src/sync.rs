//! Every atomic and lock the crate uses comes through here, so that a model-checking build
//! swaps them in one place: with `RUSTFLAGS="--cfg caller_loom"`, the crate's unit tests
//! use loom's types and run the models of `pending/models.rs` and `caller/loops/model.rs`
//! (see `.ci/run`). The cfg is the crate's own: tokio's `--cfg loom` would also switch
//! tokio itself to loom, which it does not support from outside.
//!
//! What stays std's under a model, and why:
//! - [`global`]: process-wide counters and settings in `static`s (loom's atomics cannot be
//!   built in a `const`); they only hand out ids and read settings, no protocol rests on
//!   them.
//! - `OnceLock`, `Arc`, `Weak`: written once before they are shared, or counted references
//!   whose correctness std's own tests cover.

#[cfg(not(all(test, caller_loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(not(all(test, caller_loom)))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

#[cfg(all(test, caller_loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
#[cfg(all(test, caller_loom))]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

/// Atomics that live in `static`s: always std's (see the module docs).
pub(crate) mod global {
    pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
}

/// Lock a mutex, ignoring poisoning: no user code ever runs while one of the crate's locks
/// is held, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A busy-wait hint (under a model: a yield to the other threads).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(all(test, caller_loom)))]
    std::hint::spin_loop();
    #[cfg(all(test, caller_loom))]
    loom::hint::spin_loop();
}

/// Give up the time slice (under a model: a yield to the other threads).
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(all(test, caller_loom)))]
    std::thread::yield_now();
    #[cfg(all(test, caller_loom))]
    loom::thread::yield_now();
}

/// How many times a bounded spin checks its flag: `n`, or one check under a model (each
/// check is a point where the model tries every interleaving; one is enough to reach both
/// outcomes of the spin).
#[inline]
pub(crate) const fn spins(n: u32) -> u32 {
    if cfg!(all(test, caller_loom)) && n > 1 {
        1
    } else {
        n
    }
}

/// Whether a spin that started at `start` has used up `budget`. Under a model, time does
/// not pass between the model's steps: a spin is over after its checks (`spins`).
#[inline]
pub(crate) fn spin_expired(start: std::time::Instant, budget: std::time::Duration) -> bool {
    cfg!(all(test, caller_loom)) || start.elapsed() >= budget
}

/// Runs `f` under loom (the models are beside what they model: `pending/models.rs`,
/// `caller/loops/model.rs`) with a preemption bound: models of three threads stay in the
/// thousands of interleavings instead of millions, and the bugs of this kind (a missed
/// wake-up, a double finish) need one or two preemptions to show.
#[cfg(all(test, caller_loom))]
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(3);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = runs.clone();
    let start = std::time::Instant::now();
    b.check(move || {
        r.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    // Read by `.ci/run` for its figures.
    println!(
        "loom: {} interleavings in {:?}",
        runs.load(std::sync::atomic::Ordering::Relaxed),
        start.elapsed()
    );
}
