//! A first tour of `caller`: run this with `cargo run --example tour`.
//!
//! - a `!Send` resource (an `Rc<RefCell<..>>`) lives on a named caller's thread and is used
//!   from plain threads and from a tokio runtime;
//! - CPU work runs on a pooled worker with `to_thread`;
//! - a slow call is cancelled with a message;
//! - a synchronous wait gives up after a timeout.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use caller::{Caller, Error};

// The resource: thread-confined on purpose (`Rc` is neither `Send` nor `Sync`).
thread_local! {
    static INVENTORY: Rc<RefCell<BTreeMap<String, u32>>> = Rc::default();
}

fn add(item: &str, n: u32) {
    INVENTORY.with(|inv| *inv.borrow_mut().entry(item.to_owned()).or_default() += n);
}

fn main() -> Result<(), Error> {
    let store = Caller::new_thread("store")?;

    // 1. Plain threads schedule calls on the store's thread and wait synchronously.
    let threads: Vec<_> = ["apples", "pears", "plums"]
        .into_iter()
        .map(|item| {
            let store = store.clone();
            std::thread::spawn(move || store.call_soon(move || add(item, 3)).wait_sync(None))
        })
        .collect();
    for t in threads {
        t.join().expect("thread finished")?;
    }

    // 2. A tokio runtime awaits an async call whose future holds the `Rc` across an await.
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let total = rt.block_on(store.call_soon_async(|| async {
        let inv = INVENTORY.with(Rc::clone);
        tokio::time::sleep(Duration::from_millis(5)).await;
        let total: u32 = inv.borrow().values().sum();
        total
    }))?;
    println!("inventory on '{}': {total} items", store.name());

    // 3. CPU work on a pooled worker thread, awaited from tokio.
    let primes = rt.block_on(caller::to_thread(|| {
        (2u32..20_000)
            .filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0))
            .count()
    }))?;
    println!("to_thread counted {primes} primes below 20000");

    // 4. Cancel a slow call with a message, from another thread.
    let mut slow = store.call_soon_async(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "never"
    });
    let view = slow.any();
    std::thread::spawn(move || view.cancel("closing time"))
        .join()
        .expect("canceller");
    match slow.wait_sync(Some(Duration::from_secs(5))) {
        Err(err) => println!("slow call: {err}"),
        Ok(v) => println!("slow call unexpectedly returned {v}"),
    }

    // 5. A synchronous wait with a timeout: the pending is cancelled when it expires.
    let mut stuck = store.call_soon_async(std::future::pending::<()>);
    let err = stuck
        .wait_sync(Some(Duration::from_millis(50)))
        .unwrap_err();
    println!("waited 50ms: {err}; cancelled: {}", stuck.cancelled());

    store.stop(false);
    rt.block_on(store.stopped())?;
    println!("store stopped: {:?}", store.state());
    Ok(())
}
