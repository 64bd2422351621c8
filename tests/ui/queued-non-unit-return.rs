#[caller::queued]
fn log(line: String) -> usize {
    line.len()
}

fn main() {
    log("hello".to_owned());
}
