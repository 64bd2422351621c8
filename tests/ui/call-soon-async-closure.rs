// `call_soon(|| async { .. })` hands back the future unpolled: stable Rust cannot reject
// the call itself, so what pins it is rustc's `unused_must_use` on the dropped future
// (a warning by default; denied here), and a type error where the value is used.
#![deny(unused_must_use)]

async fn run(c: caller::Caller) -> Result<(), caller::Error> {
    c.call_soon(|| async { println!("never runs") }).await?;
    let n: u32 = c.call_soon(|| async { 1 }).await?;
    let _ = n;
    Ok(())
}

fn main() {
    let _ = run;
}
