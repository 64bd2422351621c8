//! A first tour of `caller`: `cargo run --example tour`.
//!
//! - a `!Send` resource (an `Rc<RefCell<..>>`) lives on the caller named "store" and is
//!   used from plain threads and from a tokio runtime;
//! - CPU work runs on a pooled worker;
//! - a slow call is cancelled with a message, from another thread;
//! - a synchronous wait gives up after a timeout;
//! - a structured group waits for its members and cancels them on failure.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use caller::Error;

thread_local! {
    /// Thread-confined on purpose: `Rc` is neither `Send` nor `Sync`.
    static INVENTORY: Rc<RefCell<BTreeMap<String, u32>>> = Rc::default();
}

/// Runs on the caller "store" (created under the main caller on first use).
#[caller::on_thread(name = "store")]
fn add(item: String, n: u32) -> u32 {
    INVENTORY.with(|inv| *inv.borrow_mut().entry(item).or_default() += n);
    n
}

/// An async call on "store": its future holds the `Rc` across an await.
#[caller::on_thread(name = "store")]
async fn total() -> u32 {
    let inv = INVENTORY.with(Rc::clone);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let sum = inv.borrow().values().sum();
    sum
}

/// A slow call on "store", to cancel.
#[caller::on_thread(name = "store")]
async fn slow_report() -> String {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "never".into()
}

/// CPU work on a pooled worker thread.
#[caller::on_thread]
fn count_primes(below: u32) -> usize {
    (2..below)
        .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
        .count()
}

/// A call that fails: its `Err` fails the group it belongs to.
#[caller::on_thread]
fn parse(text: String) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

#[caller::main]
async fn main() -> Result<(), Error> {
    // 1. Plain threads call into "store" and wait synchronously.
    let threads: Vec<_> = ["apples", "pears", "plums"]
        .into_iter()
        .map(|item| std::thread::spawn(move || add(item.into(), 3).wait_sync(None)))
        .collect();
    for t in threads {
        t.join().expect("thread finished")?;
    }

    // 2. A tokio runtime on another thread awaits an async call on "store".
    let total = std::thread::spawn(|| {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        rt.block_on(total())
    })
    .join()
    .expect("tokio thread finished")?;
    println!("inventory on 'store': {total} items");

    // 3. CPU work on a pooled worker, awaited here.
    println!(
        "to_thread counted {} primes below 20000",
        count_primes(20_000).await?
    );

    // 4. Cancel a slow call with a message, from another thread.
    let mut slow = slow_report();
    let view = slow.any();
    std::thread::spawn(move || view.cancel("closing time"))
        .join()
        .expect("canceller");
    if let Err(err) = slow.wait(Some(Duration::from_secs(5))).await {
        println!("slow call: {err}");
    }

    // 5. A synchronous wait with a timeout (from a plain thread): the pending is
    //    cancelled when it expires.
    let line = std::thread::spawn(|| {
        let mut stuck = slow_report();
        let err = stuck
            .wait_sync(Some(Duration::from_millis(50)))
            .unwrap_err();
        format!("waited 50ms: {err}; cancelled: {}", stuck.cancelled())
    })
    .join()
    .expect("waiting thread");
    println!("{line}");

    // 6. A group: one member fails, so the group cancels the other and reports it.
    let out = caller::pending_group!(mode = cancel_and_raise, {
        let _slow = slow_report();
        let _bad = parse("forty-two".into());
    });
    println!("group: {}", out.unwrap_err());
    Ok(())
}
