//! A caller driven by a real event loop, calloop: `cargo run --example event_loop`.
//!
//! The main thread runs a `calloop::EventLoop` — the kind of loop a Wayland compositor or
//! a GUI toolkit owns. The caller's wake hook pings the loop (a `calloop::ping` source),
//! and the loop answers by pumping the caller. Calls from worker threads, a `call_later`
//! timer, an async call sleeping with `caller::sleep`, and a tokio timer (as a guest) all
//! run on the loop's thread, between the loop's own timer ticks. The loop never blocks on
//! the caller: nothing on its thread waits for a pending.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use caller::{job, Backend, Caller, HostLoop};
use calloop::channel::{channel, Event};
use calloop::ping::make_ping;
use calloop::timer::{TimeoutAction, Timer};
use calloop::EventLoop;

thread_local! {
    /// What ran on this thread, and where: thread-confined, like a GUI's widgets.
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Runs on the loop's thread (it records the thread's name to prove it).
fn note(what: impl Into<String>) {
    let thread = std::thread::current();
    let line = format!("[{}] {}", thread.name().unwrap_or("?"), what.into());
    SEEN.with(|seen| seen.borrow_mut().push(line));
}

/// The loop's own state, handed to every event callback.
struct State {
    host: HostLoop,
    pumps: usize,
    ticks: usize,
    quit: Option<&'static str>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut event_loop: EventLoop<State> = EventLoop::try_new()?;
    let handle = event_loop.handle();

    // 1. The wake hook pings the loop from any thread; the loop pumps the caller.
    let (ping, ping_source) = make_ping()?;
    handle.insert_source(ping_source, |(), _, state: &mut State| {
        state.pumps += 1;
        state.host.pump();
    })?;
    let host = Caller::builder()
        .name("event-loop")
        .backend(Backend::Host)
        .host(move || ping.ping())?;
    let lp = host.caller().clone();

    // 2. The loop goes on with its own work: a timer that ticks every 5 ms.
    handle.insert_source(
        Timer::from_duration(Duration::from_millis(5)),
        |_, _, state: &mut State| {
            state.ticks += 1;
            TimeoutAction::ToDuration(Duration::from_millis(5))
        },
    )?;

    // 3. A channel to tell the loop to quit.
    let (quit, quit_source) = channel::<&'static str>();
    handle.insert_source(quit_source, |event, _, state: &mut State| {
        if let Event::Msg(why) = event {
            state.quit = Some(why);
        }
    })?;

    // 4. Work for the loop's thread, from other threads and from timers.
    let workers: Vec<_> = (1..=3)
        .map(|n| {
            let lp = lp.clone();
            std::thread::spawn(move || {
                lp.call_soon(move || note(format!("call_soon from worker thread {n}")))
                    .wait_sync(Some(Duration::from_secs(5)))
            })
        })
        .collect();
    let later = lp.call_later(Duration::from_millis(30), || {
        note("call_later(30 ms) fired");
    });
    let sleeper = lp.call_soon_async(|| async {
        for i in 1..=3 {
            caller::sleep(Duration::from_millis(10)).await;
            note(format!("async call woke from caller::sleep, {i} of 3"));
        }
    });
    let guest = lp.call_using_backend(
        Backend::Tokio,
        job::future(|| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            note("tokio::time::sleep(20 ms) ended, as a guest");
        }),
    );

    // A plain thread waits for all of it, then tells the loop to quit. Waiting is its
    // job, not the loop's.
    let coordinator = std::thread::spawn(move || {
        let limit = Some(Duration::from_secs(5));
        let mut outcome = Ok(());
        for worker in workers {
            outcome = outcome.and(worker.join().expect("worker thread"));
        }
        for mut p in [later, sleeper, guest] {
            outcome = outcome.and(p.wait_sync(limit));
        }
        let _ = quit.send(if outcome.is_ok() {
            "every call is done"
        } else {
            "a call failed"
        });
        outcome
    });

    // 5. The event loop. It sleeps in epoll until a source fires, at most 100 ms.
    let signal = event_loop.get_signal();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut state = State {
        host,
        pumps: 0,
        ticks: 0,
        quit: None,
    };
    event_loop.run(Duration::from_millis(100), &mut state, |state| {
        if state.quit.is_some() || Instant::now() > deadline {
            signal.stop();
        }
    })?;

    coordinator.join().expect("coordinator thread")?;
    SEEN.with(|seen| {
        for line in seen.borrow().iter() {
            println!("{line}");
        }
    });
    println!(
        "quit: {}; the loop pumped the caller {} time(s), ticked its own timer {} time(s), \
         and never waited on the caller",
        state.quit.unwrap_or("gave up after 10 s"),
        state.pumps,
        state.ticks
    );
    drop(state); // drops the HostLoop, which stops the caller
    Ok(())
}
