#[caller::on_thread(main, name = "db")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
