#[caller::on_thread]
fn make() -> impl std::fmt::Display {
    1
}

fn main() {
    let _ = make();
}
