//! Generic functions, where clauses and lifetimes-free bounds keep working.
use std::fmt::Debug;
use std::time::Duration;

#[caller::on_thread]
pub fn pair<A, B>(a: A, b: B) -> (A, B)
where
    A: Debug + Send + 'static,
    B: Debug + Send + 'static,
{
    (a, b)
}

#[caller::on_thread]
async fn largest<T: PartialOrd + Copy + Send + 'static>(items: Vec<T>) -> Option<T> {
    items.into_iter().reduce(|a, b| if b > a { b } else { a })
}

#[caller::queued]
fn log_any<T: Debug + Send + 'static>(value: T) {
    let _ = format!("{value:?}");
}

fn main() {
    let limit = Some(Duration::from_secs(10));
    assert_eq!(pair(1, "x").wait_sync(limit).unwrap(), (1, "x"));
    assert_eq!(largest(vec![3, 9, 2]).wait_sync(limit).unwrap(), Some(9));
    log_any(5u8);
    log_any("text");
}
