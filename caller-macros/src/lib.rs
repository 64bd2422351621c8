//! Procedural macros for the [`caller`](https://docs.rs/caller) crate. Use them through
//! `caller` (`#[caller::on_thread]`, `#[caller::queued]`, `caller::pending_group!`,
//! `#[caller::main]`, `#[caller::test]`), not from this crate directly.
//!
//! Every macro takes `crate = path` to name the runtime crate by another path (a renamed
//! dependency or a re-export); generated code otherwise names `::caller` only, and the few
//! helpers it needs are in the hidden `caller::__private` module.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use proc_macro::TokenStream;

// The phases, as in thiserror-impl: parse (`args`: every macro's keys; `duration`, `mode`:
// typed values; `ast`: each macro's final configuration), validate (`valid`: the
// signature checks), expand (`expand/`: one file per macro). `errors` serves them all.
mod args;
mod ast;
mod duration;
mod errors;
mod expand;
mod mode;
mod valid;

/// Run the function on another thread: calling it schedules the body there and returns a
/// [`caller::Pending<T>`](https://docs.rs/caller/latest/caller/struct.Pending.html) at once.
///
/// Works on `fn` and `async fn`, free functions and methods. The arguments move into the
/// call; the body runs on the target thread, so an `async` body's future need not be `Send`
/// (it can hold an `Rc` across an `.await`). Visibility, generics, where clauses,
/// attributes, doc comments and `self` (by value or `self: Arc<Self>`) are kept.
///
/// ```
/// #[caller::on_thread]
/// fn checksum(data: Vec<u8>) -> u32 {
///     data.iter().map(|&b| u32::from(b)).sum()
/// }
///
/// # fn main() -> Result<(), caller::Error> {
/// let mut sum = checksum(vec![1, 2, 3]);              // a caller::Pending<u32>
/// assert_eq!(sum.wait_sync(None)?, 6);                 // or `.await` it
/// # Ok(()) }
/// ```
///
/// # Where it runs
///
/// | argument | the body runs on |
/// |---|---|
/// | (none) | a pooled worker thread ([`to_thread`]) |
/// | `name = "db"` | the child caller named `"db"` of the current caller (or, on a thread without one, of the main thread's caller), created on first use; the current caller itself if it is named `"db"`. Called from a pooled worker (which stops when idle), the child is made under the main thread's caller instead. With neither (a plain `fn main`, `#[tokio::main]`), the top-level caller named `"db"`, on its own thread: the running one, or one started on first use |
/// | `main` | the main thread's caller ([`Caller::main_thread`]); `Error::Invalid` if the main thread runs none |
/// | `caller = EXPR` | the caller `EXPR` gives, evaluated at each call on the calling thread (it may use the arguments): a `Caller`, `&Caller`, `Option<Caller>` or `Result<Caller, caller::Error>` |
/// | `crate = path` | (with any of the above) name the runtime crate by `path` |
///
/// # `Result` return types
///
/// A function whose return type is spelled `Result<T, E>` (or an alias such as
/// `io::Result<T>`) returns `Pending<T>`: an `Err(e)` becomes the pending's
/// `Error::Failed(e)`, so it counts as a failure for groups and logging, as an exception
/// does in async-kernel. `E` must convert into `caller::BoxError`. To keep the `Result` as the
/// value instead, name the type through an alias that is not called `Result`.
///
/// # What this expands to
///
/// ```ignore
/// #[caller::on_thread(name = "db")]
/// pub async fn load(id: u32) -> Result<User, DbError> { /* body */ }
///
/// // becomes
///
/// pub fn load(id: u32) -> ::caller::Pending<User> {
///     ::caller::__private::assert_send_arg::<u32>();          // a non-Send argument: error here
///     ::caller::__private::try_call_async::<User, _, _, _>(   // a non-Send value: error at `User`
///         ::caller::__private::named_caller("db"),
///         ::caller::CallOptions::new().name(::caller::__private::fn_name({ fn __caller_fn() {} __caller_fn })),
///         async move || -> Result<User, DbError> { /* body */ },
///     )
/// }
/// ```
/// The `__private` helpers are one-liners over the public API: `call` schedules a sync
/// closure, `call_async` wraps it in `job::future`, `try_call` / `try_call_async` in
/// `job::try_sync` / `job::try_future`; the target is `pool()` (`to_thread_with`),
/// `main_caller()`, `named_caller(..)` or `on(EXPR)` (then `caller.schedule_call`).
/// `fn_name` reads the function's path (`app::db::load`) from the marker's type name: the
/// default name of the calls in `Debug`, `dump()` and spans. Inner attributes of the body
/// (`#![allow(..)]`) stay at the top of the generated body.
///
/// # Compile errors
///
/// A borrowed argument or `&self` (the call runs after the function has returned, on
/// another thread), an argument or return type that is not `Send`, `impl Trait` in return
/// position, an unknown or repeated key, and two targets at once.
///
/// [`to_thread`]: https://docs.rs/caller/latest/caller/fn.to_thread.html
/// [`Caller::main_thread`]: https://docs.rs/caller/latest/caller/struct.Caller.html#method.main_thread
#[proc_macro_attribute]
pub fn on_thread(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::on_thread::expand(args.into(), item.into()).into()
}

