async fn run() {
    let _ = caller::pending_group!(mode = 1, |pg { pg.id() });
}

fn main() {
    let _ = run();
}
