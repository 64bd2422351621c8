#[caller::on_thread(nmae = "db")]
fn load() -> u32 {
    1
}

fn main() {
    let _ = load();
}
