// Used as the output it is not, the future of `call_soon(|| async { .. })` is a type
// error that names the `async` block.
async fn run(c: caller::Caller) -> Result<u32, caller::Error> {
    let n: u32 = c.call_soon(|| async { 1 }).await?;
    Ok(n)
}

fn main() {
    let _ = run;
}
