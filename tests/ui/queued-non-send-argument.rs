use std::cell::RefCell;
use std::rc::Rc;

#[caller::queued]
fn remember(log: Rc<RefCell<Vec<String>>>, line: String) {
    log.borrow_mut().push(line);
}

fn main() {
    remember(Rc::default(), "hello".to_owned());
}
