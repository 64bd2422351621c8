#[caller::on_thread]
fn count(text: &str) -> usize {
    text.len()
}

fn main() {
    let _ = count("abc");
}
