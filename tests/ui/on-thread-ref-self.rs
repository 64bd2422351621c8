struct Db {
    rows: Vec<u32>,
}

impl Db {
    #[caller::on_thread]
    fn count(&self) -> usize {
        self.rows.len()
    }
}

fn main() {
    let db = Db { rows: vec![1] };
    let _ = db.count();
}
