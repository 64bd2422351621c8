// Each mistake gives one error at its token: two in the arguments, one in the signature.
#[caller::on_thread(nmae = "db", name = 5)]
fn count(text: &str) -> usize {
    text.len()
}

fn main() {
    let _ = count;
}
