// Each mistake gives one error at its token.
#[caller::main(nmae = "app", name = 5)]
fn main() {}
