//! `#[caller::queued]`: calls return at once, bodies run one at a time in call order (also
//! from several threads), errors and panics are logged and never stop the queue.

mod support;

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::ThreadId;

use caller::Caller;

/// Set while a `record` body runs: two at once would be a bug.
static IN_FLIGHT: AtomicBool = AtomicBool::new(false);

#[caller::queued]
fn record(ticket: usize, done: mpsc::Sender<(usize, bool)>) {
    let overlapped = IN_FLIGHT.swap(true, Ordering::SeqCst);
    std::thread::yield_now();
    IN_FLIGHT.store(false, Ordering::SeqCst);
    done.send((ticket, overlapped)).expect("the test listens");
}

#[test]
fn calls_from_several_threads_run_one_at_a_time_in_call_order() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    let (tx, rx) = mpsc::channel();
    // The lock makes "call order" well defined across threads: tickets are taken and the
    // call made while holding it.
    let order = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (tx, order) = (tx.clone(), order.clone());
            std::thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let mut next = order.lock().unwrap();
                    record(*next, tx.clone());
                    *next += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a calling thread finished");
    }
    for want in 0..THREADS * PER_THREAD {
        let (got, overlapped) = support::recv(&rx, &format!("queued call {want} running"));
        assert_eq!(got, want, "queued calls run in call order");
        assert!(!overlapped, "queued call {got} ran while another one did");
    }
}

#[caller::queued]
fn fallible(n: u32, done: mpsc::Sender<u32>) -> Result<(), String> {
    done.send(n).expect("the test listens");
    if matches!(n, 0 | 2) {
        return Err(format!("{n} is even"));
    }
    Ok(())
}

#[caller::queued]
fn panicky(n: u32, done: mpsc::Sender<u32>) {
    done.send(n).expect("the test listens");
    if n == 1 {
        panic!("queued body panics on purpose");
    }
}

#[test]
fn errors_and_panics_do_not_stop_the_queue() {
    let (tx, rx) = mpsc::channel();
    for n in 0..4 {
        fallible(n, tx.clone());
    }
    for n in 0..4 {
        assert_eq!(support::recv(&rx, &format!("fallible call {n}")), n);
    }
    for n in 0..3 {
        panicky(n, tx.clone());
    }
    for n in 0..3 {
        assert_eq!(support::recv(&rx, &format!("call {n} after a panic")), n);
    }
}

/// The async body holds an `Rc` across an `.await`: it stays on the queue's thread.
#[caller::queued]
async fn async_record(n: u32, done: mpsc::Sender<(u32, ThreadId)>) {
    let local = Rc::new(n);
    caller::sleep(std::time::Duration::from_millis(u64::from(3 - n % 3))).await;
    done.send((*local, std::thread::current().id()))
        .expect("the test listens");
}

#[test]
fn async_bodies_run_one_at_a_time_in_call_order() {
    let (tx, rx) = mpsc::channel();
    for n in 0..9 {
        async_record(n, tx.clone());
    }
    let queues = caller::queue_caller().expect("the queue caller runs");
    for n in 0..9 {
        // The later calls sleep less: only the queue keeps them in order.
        let (got, thread) = support::recv(&rx, &format!("async queued call {n}"));
        assert_eq!(got, n);
        assert_eq!(thread, queues.thread().id(), "ran on the queue caller");
    }
}

#[caller::queued(caller = &target)]
fn on_target(target: Caller, done: mpsc::Sender<ThreadId>) {
    let _ = &target;
    done.send(std::thread::current().id())
        .expect("the test listens");
}

#[test]
fn caller_key_chooses_the_queue_thread() {
    let c = Caller::new_thread("macro-queue-target").expect("a caller thread");
    let (tx, rx) = mpsc::channel();
    on_target(c.clone(), tx);
    assert_eq!(
        support::recv(&rx, "the call on the given caller"),
        c.thread().id()
    );
    c.stop(true);
}

#[caller::queued]
fn generic<T: std::fmt::Debug + Send + 'static>(
    value: T,
    (a, mut b): (u8, u8),
    done: mpsc::Sender<String>,
) {
    b += a;
    done.send(format!("{value:?} {b}"))
        .expect("the test listens");
}

