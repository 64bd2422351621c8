//! The macro DSL in one program: `#[caller::main]`, `#[caller::on_thread]` (a pooled worker,
//! a named caller, the main thread), `#[caller::queued]` and `caller::pending_group!`.
//!
//! Run with `cargo run --example macros`.

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::Duration;

use caller::{Caller, Error};

/// CPU work: runs on a pooled worker thread; the caller gets a `Pending<u32>` at once.
#[caller::on_thread]
fn checksum(data: Vec<u8>) -> u32 {
    data.iter().map(|&b| u32::from(b)).sum()
}

thread_local! {
    /// A thread-confined resource (think: a database connection that is not `Send`).
    static TABLE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs on the caller named "db" (a child of the current caller, created on first use),
/// so every call sees the same thread-local table.
#[caller::on_thread(name = "db")]
async fn insert(row: String) -> usize {
    TABLE.with(|t| {
        t.borrow_mut().push(row);
        t.borrow().len()
    })
}

/// Runs on the main thread's caller (where a GUI toolkit would want it).
#[caller::on_thread(main)]
fn show(line: String) -> String {
    format!("[{}] {line}", std::thread::current().name().unwrap_or("?"))
}

/// Fire and forget: each call is queued and the bodies run one at a time, in call order.
#[caller::queued]
fn audit(event: String, log: mpsc::Sender<String>) {
    let _ = log.send(event);
}

#[caller::main]
async fn main() -> Result<(), Error> {
    let me = Caller::current().expect("#[caller::main] makes main a caller");
    println!("main runs the caller {:?}", me.name());

    let sum = checksum(b"hello".to_vec()).await?;
    println!("checksum on a worker: {sum}");

    // A structured scope: both inserts join the group, which waits for them and would
    // cancel the other if one failed.
    let rows = caller::pending_group!(mode = cancel_and_raise, timeout = 5s, {
        let a = insert("alice".into());
        let b = insert("bob".into());
        Ok::<_, Error>(a.await?.max(b.await?))
    })?;
    println!("rows on \"db\": {:?}", rows.expect("the body finished")?);

    let (tx, rx) = mpsc::channel();
    audit("first".into(), tx.clone());
    audit("second".into(), tx);
    for _ in 0..2 {
        let event = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a queued audit call ran");
        println!("audited: {event}");
    }

    println!("{}", show("back on the main thread".into()).await?);
    Ok(())
}
