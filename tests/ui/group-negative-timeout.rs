async fn run() {
    let _ = caller::pending_group!(timeout = -1.5, { 1 });
}

fn main() {
    let _ = run();
}
