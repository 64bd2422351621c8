//! `impl Trait` arguments are generic parameters like any other.
use std::time::Duration;

#[caller::on_thread]
fn render(value: impl std::fmt::Display + Send + 'static, suffix: impl Into<String> + Send + 'static) -> String {
    format!("{value}{}", suffix.into())
}

#[caller::on_thread]
fn apply(f: impl FnOnce(&str) -> usize + Send + 'static) -> usize {
    f("four")
}

#[caller::queued]
fn note(value: impl std::fmt::Debug + Send + 'static) {
    let _ = format!("{value:?}");
}

fn main() {
    let limit = Some(Duration::from_secs(10));
    assert_eq!(render(4, "!").wait_sync(limit).unwrap(), "4!");
    assert_eq!(apply(|s| s.len()).wait_sync(limit).unwrap(), 4);
    note(1);
}
