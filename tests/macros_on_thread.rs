//! `#[caller::on_thread]`: where the body runs, what the pending holds, cancellation, and
//! the kinds of functions it goes on (methods, generics, async bodies, `Result`).

mod support;

use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread::ThreadId;

use caller::{Caller, Error};
use support::LIMIT;

fn here() -> (ThreadId, Option<String>) {
    let t = std::thread::current();
    (t.id(), t.name().map(str::to_owned))
}

#[caller::on_thread]
fn on_worker(x: u32) -> (u32, ThreadId, Option<String>) {
    let (id, name) = here();
    (x * 2, id, name)
}

#[test]
fn default_target_is_a_pooled_worker() {
    let mut p = on_worker(21);
    assert_eq!(
        p.metadata().name(),
        "macros_on_thread::on_worker",
        "the pending carries the fn's path"
    );
    let (v, id, _) = p.wait_sync(Some(LIMIT)).expect("the worker call finished");
    assert_eq!(v, 42);
    assert_ne!(id, std::thread::current().id(), "ran on another thread");
}

#[caller::on_thread(name = "macro-db")]
fn on_db() -> (ThreadId, Option<String>) {
    here()
}

#[test]
fn named_target_is_a_child_of_the_current_caller() {
    Caller::builder()
        .name("macro-db-parent")
        .block_on(async {
            let me = Caller::current().expect("block_on runs a caller");
            let (id, name) = on_db()
                .wait(Some(LIMIT))
                .await
                .expect("the db call finished");
            let db = me.get("macro-db").expect("the child exists");
            assert_eq!(id, db.thread().id(), "ran on the child's thread");
            assert_eq!(name.as_deref(), Some("macro-db"));
            assert_eq!(db.parent(), Some(me));
        })
        .expect("the entry caller ran");
}

#[caller::on_thread(name = "macro-top-level")]
fn on_top_level() -> (ThreadId, Option<String>) {
    here()
}

#[test]
fn named_target_without_any_caller_is_a_top_level_caller_on_its_own_thread() {
    // The test thread runs no caller, and neither does the harness's main thread.
    let (id, name) = on_top_level()
        .wait_sync(Some(LIMIT))
        .expect("the call on the top-level caller finished");
    assert_ne!(
        id,
        std::thread::current().id(),
        "ran on a thread of its own"
    );
    assert_eq!(name.as_deref(), Some("macro-top-level"));
    let top = Caller::all_callers(true)
        .into_iter()
        .find(|c| c.name() == "macro-top-level")
        .expect("the top-level caller is registered");
    assert_eq!(top.thread().id(), id);
    assert_eq!(top.parent(), None, "a top-level caller has no parent");
    // Get-or-create: the next call, from another plain thread, finds the same caller.
    let again = std::thread::spawn(|| on_top_level().wait_sync(Some(LIMIT)))
        .join()
        .expect("the other thread ended")
        .expect("the second call finished");
    assert_eq!(again.0, id, "one caller per name");
}

#[caller::on_thread(name = "macro-top-race")]
fn on_top_race() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn threads_racing_for_a_new_top_level_name_share_one_caller() {
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let ids: Vec<ThreadId> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                on_top_race().wait_sync(Some(LIMIT))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("a racing thread").expect("its call"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one caller: {ids:?}");
    let named = Caller::all_callers(false)
        .into_iter()
        .filter(|c| c.name() == "macro-top-race")
        .count();
    assert_eq!(named, 1, "one top-level caller of that name");
}

#[test]
fn named_target_works_inside_a_tokio_program() {
    // `#[tokio::main]` with no caller anywhere: the named caller is top-level.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (id, name) = rt
        .block_on(async { on_top_level().wait(Some(LIMIT)).await })
        .expect("the call finished");
    assert_ne!(id, std::thread::current().id());
    assert_eq!(name.as_deref(), Some("macro-top-level"));
}

#[caller::on_thread(main)]
fn on_main() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn main_target_without_a_main_caller_is_an_error() {
    // The test harness's main thread runs no caller.
    let err = on_main().wait_sync(Some(LIMIT)).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { message }
            if message.contains("main thread")
                && message.contains("#[caller::main]")
                && message.contains("run_here")),
        "unexpected error: {err}"
    );
}

#[caller::on_thread(caller = &target)]
fn on_given(target: Caller, tag: &'static str) -> (ThreadId, &'static str) {
    let _ = &target;
    (std::thread::current().id(), tag)
}

#[test]
fn caller_target_may_use_the_arguments() {
    let c = Caller::new_thread("macro-given").expect("a caller thread");
    let (id, tag) = on_given(c.clone(), "t")
        .wait_sync(Some(LIMIT))
        .expect("the call finished");
    assert_eq!(id, c.thread().id());
    assert_eq!(tag, "t");
    c.stop(true);
}

#[caller::on_thread(caller = caller::Caller::get_existing(caller::CallerId::current()))]
fn on_missing() {}

#[test]
fn a_caller_expression_giving_none_is_an_error() {
    let err = on_missing().wait_sync(Some(LIMIT)).unwrap_err();
    assert!(
        matches!(err, Error::Invalid { .. }),
        "unexpected error: {err}"
    );
}

