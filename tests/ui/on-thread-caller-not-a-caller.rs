#[caller::on_thread(caller = "db")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
