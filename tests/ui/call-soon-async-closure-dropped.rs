// `call_soon(|| async { .. })` hands back the future unpolled: stable Rust cannot reject
// the call itself (that takes a `T: !Future` bound), so what pins it is rustc's
// `unused_must_use` on the dropped future: a warning by default, denied here.
#![deny(unused_must_use)]

async fn run(c: caller::Caller) -> Result<(), caller::Error> {
    c.call_soon(|| async { println!("never runs") }).await?;
    Ok(())
}

fn main() {
    let _ = run;
}
