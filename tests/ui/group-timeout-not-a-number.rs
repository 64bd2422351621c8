async fn run() {
    let _ = caller::pending_group!(timeout = "2s", { 1 });
}

fn main() {
    let _ = run();
}
