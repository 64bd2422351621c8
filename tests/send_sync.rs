//! Which public types are `Send` and `Sync`, pinned at compile time: a change that gains or
//! loses an auto trait fails to build here, not in a user's program.
//!
//! - Handles that any thread may hold (`Caller`, `Pending`, `AnyPending`, groups,
//!   managers, errors, options, builders) are `Send + Sync`.
//! - Guards that restore this thread's state when dropped (`ContextGuard`,
//!   `ManagerGuard`) and `HostLoop`, which stays on the host's thread, are neither.
//! - Futures and streams are `Send` (so a tokio task may hold them) where their value is.
#![allow(dead_code)]

use caller::{
    job, AnyPending, AsCompleted, Backend, CallOptions, CallbackId, Caller, CallerBuilder,
    CallerId, CallerState, Context, ContextGuard, Error, GroupBuilder, GroupError, GroupMode,
    HostLoop, ManagerGuard, Metadata, Pending, PendingGroup, PendingManager, PendingState,
    PoolConfig, Resolver, ReturnWhen, Scoped, Trackers, Wait, WaitDone,
};

fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}

/// `$t` is `Send` and `Sync`.
macro_rules! send_sync {
    ($($t:ty),* $(,)?) => {$(
        const _: fn() = || {
            is_send::<$t>();
            is_sync::<$t>();
        };
    )*};
}

/// `$t` is `Send` but not `Sync`.
macro_rules! send_not_sync {
    ($($t:ty),* $(,)?) => {$(
        const _: fn() = || {
            is_send::<$t>();
        };
        not_sync!($t);
    )*};
}

/// `$t` is neither `Send` nor `Sync`.
macro_rules! neither {
    ($($t:ty),* $(,)?) => {$(
        not_send!($t);
        not_sync!($t);
    )*};
}

/// `$t` is not `Send`: were it, `$t: AmbiguousIfSend<_>` would have two impls and the
/// call would not compile (the trick of `static_assertions::assert_not_impl_any!`).
macro_rules! not_send {
    ($t:ty) => {
        const _: fn() = || {
            trait AmbiguousIfSend<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfSend<()> for T {}
            impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
            let _ = <$t as AmbiguousIfSend<_>>::some_item;
        };
    };
}

/// `$t` is not `Sync` (as [`not_send`]).
macro_rules! not_sync {
    ($t:ty) => {
        const _: fn() = || {
            trait AmbiguousIfSync<A> {
                fn some_item() {}
            }
            impl<T: ?Sized> AmbiguousIfSync<()> for T {}
            impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
            let _ = <$t as AmbiguousIfSync<_>>::some_item;
        };
    };
}

type Fut = std::future::Ready<u32>;

send_sync!(
    Caller,
    CallerId,
    CallerState,
    CallerBuilder,
    CallOptions,
    Backend,
    PoolConfig,
    Pending<u32>,
    AnyPending,
    Resolver<u32>,
    Metadata,
    PendingState,
    CallbackId,
    WaitDone,
    Wait<'static, u32>,
    PendingGroup,
    GroupBuilder,
    GroupMode,
    GroupError,
    PendingManager,
    Context,
    Trackers,
    Scoped<Fut>,
    Error,
    ReturnWhen,
    job::FutureJob<fn() -> Fut>,
    job::TrySyncJob<fn() -> Result<u32, Error>>,
    job::TryFutureJob<fn() -> Fut>,
);

// The stream owns its source, which need only be `Send`: it is not shared.
send_not_sync!(
    AsCompleted<'static, Pending<u32>>,
    AsCompleted<'static, AnyPending>,
    AsCompleted<'static, futures::future::BoxFuture<'static, u32>>,
);

neither!(HostLoop, ContextGuard, ManagerGuard);

/// A `Pending` of a `Send` value is `Send + Sync` whatever `T`'s `Sync`-ness: the value is
/// only moved out, never shared.
#[test]
fn pending_of_a_send_value_is_send_and_sync() {
    is_send::<Pending<std::cell::Cell<u8>>>();
    is_sync::<Pending<std::cell::Cell<u8>>>();
    is_send::<AsCompleted<'static, Pending<std::cell::Cell<u8>>>>();
}
