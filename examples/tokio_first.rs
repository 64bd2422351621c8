//! A program that already runs tokio makes its main thread a caller without giving up its
//! runtime: `cargo run --example tokio_first`.
//!
//! `#[tokio::main(flavor = "current_thread")]` owns the main thread. Inside it,
//! `Caller::builder().run_here(fut).await` makes that thread a caller for the life of `fut`:
//! worker threads then hand `!Send` work to it (a `Rc<RefCell<..>>` that never leaves the
//! main thread), while tokio timers and tasks keep running beside the caller. At the end,
//! `block_on` inside the runtime is shown to be an error that says what to use instead.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use caller::{Caller, Error};

thread_local! {
    /// State that only the main thread touches.
    static SEEN: Rc<RefCell<Vec<String>>> = Rc::default();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let main_thread = std::thread::current().id();
    let report = Caller::builder()
        .name("main")
        .run_here(async move {
            let here = Caller::current().expect("run_here made this thread a caller");
            println!(
                "main thread is now caller '{}' (main_thread() = {:?})",
                here.name(),
                Caller::main_thread().map(|c| c.name().to_owned())
            );

            // A tokio task beside the caller: the runtime is still ours.
            let ticker = tokio::spawn(async {
                for tick in 1..=3 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    println!("  tokio task: tick {tick}");
                }
            });

            // Three worker threads call back into the main thread's caller; the `Rc`
            // they touch never leaves it.
            let workers: Vec<_> = (1..=3)
                .map(|n| {
                    let main_caller = here.clone();
                    caller::to_thread(move || {
                        let from = std::thread::current().name().unwrap_or("?").to_owned();
                        main_caller.call_soon(move || {
                            assert_eq!(std::thread::current().id(), main_thread);
                            SEEN.with(|seen| seen.borrow_mut().push(format!("{from}#{n}")));
                        })
                    })
                })
                .collect();
            for worker in workers {
                worker.await?.await?;
            }
            ticker.await.expect("the tokio task ran");
            Ok::<_, Error>(SEEN.with(|seen| seen.borrow().clone()))
        })
        .await??;
    println!("main thread's state, filled from worker threads: {report:?}");
    assert_eq!(report.len(), 3);

    // Blocking inside the runtime is refused, with the way out in the message.
    let err = Caller::builder().block_on(async {}).unwrap_err();
    println!("block_on inside the runtime: {err}");
    println!(
        "after run_here: Caller::current() = {:?}",
        Caller::current()
    );
    Ok(())
}
