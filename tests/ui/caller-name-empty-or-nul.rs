// A caller's name also names its thread: the runtime takes no empty one, nor one with a NUL
// byte, so neither compiles, whichever macro takes the `name`.
#[caller::on_thread(name = "d\0b")]
fn load() -> u32 {
    1
}

#[caller::main(name = "")]
async fn main() {
    let _ = load();
}
