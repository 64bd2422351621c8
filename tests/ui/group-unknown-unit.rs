async fn run() {
    let _ = caller::pending_group!(timeout = 5h, { 1 });
    let _ = caller::pending_group!(cancellation_timeout = 2.5f64, { 1 });
}

fn main() {
    let _ = run();
}
