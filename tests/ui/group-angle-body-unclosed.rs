async fn run() {
    let _ = caller::pending_group!(mode = 1, < 1 + 1 );
}

fn main() {
    let _ = run();
}
