#[caller::main]
fn main() {
    println!("hello");
}
