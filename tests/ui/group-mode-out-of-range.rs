async fn run() {
    let _ = caller::pending_group!(mode = 4, { 1 });
}

fn main() {
    let _ = run();
}
