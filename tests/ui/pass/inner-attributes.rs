//! A body's inner attributes stay inside the function they were written in: each `allow`
//! below silences a lint that `deny(warnings)` would turn into an error.
#![deny(warnings)]

#[caller::on_thread]
fn sync_call() -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    2
}

#[caller::on_thread(name = "ui-inner")]
async fn async_call() -> u32 {
    #![allow(unused_variables)]
    let unused = 1;
    3
}

#[caller::queued]
fn queued_call(n: u32) {
    #![allow(unused_variables)]
    let unused = n;
}

#[caller::main]
async fn main() {
    #![allow(unused_variables)]
    let unused = 1;
    assert_eq!(sync_call().await.unwrap(), 2);
    assert_eq!(async_call().await.unwrap(), 3);
    queued_call(4);
}
