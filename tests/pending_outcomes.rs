//! Every outcome (value, failure, panic, cancel) seen by every kind of waiter: tokio
//! multi-thread, tokio current-thread, `futures::executor::block_on`, and `wait_sync`
//! from a plain thread.

mod support;

use std::time::Duration;

use caller::{job, Caller, Error, Pending};
use support::LIMIT;

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Value,
    Failure,
    Panic,
    Cancel,
}

const OUTCOMES: [Outcome; 4] = [
    Outcome::Value,
    Outcome::Failure,
    Outcome::Panic,
    Outcome::Cancel,
];

#[derive(Debug)]
struct MyError;
impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}
impl std::error::Error for MyError {}

/// Schedule a call on `c` that ends with `outcome`.
fn make(c: &Caller, outcome: Outcome) -> Pending<u32> {
    match outcome {
        Outcome::Value => c.call_soon(|| 7),
        Outcome::Failure => c.call_soon(job::try_sync(|| Err::<u32, _>(MyError))),
        Outcome::Panic => c.call_soon(|| -> u32 { panic!("boom on purpose") }),
        Outcome::Cancel => {
            let p = c.call_soon_async(|| async {
                std::future::pending::<()>().await;
                0u32
            });
            p.cancel("stop it");
            p
        }
    }
}

fn check(outcome: Outcome, res: Result<u32, Error>) {
    match (outcome, res) {
        (Outcome::Value, Ok(7)) => {}
        (Outcome::Failure, Err(e)) => {
            assert!(e.is_failure(), "{e}");
            assert!(e.downcast_ref::<MyError>().is_some(), "source kept: {e:?}");
        }
        (Outcome::Panic, Err(Error::Panicked { message })) => {
            assert!(message.contains("boom on purpose"), "{message}")
        }
        (Outcome::Cancel, Err(Error::Cancelled { message })) => assert_eq!(message, "stop it"),
        (o, r) => panic!("{o:?} gave {r:?}"),
    }
}

fn target() -> Caller {
    Caller::new_thread("outcomes").expect("caller starts")
}

#[test]
fn seen_by_tokio_multi_thread() {
    let c = target();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for o in OUTCOMES {
        let p = make(&c, o);
        let res = rt.block_on(async {
            tokio::time::timeout(LIMIT, p)
                .await
                .expect("await finished")
        });
        check(o, res);
    }
    c.stop(true);
}

#[test]
fn seen_by_tokio_current_thread() {
    let c = target();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for o in OUTCOMES {
        let p = make(&c, o);
        let res = rt.block_on(async {
            tokio::time::timeout(LIMIT, p)
                .await
                .expect("await finished")
        });
        check(o, res);
    }
    c.stop(true);
}

#[test]
fn seen_by_futures_block_on_without_tokio_context() {
    let c = target();
    for o in OUTCOMES {
        let mut p = make(&c, o);
        let res = futures::executor::block_on(p.wait(Some(LIMIT)));
        check(o, res);
    }
    c.stop(true);
}

#[test]
fn seen_by_wait_sync_from_plain_thread() {
    let c = target();
    for o in OUTCOMES {
        let c = c.clone();
        let res = std::thread::spawn(move || make(&c, o).wait_sync(Some(LIMIT)))
            .join()
            .unwrap();
        check(o, res);
    }
    c.stop(true);
}

#[test]
fn seen_by_another_caller() {
    let c = target();
    let other = Caller::new_thread("outcomes-awaiter").unwrap();
    for o in OUTCOMES {
        let c = c.clone();
        let res = other
            .call_soon_async(move || async move { make(&c, o).await })
            .wait_sync(Some(LIMIT))
            .expect("the awaiting call finished");
        check(o, res);
    }
    c.stop(true);
    other.stop(true);
}

#[test]
fn async_failure_and_panic_are_caught_on_the_caller_thread() {
    let c = target();
    let mut failed = c.call_soon(job::try_future(|| async { Err::<(), _>(MyError) }));
    assert!(failed.wait_sync(Some(LIMIT)).unwrap_err().is_failure());
    let mut panicked = c.call_soon_async(|| async {
        tokio::task::yield_now().await;
        panic!("async boom")
    });
    let err: Error = panicked.wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_panic(), "{err}");
    // The caller survived both.
    assert_eq!(c.call_soon(|| 1).wait_sync(Some(LIMIT)).unwrap(), 1);
    assert!(c.running());
    c.stop(true);
}

#[test]
fn a_second_take_is_an_error_not_a_panic() {
    let c = target();
    let mut p = c.call_soon(|| 1);
    assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), 1);
    assert!(matches!(
        p.wait_sync(Some(Duration::ZERO)),
        Err(Error::Taken)
    ));
    c.stop(true);
}

fn named_work() -> u32 {
    1
}

async fn named_async_work() -> u32 {
    2
}

/// A pending's default name (in `Debug`, `dump()` and its span) is the path of the
/// function as the user wrote it: a function item's own path, and for a closure or async
/// block the function it is written in — never `{{closure}}` or a `job::*` type.
#[test]
fn default_names_are_the_function_path() {
    let c = Caller::new_thread("names").expect("a caller");
    let here = concat!(module_path!(), "::default_names_are_the_function_path");
    let cases: Vec<(caller::AnyPending, String)> = vec![
        (c.call_soon(|| 1).any(), here.to_owned()),
        (c.call_soon_async(|| async { 1 }).any(), here.to_owned()),
        (
            c.call_soon(job::try_sync(|| "1".parse::<u8>())).any(),
            here.to_owned(),
        ),
        (
            c.call_soon(named_work).any(),
            concat!(module_path!(), "::named_work").to_owned(),
        ),
        (
            c.call_soon_async(named_async_work).any(),
            concat!(module_path!(), "::named_async_work").to_owned(),
        ),
        (
            caller::to_thread(move || named_work() + 1).any(),
            here.to_owned(),
        ),
    ];
    let with_state = Caller::new_thread_with("names-state", || 0u32).expect("a state caller");
    let cases: Vec<(caller::AnyPending, String)> = cases
        .into_iter()
        .chain([
            (
                with_state.call_with(|n: &mut u32| *n).any(),
                here.to_owned(),
            ),
            (
                with_state.call_with_async(async |n: &mut u32| *n).any(),
                here.to_owned(),
            ),
        ])
        .collect();
    for (p, want) in cases {
        assert_eq!(p.metadata().name(), want);
        let debug = format!("{p:?}");
        assert!(debug.contains(&want), "{debug}");
        assert!(
            !debug.contains("{{closure}}") && !debug.contains("Job<"),
            "{debug}"
        );
        support::done(&p, "the named call");
    }
    c.stop(true);
    with_state.stop(true);
}
