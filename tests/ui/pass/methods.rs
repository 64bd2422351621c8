//! Methods: `self` by value, `self: Arc<Self>`, associated functions, visibility and docs.
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Store {
    items: Vec<String>,
}

impl Store {
    /// Builds a store on a worker.
    #[caller::on_thread]
    pub fn open(n: usize) -> Store {
        Store { items: (0..n).map(|i| i.to_string()).collect() }
    }

    /// Consumes the store.
    #[caller::on_thread]
    pub(crate) fn into_len(self) -> usize {
        self.items.len()
    }

    #[caller::on_thread]
    pub async fn first(self: Arc<Self>) -> Option<String> {
        self.items.first().cloned()
    }

    #[caller::on_thread]
    fn push(mut self, item: String) -> Store {
        self.items.push(item);
        self
    }
}

fn main() {
    let limit = Some(Duration::from_secs(10));
    let store = Store::open(2).wait_sync(limit).unwrap();
    let store = store.push("x".into()).wait_sync(limit).unwrap();
    assert_eq!(store.clone().into_len().wait_sync(limit).unwrap(), 3);
    assert_eq!(Arc::new(store).first().wait_sync(limit).unwrap().as_deref(), Some("0"));
}
