async fn run() {
    let _ = caller::pending_group!(mdoe = 1, { 1 });
}

fn main() {
    let _ = run();
}
