// Each mistake gives one error at its token, and nothing else: no error about the
// expansion, and the group's value keeps its type for the code around it.
async fn run() -> Result<(), caller::Error> {
    let _ = caller::pending_group!(mdoe = 1);
    let n: Option<u32> = caller::pending_group!(mdoe = 1, timeout = 5x, shield = 3, { 1 })?;
    let _ = n;
    Ok(())
}

fn main() {
    let _ = run();
}
