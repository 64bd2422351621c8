//! `#[caller::main]` makes the program's main thread a caller: `Caller::current()` and
//! `Caller::main_thread()` are it, and `#[on_thread(main)]` runs there. trybuild runs this
//! program; a failed assertion fails the UI test.
use caller::Caller;
use std::thread::ThreadId;

#[caller::on_thread(main)]
fn on_main() -> ThreadId {
    std::thread::current().id()
}

#[caller::main]
async fn main() {
    let here = Caller::current().expect("#[caller::main] runs a caller");
    assert_eq!(Caller::main_thread(), Some(here.clone()));
    assert_eq!(here.name(), "main");
    assert_eq!(here.thread().id(), std::thread::current().id());
    // Scheduled from a worker, it comes back to this thread.
    let from_worker = caller::to_thread(|| on_main()).await.expect("the worker call ran");
    let id = from_worker.await.expect("the main-thread call ran");
    assert_eq!(id, std::thread::current().id());
}
