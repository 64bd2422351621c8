#[caller::on_thread(name = "db", state = conn)]
fn read(db: &mut String, key: u32) -> u32 {
    let _ = db;
    key
}

fn main() {}
