//! The host-driven backend: a caller on a thread that something else owns, pumped by the
//! host's loop, plus tokio futures run as guests on it.

mod support;

use support::PanicOnDrop;

use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use caller::{Backend, Caller, Error, HostLoop};
use support::LIMIT;

/// A stand-in for a GUI loop: pump when woken, until `done` holds.
fn run_host_until(
    host: &HostLoop,
    woken: &mpsc::Receiver<()>,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < LIMIT,
            "within {LIMIT:?}: {what} did not happen"
        );
        if host.pump() == 0 {
            let _ = woken.recv_timeout(Duration::from_millis(100));
        }
    }
}

fn host(name: &str) -> (HostLoop, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    let host = Caller::builder()
        .name(name)
        .backend(Backend::Host)
        .host(move || {
            let _ = tx.send(());
        })
        .unwrap();
    (host, rx)
}

#[test]
fn calls_from_other_threads_run_on_the_host_thread_when_it_pumps() {
    let (host, woken) = host("gui");
    let gui = host.caller().clone();
    assert_eq!(gui.backend(), Backend::Host);
    assert_eq!(Caller::current().as_ref(), Some(&gui));
    let here = std::thread::current().id();
    let p = std::thread::spawn(move || {
        gui.call_soon_async(|| async {
            let confined = Rc::new(std::thread::current().id());
            caller::sleep(Duration::from_millis(1)).await;
            *confined
        })
    })
    .join()
    .unwrap();
    // Nothing runs until the host pumps: the caller never takes the thread.
    assert!(!p.done());
    run_host_until(&host, &woken, "the call finishing", || p.done());
    let mut p = p;
    assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), here);
    // A synchronous wait on the host thread for its own work would deadlock: refused.
    let mut own = host.caller().call_soon(|| 1);
    assert!(matches!(
        own.wait_sync(None),
        Err(Error::WouldDeadlock { .. })
    ));
    run_host_until(&host, &woken, "the own call", || own.done());
}

#[test]
fn tokio_futures_run_as_guests_on_a_host_caller() {
    let (host, woken) = host("gui-guest");
    let gui = host.caller().clone();
    let p = gui.call_using_backend(
        Backend::Tokio,
        caller::job::future(|| async {
            let not_send = Rc::new(5);
            tokio::time::sleep(Duration::from_millis(5)).await;
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move { tx.send(*Box::new(2)).unwrap() });
            *not_send + rx.await.unwrap()
        }),
    );
    run_host_until(&host, &woken, "the guest tokio future", || p.done());
    let mut p = p;
    assert_eq!(p.wait_sync(Some(LIMIT)).unwrap(), 7);

    // The other way round is refused: a host loop cannot run inside a tokio caller.
    let tokio_caller = Caller::new_thread("plain-tokio").unwrap();
    let mut refused = tokio_caller.call_using_backend(Backend::Host, || ());
    assert!(matches!(
        refused.wait_sync(Some(LIMIT)),
        Err(Error::Mismatch {
            what: "backend",
            ..
        })
    ));
    tokio_caller.stop(true);
}

#[test]
fn dropping_the_host_loop_stops_the_caller_and_cancels_its_calls() {
    let (host, _woken) = host("gui-drop");
    let gui = host.caller().clone();
    let child = gui.get("gui-child").unwrap();
    let long = gui.call_soon_async(std::future::pending::<()>);
    host.pump();
    let queued = gui.call_soon(|| ());
    drop(host);
    for p in [&long, &queued] {
        support::done(p, "a call of the dropped host caller");
        assert!(p.cancelled());
    }
    assert_eq!(gui.state(), caller::CallerState::Stopped);
    assert_eq!(
        child.state(),
        caller::CallerState::Stopped,
        "children stop first"
    );
    assert!(Caller::current().is_none());
}

#[test]
fn host_callers_are_made_only_by_their_host() {
    let err = Caller::builder()
        .backend(Backend::Host)
        .spawn()
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let err = Caller::builder().host(|| {}).unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let parent = Caller::new_thread("mismatch-parent").unwrap();
    parent.get("db").unwrap();
    let err = parent
        .get_with(Caller::builder().name("db").backend(Backend::Host))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Mismatch {
                what: "backend",
                ..
            }
        ),
        "{err}"
    );
    parent.stop(true);
}

#[test]
fn builder_current_on_a_host_caller_returns_it_unless_another_backend_is_asked() {
    let (host, _woken) = host("gui-current");
    let me = Caller::builder()
        .current()
        .expect("no backend asked: this caller");
    assert_eq!(&me, host.caller());
    let same = Caller::builder().backend(Backend::Host).current().unwrap();
    assert_eq!(&same, host.caller());
    let err = Caller::builder()
        .backend(Backend::Tokio)
        .current()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Mismatch {
                what: "backend",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn pump_never_unwinds_into_the_host_loop_when_user_data_panics_on_drop() {
    let (host, woken) = host("gui-drop");
    let gui = host.caller().clone();
    drop(gui.call_soon(|| PanicOnDrop("a detached result panics in Drop")));
    let (started_tx, started_rx) = mpsc::channel();
    let cancelled = gui.call_soon_async(move || async move {
        let _guard = PanicOnDrop("a cancelled future panics in Drop");
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    let pumped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_host_until(&host, &woken, "the async call starting", || {
            started_rx.try_recv().is_ok()
        });
        cancelled.cancel("stop it");
        run_host_until(&host, &woken, "the cancelled call finishing", || {
            cancelled.done()
        });
    }));
    if pumped.is_err() {
        // Its loop is broken: dropping it would pump for ever.
        std::mem::forget(host);
        panic!("pump let a panic out into the host's loop");
    }
    let err = cancelled.error().unwrap();
    assert!(
        err.cancel_message()
            .unwrap()
            .contains("a cancelled future panics in Drop"),
        "{err}"
    );
    let next = gui.call_soon(|| 5);
    run_host_until(&host, &woken, "a later call", || next.done());
    assert_eq!(next.peek().unwrap().unwrap(), 5);
}
