async fn run() {
    let _ = caller::pending_group!(mode = 1, timeout = 2, mode = 2, { 1 });
}

fn main() {
    let _ = run();
}
