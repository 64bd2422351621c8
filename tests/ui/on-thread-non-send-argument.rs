use std::rc::Rc;

#[caller::on_thread]
fn total(values: Rc<Vec<u32>>) -> u32 {
    values.iter().sum()
}

fn main() {
    let _ = total(Rc::new(vec![1, 2]));
}
