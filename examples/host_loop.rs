//! A caller on a thread that something else owns: `cargo run --example host_loop`.
//!
//! The main thread plays a GUI toolkit's event loop. It never blocks on the caller: the
//! caller's wake hook posts an event to the loop's own queue, and the loop answers by
//! pumping the caller. Worker threads update the "widgets" (thread-confined `Rc` state)
//! through the caller, and a tokio timer runs on the GUI thread as a guest.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use caller::{Backend, Caller, Error};

enum Event {
    /// Posted by the caller's wake hook: work is waiting, pump it.
    CallerWork,
    Quit,
}

thread_local! {
    /// The "widgets": GUI state that must stay on the GUI thread.
    static LABELS: Rc<RefCell<Vec<String>>> = Rc::default();
}

fn main() -> Result<(), Error> {
    let (events, inbox) = mpsc::channel::<Event>();
    let hook = events.clone();
    let host = Caller::builder()
        .name("gui")
        .backend(Backend::Host)
        .host(move || {
            let _ = hook.send(Event::CallerWork);
        })?;
    let gui = host.caller().clone();

    // Worker threads update labels through the GUI caller, then one of them quits.
    let workers: Vec<_> = (1..=3)
        .map(|n| {
            let gui = gui.clone();
            std::thread::spawn(move || {
                let text = format!("worker {n} says hi");
                gui.call_soon(move || LABELS.with(|l| l.borrow_mut().push(text)))
                    .wait_sync(Some(Duration::from_secs(5)))
            })
        })
        .collect();
    // A tokio timer on the GUI thread, as a guest of a background tokio runtime.
    let mut blink = gui.call_using_backend(
        Backend::Tokio,
        caller::job::future(|| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            LABELS.with(|l| l.borrow_mut().push("blinked after 20ms".into()));
        }),
    );
    let quitter = {
        let events = events.clone();
        std::thread::spawn(move || {
            for w in workers {
                w.join().expect("worker").expect("label added");
            }
            let _ = blink.wait_sync(Some(Duration::from_secs(5)));
            let _ = events.send(Event::Quit);
        })
    };

    // The "GUI event loop".
    let mut pumps = 0;
    loop {
        match inbox.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::CallerWork) => {
                host.pump();
                pumps += 1;
            }
            Ok(Event::Quit) => break,
            Err(_) => {
                eprintln!("no event for 5 s: giving up");
                break;
            }
        }
    }
    quitter.join().expect("quitter");
    LABELS.with(|l| {
        for label in l.borrow().iter() {
            println!("label: {label}");
        }
    });
    println!("the GUI loop pumped the caller {pumps} time(s) and never blocked on it");
    drop(host); // stops the caller
    Ok(())
}