/// Queue every call of the function: a call enqueues the body on the function's own queue
/// (the runtime's `queue_call`) and returns at once; the bodies run one at a time, in call
/// order, on the queue's caller.
///
/// The function returns `()` or `Result<(), E>` (`E: Display`): an `Err`, or a panic, is
/// logged with `tracing` and never stops the queue. The call itself always returns `()`.
/// Arguments (and `self`, by value or `Arc<Self>`) move into the queue, so they must be
/// owned and `Send`. A method's queue belongs to the method, shared by every value.
///
/// ```
/// use std::sync::Mutex;
/// static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
///
/// #[caller::queued]
/// fn log(line: String) {
///     LOG.lock().unwrap().push(line);
/// }
///
/// log("one".into());
/// log("two".into());   // runs after "one", never at the same time
/// ```
///
/// | argument | the queue runs on |
/// |---|---|
/// | (none) | the process-wide queue caller (`caller::queue_caller()`) |
/// | `caller = EXPR` | the caller `EXPR` gives (`Caller`, `&Caller`, `Option<Caller>` or `Result<Caller, caller::Error>`), evaluated at each call; if it gives none, the call is dropped and logged |
/// | `crate = path` | name the runtime crate by `path` |
///
/// # What this expands to
///
/// ```ignore
/// #[caller::queued]
/// fn log(line: String, level: u8) { /* body */ }
///
/// // becomes
///
/// fn log(line: String, level: u8) {
///     ::caller::__private::assert_send_arg::<String>();
///     ::caller::__private::assert_send_arg::<u8>();
///     let name = ::caller::__private::fn_name({ fn __caller_fn() {} __caller_fn }); // "app::log"
///     ::caller::__private::enqueue(::caller::queue_caller(), name, move || { /* body */ })
/// }
/// ```
/// `enqueue(target, name, job)` is `caller.queue_call(|job: J| job(), job)`: the queue is
/// keyed by that closure's type, distinct for each function `J`, and knows the path of the
/// function the closure is in (`crate::module::log`), so `queue_get(&log)`,
/// `queue_close(&log)` and `queue_flush(&log)` (on the caller that runs it) find it. An
/// `async fn` uses `enqueue_async` (`queue_call_async`) and an `async move ||` closure.
///
/// # Its queue and its thread
///
/// Without `caller = ..`, every `#[queued]` function runs on the one process-wide queue
/// caller (each with its own queue): give a slow one a thread of its own with
/// `caller = EXPR`. `caller::queue_caller()?.queue_flush(&log)` waits until every call
/// sent so far has run.
///
/// # Compile errors
///
/// A return type other than `()` / `Result<(), E>`, a borrowed argument or `&self`, an
/// argument that is not `Send`, an unknown or repeated key.
#[proc_macro_attribute]
pub fn queued(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::queued::expand(args.into(), item.into()).into()
}

