//! Hash a few thousand items on worker threads, with a progress bar:
//! `cargo run --example progress`.
//!
//! - A lazy iterator schedules each item with `to_thread` only when `as_completed`
//!   pulls it, so at most `MAX_CONCURRENT` items are in flight (and that many workers busy).
//! - Everything runs inside a `PendingGroup`: the first error cancels the rest, and so
//!   does Ctrl-C (the handler cancels the group from its own thread).
//! - `--fail-at N` makes item N fail; `--slow` makes each item take about 20 ms (time to
//!   press Ctrl-C). A slow item polls its own pending and stops early when cancelled.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caller::{job, CallOptions, Caller, Error, GroupMode, PendingGroup};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

const ITEMS: usize = 3000;
const MAX_CONCURRENT: usize = 8;

/// An item that cannot be processed.
#[derive(Debug)]
struct Corrupt(usize);

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item {} is corrupt", self.0)
    }
}

impl std::error::Error for Corrupt {}

/// What the workers share: how many run now, the most that ever ran at once, and
/// which worker threads took part.
#[derive(Default)]
struct Stats {
    running: AtomicUsize,
    peak: AtomicUsize,
    workers: Mutex<HashSet<String>>,
}

/// The item's contents: 4 KiB made up from its number (a real program reads a file).
fn contents(i: usize) -> Vec<u8> {
    (0..4096u32)
        .map(|j| (j.wrapping_mul(31) ^ i as u32).to_le_bytes()[0])
        .collect()
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Runs on a pooled worker thread.
fn hash_item(i: usize, fail_at: Option<usize>, slow: bool, stats: &Stats) -> Result<u64, Corrupt> {
    let now = stats.running.fetch_add(1, Ordering::SeqCst) + 1;
    stats.peak.fetch_max(now, Ordering::SeqCst);
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    stats.workers.lock().unwrap().insert(name);

    let result = (|| {
        if slow {
            // Long sync work cannot be interrupted; it polls its own pending instead.
            let me = Caller::current_pending().expect("runs as a scheduled call");
            for _ in 0..20 {
                if me.cancelled() {
                    return Ok(0); // discarded: the pending is cancelled
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if Some(i) == fail_at {
            return Err(Corrupt(i));
        }
        Ok(fnv1a(&contents(i)))
    })();
    stats.running.fetch_sub(1, Ordering::SeqCst);
    result
}

fn main() {
    let mut fail_at = None;
    let mut slow = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--slow" => slow = true,
            "--fail-at" => fail_at = args.next().and_then(|n| n.parse().ok()),
            other => {
                eprintln!("unknown argument {other:?}; use --slow and/or --fail-at N");
                std::process::exit(2);
            }
        }
    }

    // Ctrl-C cancels the group from the handler's thread; the group cancels its members.
    let group = PendingGroup::builder()
        .mode(GroupMode::CancelAndRaise)
        .build();
    let on_ctrl_c = group.clone();
    ctrlc::set_handler(move || {
        on_ctrl_c.cancel("interrupted by Ctrl-C");
    })
    .expect("install the Ctrl-C handler");

    let bar = ProgressBar::new(ITEMS as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} items, {per_sec}, eta {eta}")
            .expect("a valid template"),
    );
    println!("hashing {ITEMS} items, at most {MAX_CONCURRENT} at once (Ctrl-C stops cleanly)");

    let stats = Arc::new(Stats::default());
    let scheduled = Arc::new(AtomicUsize::new(0));
    let mut hashed = 0usize;
    let (counter, shared) = (scheduled.clone(), stats.clone());
    let outcome = futures::executor::block_on(group.run(async {
        // Lazy: an item is scheduled only when the stream pulls it.
        let items = (0..ITEMS).map(move |i| {
            counter.fetch_add(1, Ordering::SeqCst);
            let stats = shared.clone();
            caller::to_thread_with(
                job::try_sync(move || hash_item(i, fail_at, slow, &stats)),
                CallOptions::new().name(format!("hash item {i}")),
            )
        });
        let mut done = caller::as_completed(items).max_concurrent(MAX_CONCURRENT);
        let mut digest = 0u64;
        while let Some(item) = done.next().await {
            match item.await {
                Ok(h) => {
                    digest ^= h;
                    hashed += 1;
                    bar.inc(1);
                }
                // The first failure (or Ctrl-C) has already cancelled the group, and so
                // every item in flight (callbacks run before this wake-up): stop pulling.
                Err(_) => break,
            }
        }
        digest
    }));
    bar.finish_and_clear();

    let scheduled = scheduled.load(Ordering::SeqCst);
    match outcome {
        Ok(Some(digest)) => println!("hashed all {hashed} items; digest {digest:016x}"),
        Ok(None) => println!("the group ended quietly before the end"),
        Err(Error::Group(g)) => println!(
            "stopped at the first error: {}",
            g.failures
                .first()
                .map_or(String::new(), ToString::to_string)
        ),
        Err(e) => println!("stopped: {e}"),
    }
    println!(
        "{hashed} hashed, {} cancelled or failed after they were scheduled, {} never scheduled",
        scheduled - hashed,
        ITEMS - scheduled
    );
    println!(
        "at most {} item(s) ran at once, on {} worker thread(s)",
        stats.peak.load(Ordering::SeqCst),
        stats.workers.lock().unwrap().len()
    );
}
