#[caller::on_thread(name = "db", state = db)]
fn read(db: &String, key: u32) -> u32 {
    let _ = db;
    key
}

fn main() {}
