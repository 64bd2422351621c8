use std::rc::Rc;

#[caller::on_thread]
fn make() -> Rc<u32> {
    Rc::new(1)
}

fn main() {
    let _ = make();
}
