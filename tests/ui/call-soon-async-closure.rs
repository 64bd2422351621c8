// A sync job that returns a future would hand it back unpolled: a compile error that says
// to use the async form, for a closure returning an `async` block or an `async fn`'s
// future, and for an `async fn` passed as the job; a generic value needs `Unpin`.
#![allow(dead_code)]

use caller::{Caller, IntoJob, Pending};

async fn fetch() -> u32 {
    1
}

fn run(c: &Caller) {
    let _ = c.call_soon(|| async { 1 });
    let _ = caller::to_thread(|| fetch());
    let _ = c.call_later(std::time::Duration::ZERO, fetch);
}

fn generic<T: Send + 'static>(c: &Caller, job: impl IntoJob<T>) -> Pending<T> {
    c.call_soon(job)
}

fn main() {
    let _ = run;
}
