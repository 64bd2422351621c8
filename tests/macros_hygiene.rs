//! The expansions are hygienic: they name `::caller` and `::core` paths only and their own
//! locals cannot collide with the user's. Here `core`, `std` and `caller` are local
//! modules, and the prelude's and the runtime's names are shadowed by unrelated items; every
//! macro still expands and runs.
#![allow(
    dead_code,
    non_camel_case_types,
    unused_macros,
    clippy::disallowed_names
)]

mod core {}
mod std {}
mod caller {}

struct Result;
struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct Box;
struct Vec;
struct Send;
struct Sync;
struct Future;
struct Pending;
struct Caller;
struct CallOptions;
struct PendingGroup;
struct GroupMode;
struct Duration;
struct job;
struct __private;
fn to_thread() {}
fn to_thread_with() {}
fn queue_caller() {}
fn drop() {}
macro_rules! unreachable {
    () => {
        compile_error!("the expansion used a shadowed `unreachable!`")
    };
}
macro_rules! panic {
    ($($t:tt)*) => {
        compile_error!("the expansion used a shadowed `panic!`")
    };
}

const LIMIT: ::core::time::Duration = ::core::time::Duration::from_secs(10);

#[::caller::on_thread]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[::caller::on_thread]
async fn parse(
    text: ::std::string::String,
) -> ::core::result::Result<u8, ::std::num::ParseIntError> {
    text.parse::<u8>()
}

/// `__caller_target` is also the name of the expansion's own local: they must not collide.
#[::caller::on_thread(caller = &__caller_target)]
fn on(__caller_target: ::caller::Caller, x: u8) -> u8 {
    let _ = &__caller_target;
    x
}

#[::caller::queued]
fn enqueue(
    (a, b): (u8, u8),
    __caller_arg0: u8,
    done: ::std::sync::mpsc::Sender<u8>,
) -> ::core::result::Result<(), ::std::string::String> {
    done.send(a + b + __caller_arg0).map_err(|e| e.to_string())
}

#[::caller::test]
async fn every_macro_expands_with_shadowed_names() {
    assert_eq!(
        add(1, 2)
            .wait(::core::option::Option::Some(LIMIT))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        parse("7".into())
            .wait(::core::option::Option::Some(LIMIT))
            .await
            .unwrap(),
        7
    );

    let here = ::caller::Caller::current().expect("a caller");
    assert_eq!(on(here.clone(), 4).await.unwrap(), 4);

    let (tx, rx) = ::std::sync::mpsc::channel();
    enqueue((1, 2), 3, tx);
    assert_eq!(rx.recv_timeout(LIMIT).expect("the queued call ran"), 6);

    let exit = ::caller::pending_group!(mode = 1, shield = false, timeout = 5, {
        add(2, 2).await.unwrap()
    });
    assert_eq!(exit.unwrap(), ::core::option::Option::Some(4));
    let exit = ::caller::pending_group!(crate = ::caller, mode = supervisor, { 1 });
    assert_eq!(exit.unwrap(), ::core::option::Option::Some(1));

    // `__caller_group` is also the name of the expansion's own local.
    let exit = ::caller::pending_group!(timeout = 5s, cancellation_timeout = 1.5s, |__caller_group| <
        __caller_group.cancellation_timeout()
    >);
    assert_eq!(
        exit.unwrap(),
        ::core::option::Option::Some(::core::time::Duration::from_millis(1500))
    );
}

/// `crate = path` names the runtime through a re-export.
mod renamed {
    pub(crate) use ::caller as runtime;
}

#[::caller::on_thread(crate = renamed::runtime)]
fn through_reexport() -> u8 {
    9
}

#[::caller::test(crate = renamed::runtime)]
async fn crate_key_uses_the_given_path() {
    assert_eq!(through_reexport().await.unwrap(), 9);
    let exit = ::caller::pending_group!(crate = renamed::runtime, { 2 });
    assert_eq!(exit.unwrap(), ::core::option::Option::Some(2));
}
