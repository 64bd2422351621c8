#[caller::on_thread(state = db)]
fn read(db: &mut String, key: u32) -> u32 {
    let _ = db;
    key
}

fn main() {}
