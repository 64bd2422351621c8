//! A counting global allocator for the tests that check memory (`tests/leaks.rs`,
//! `tests/stress.rs`): it forwards to the system allocator and keeps the live heap in one
//! atomic. Include it with `#[path = "support/alloc.rs"] mod alloc;`: it installs itself
//! as the test binary's global allocator.
//!
//! The libraries forbid `unsafe`; implementing `GlobalAlloc` needs it, so this test-only
//! file is the one place of the workspace that has some. Each block only forwards the
//! caller's own arguments to `System`.
#![allow(dead_code, unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

#[global_allocator]
static GLOBAL: Counting = Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` contract is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` and `layout` come from this allocator, `new_size` from the caller.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes allocated and not yet freed, process-wide.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Allocations made so far (reallocations included).
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// Wait (within `limit`) until the live heap is at most `base + slack` bytes; threads that
/// stopped free their last memory as they exit, a little after they say so. Returns the
/// last growth seen: `Ok` if it came down to the bound, `Err` if it never did.
pub fn settle(base: isize, slack: isize, limit: Duration) -> Result<isize, isize> {
    let start = Instant::now();
    loop {
        let grown = live_bytes() - base;
        if grown <= slack {
            return Ok(grown);
        }
        if start.elapsed() > limit {
            return Err(grown);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