/// An async body keeps a `!Send` value across an `.await`: it never leaves its thread.
#[caller::on_thread]
async fn async_with_rc(n: usize) -> usize {
    let local = Rc::new(n);
    caller::sleep(std::time::Duration::from_millis(1)).await;
    *local + 1
}

#[test]
fn async_body_need_not_be_send() {
    let v = futures::executor::block_on(async_with_rc(1)).expect("the async call finished");
    assert_eq!(v, 2);
}

#[caller::on_thread]
fn parse(text: String) -> Result<u8, std::num::ParseIntError> {
    let n = text.parse::<u8>()?;
    Ok(n + 1)
}

#[caller::on_thread]
async fn parse_async(text: String) -> Result<u8, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let n = text.parse::<u8>()?;
    Ok(n)
}

#[test]
fn result_return_is_a_failure_or_the_ok_value() {
    assert_eq!(parse("41".into()).wait_sync(Some(LIMIT)).unwrap(), 42);
    let err = parse("x".into()).wait_sync(Some(LIMIT)).unwrap_err();
    assert!(err.is_failure(), "an Err is a failure, got {err}");
    assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
    assert_eq!(parse_async("".into()).wait_sync(Some(LIMIT)).unwrap(), 0);
    assert!(parse_async("x".into())
        .wait_sync(Some(LIMIT))
        .unwrap_err()
        .is_failure());
}

/// Sends on drop: proves where and whether a future was dropped.
struct DropSignal(mpsc::Sender<ThreadId>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(std::thread::current().id());
    }
}

#[caller::on_thread(caller = &target)]
async fn wait_forever(target: Caller, started: mpsc::Sender<()>, dropped: mpsc::Sender<ThreadId>) {
    let _ = &target;
    let _guard = DropSignal(dropped);
    started.send(()).expect("the test listens");
    std::future::pending::<()>().await;
}

#[test]
fn the_pending_can_be_cancelled() {
    let c = Caller::new_thread("macro-cancel").expect("a caller thread");
    let (started_tx, started) = mpsc::channel();
    let (dropped_tx, dropped) = mpsc::channel();
    let mut p = wait_forever(c.clone(), started_tx, dropped_tx);
    support::recv(&started, "the on_thread body starting");
    assert!(p.cancel("user pressed stop"));
    let err = p.wait_sync(Some(LIMIT)).unwrap_err();
    assert_eq!(err.cancel_message(), Some("user pressed stop"));
    let on = support::recv(&dropped, "the cancelled future being dropped");
    assert_eq!(on, c.thread().id(), "dropped on its own thread");
    c.stop(true);
}

struct Counter {
    base: u32,
}

impl Counter {
    /// Doc comments and attributes stay on the method.
    #[caller::on_thread]
    #[allow(clippy::needless_pass_by_value)]
    pub fn add(self, n: u32) -> u32 {
        self.base + n
    }

    #[caller::on_thread]
    pub async fn add_shared(self: Arc<Self>, n: u32) -> u32 {
        self.base + n
    }

    #[caller::on_thread]
    fn make(base: u32) -> Counter {
        Counter { base }
    }
}

#[test]
fn methods_take_self_by_value_or_arc() {
    assert_eq!(
        Counter { base: 1 }.add(2).wait_sync(Some(LIMIT)).unwrap(),
        3
    );
    let shared = Arc::new(Counter { base: 10 });
    assert_eq!(shared.add_shared(5).wait_sync(Some(LIMIT)).unwrap(), 15);
    assert_eq!(Counter::make(7).wait_sync(Some(LIMIT)).unwrap().base, 7);
}

#[caller::on_thread]
fn describe<T>(value: T, label: impl Into<String> + Send + 'static) -> String
where
    T: std::fmt::Debug + Send + 'static,
{
    format!("{}: {value:?}", label.into())
}

#[test]
fn generics_where_clauses_and_impl_trait_arguments() {
    let s = describe(vec![1, 2], "v").wait_sync(Some(LIMIT)).unwrap();
    assert_eq!(s, "v: [1, 2]");
}

#[caller::on_thread]
fn mutates(mut acc: Vec<u32>, (a, b): (u32, u32)) -> Vec<u32> {
    acc.push(a + b);
    acc
}

#[test]
fn mut_and_destructuring_patterns() {
    assert_eq!(
        mutates(vec![1], (2, 3)).wait_sync(Some(LIMIT)).unwrap(),
        vec![1, 5]
    );
}

/// The calls of an `#[on_thread]` function are named by the function's path, methods and
/// generic functions included (in `Debug`, `dump()` and spans): never a closure type.
#[test]
fn calls_are_named_by_the_function_path() {
    let cases = [
        (
            Counter { base: 1 }.add(2).any(),
            "macros_on_thread::Counter::add",
        ),
        (
            Arc::new(Counter { base: 1 }).add_shared(2).any(),
            "macros_on_thread::Counter::add_shared",
        ),
        (describe(1u8, "x").any(), "macros_on_thread::describe"),
        (async_with_rc(1).any(), "macros_on_thread::async_with_rc"),
    ];
    for (p, want) in cases {
        assert_eq!(p.metadata().name(), want);
        assert!(format!("{p:?}").contains(want), "{p:?}");
        support::done(&p, "the named call");
    }
}
