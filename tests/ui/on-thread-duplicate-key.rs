#[caller::on_thread(name = "db", name = "cache")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