#[test]
fn generics_and_patterns() {
    let (tx, rx) = mpsc::channel();
    generic("x", (1, 2), tx.clone());
    generic(5u8, (0, 0), tx);
    assert_eq!(support::recv(&rx, "the first generic call"), "\"x\" 3");
    assert_eq!(support::recv(&rx, "the second generic call"), "5 0");
}

struct Sink {
    tag: &'static str,
}

impl Sink {
    /// One queue for the method, shared by every `Sink`.
    #[caller::queued]
    fn push(self: Arc<Self>, n: u32, done: mpsc::Sender<String>) {
        done.send(format!("{}{n}", self.tag))
            .expect("the test listens");
    }
}

#[test]
fn methods_share_one_queue_in_call_order() {
    let (tx, rx) = mpsc::channel();
    let (a, b) = (Arc::new(Sink { tag: "a" }), Arc::new(Sink { tag: "b" }));
    for n in 0..3 {
        a.clone().push(n, tx.clone());
        b.clone().push(n, tx.clone());
    }
    let got: Vec<String> = (0..6)
        .map(|i| support::recv(&rx, &format!("queued method call {i}")))
        .collect();
    assert_eq!(got, ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[caller::queued(caller = &target)]
async fn store(target: Caller, n: u32, log: Arc<Mutex<Vec<u32>>>) {
    let _ = &target;
    tokio::task::yield_now().await;
    log.lock().unwrap().push(n);
}

#[test]
fn a_queued_functions_queue_is_reached_through_the_function() {
    let c = Caller::new_thread("macro-queue-handle").expect("a caller thread");
    let log = Arc::new(Mutex::new(Vec::new()));
    assert!(c.queue_get(&store).is_none(), "no call yet, no queue");
    for n in 0..5 {
        store(c.clone(), n, log.clone());
    }
    let queue = c.queue_get(&store).expect("queue_get takes the function");
    assert_eq!(
        queue.metadata().name(),
        "macros_queued::store",
        "the queue (its logs and spans) is named after the function"
    );
    c.queue_flush(&store)
        .wait_sync(Some(support::LIMIT))
        .expect("the flush waited for the five calls");
    assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert!(c.queue_close(&store), "queue_close takes the function");
    support::done(&queue, "the closed queue");
    assert!(c.queue_get(&store).is_none());
    c.stop(true);
}

#[test]
fn a_queued_methods_queue_is_reached_through_the_method() {
    let queues = caller::queue_caller().expect("the queue caller runs");
    let (tx, rx) = mpsc::channel();
    Arc::new(Sink { tag: "h" }).push(7, tx);
    assert_eq!(support::recv(&rx, "the method call"), "h7");
    let queue = queues
        .queue_get(&Sink::push)
        .expect("queue_get takes the method");
    assert_eq!(queue.metadata().name(), "macros_queued::Sink::push");
}

struct Registry;

impl Registry {
    /// An associated function without `self`: its queue is reached as `Registry::note`.
    #[caller::queued(caller = &target)]
    fn note(target: Caller, n: u32, done: mpsc::Sender<u32>) {
        let _ = &target;
        done.send(n).expect("the test listens");
    }
}

#[test]
fn an_associated_functions_queue_is_reached_through_its_path() {
    let c = Caller::new_thread("macro-queue-assoc").expect("a caller thread");
    let (tx, rx) = mpsc::channel();
    Registry::note(c.clone(), 3, tx);
    assert_eq!(support::recv(&rx, "the associated function's call"), 3);
    let queue = c
        .queue_get(&Registry::note)
        .expect("queue_get takes the associated function");
    assert_eq!(queue.metadata().name(), "macros_queued::Registry::note");
    assert!(c.queue_close(&Registry::note));
    c.stop(true);
}

#[test]
fn each_generic_instantiation_is_its_own_queue() {
    let queues = caller::queue_caller().expect("the queue caller runs");
    let (tx, rx) = mpsc::channel();
    generic(1u16, (0, 0), tx.clone());
    generic(String::from("s"), (0, 0), tx);
    support::recv(&rx, "the first generic call");
    support::recv(&rx, "the second generic call");
    let a = queues.queue_get(&generic::<u16>).expect("the u16 queue");
    let b = queues
        .queue_get(&generic::<String>)
        .expect("the String queue");
    assert_ne!(a, b);
    assert!(queues.queue_get(&generic::<u64>).is_none(), "never called");
}
