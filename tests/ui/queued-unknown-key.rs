#[caller::queued(name = "log")]
fn log(line: String) {
    println!("{line}");
}

fn main() {
    log("hello".to_owned());
}