/// Run a block inside a `PendingGroup` (a structured-concurrency scope) and evaluate to the
/// group's result. Every call scheduled while the block runs joins the group; on exit the
/// group waits for all of them.
///
/// Every key is optional, in any order, and the body comes last: `{ ... }`, `< ... >`, or
/// either after `|pg|` to name the group inside it (`|pg| expr` works too):
///
/// | key | value |
/// |---|---|
/// | `mode` | `0`–`3` (async-kernel's numbers) or a name: `ignore_cancelled` (0), `cancel_and_raise` (1), `cancel_quietly` (2), `raise` (3), `supervisor`; or any `GroupMode` expression |
/// | `shield` | `true`, `false` or a `bool` expression |
/// | `timeout` | a duration literal with a unit, `50ms`, `2.5s`, `1min` (`ns`, `us`, `ms`, `s`, `m`/`min`; none: seconds), or a `Duration` expression |
/// | `cancellation_timeout` | how long the exit waits for members after a cancel or failure (default 10 s); same forms as `timeout` |
/// | `crate` | name the runtime crate by this path |
///
/// It contains an `.await`, so it is used inside an `async` function or block.
///
/// ```
/// # caller::Caller::builder().name("doc-group").block_on(async {
/// let out = caller::pending_group!(mode = cancel_and_raise, timeout = 5s, {
///     let a = caller::to_thread(|| 1);
///     let b = caller::to_thread(|| 2);
///     a.await.unwrap() + b.await.unwrap()
/// });
/// assert_eq!(out.unwrap(), Some(3));
///
/// // `|pg|` names the group: cancel it, add members, or hand it to another thread.
/// let out = caller::pending_group!(mode = cancel_quietly, |pg| {
///     pg.cancel("enough");
///     std::future::pending::<()>().await
/// });
/// assert_eq!(out.unwrap(), None);
/// # }).unwrap();
/// ```
///
/// # What this expands to
///
/// ```ignore
/// pending_group!(mode = 1, shield = true, timeout = 2500ms, { body })
///
/// // becomes
///
/// ::caller::PendingGroup::builder()
///     .mode(::caller::GroupMode::CancelAndRaise)
///     .shield(true)
///     .timeout(::core::time::Duration::new(2, 500000000))
///     .build()
///     .run(async { body })
///     .await
///
/// pending_group!(|pg| { body })
///
/// // becomes
///
/// {
///     let group = ::caller::PendingGroup::builder().build();
///     let pg = ::core::clone::Clone::clone(&group);
///     let out = group.run(async { body }).await;
///     out
/// }
/// ```
///
/// # Compile errors
///
/// A mode out of range, an unknown or repeated key, a duration with an unknown unit, a
/// missing body: each one error at its token, and no other (the expansion that comes with
/// the errors keeps the group's type).
#[proc_macro]
pub fn pending_group(input: TokenStream) -> TokenStream {
    expand::group::expand(input.into()).into()
}

/// Make the program's main thread a caller for the life of the async `main`, like
/// `#[tokio::main]`: `Caller::current()` and `Caller::main_thread()` are that caller inside
/// it, and `#[on_thread(main)]` functions run there.
///
/// ```
/// #[caller::main]
/// async fn main() {
///     let here = caller::Caller::current().expect("main runs a caller");
///     assert_eq!(Some(here), caller::Caller::main_thread());
/// }
/// ```
///
/// Arguments: `name = "..."` (the caller's name, default `"main"`), `crate = path`. The
/// function must be `async` and take no arguments; it may return a value (such as
/// `Result<(), E>`). If the caller is force-stopped before the body ends, the program
/// panics with the reason.
///
/// # What this expands to
///
/// ```ignore
/// #[caller::main]
/// async fn main() -> Result<(), Error> { body }
///
/// // becomes
///
/// fn main() -> Result<(), Error> {
///     ::caller::__private::entry(::caller::Caller::builder().name("main"), async { body })
/// }
/// ```
/// where `entry` is `builder.block_on(fut)`, panicking with the error if the caller
/// could not run.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry::expand(ast::Kind::Main, args.into(), item.into()).into()
}

/// An async test whose thread is a caller for the life of the test, like `#[tokio::test]`.
/// The caller is named after the test function (or `name = "..."`).
///
/// ```
/// #[caller::test]
/// async fn runs_on_the_test_thread() {
///     let here = caller::Caller::current().expect("the test runs a caller");
///     assert_eq!(here.name(), "runs_on_the_test_thread");
/// }
/// # fn main() {}
/// ```
///
/// # What this expands to
///
/// ```ignore
/// #[::core::prelude::v1::test]
/// fn runs_on_the_test_thread() {
///     ::caller::__private::entry(
///         ::caller::Caller::builder().name("runs_on_the_test_thread"),
///         async { body },
///     )
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::entry::expand(ast::Kind::Test, args.into(), item.into()).into()
}
