//! A `#[caller::queued]` function's log lines and spans name the function, not a closure
//! type. (Its own test binary: it installs a process-wide tracing subscriber.)

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// What the subscriber saw: spans and events, each as its name and its fields.
#[derive(Default)]
struct Seen {
    spans: Vec<(String, Vec<(String, String)>)>,
    events: Vec<Vec<(String, String)>>,
}

struct Capture {
    seen: Arc<Mutex<Seen>>,
    next: AtomicU64,
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields(Vec::new());
        span.record(&mut fields);
        self.seen
            .lock()
            .unwrap()
            .spans
            .push((span.metadata().name().to_owned(), fields.0));
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.seen.lock().unwrap().events.push(fields.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[caller::queued]
fn failing_audit(n: u32, done: mpsc::Sender<u32>) -> Result<(), String> {
    done.send(n).expect("the test listens");
    Err(format!("audit {n} failed"))
}

#[test]
fn queued_log_lines_and_spans_name_the_function() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    tracing::subscriber::set_global_default(Capture {
        seen: seen.clone(),
        next: AtomicU64::new(0),
    })
    .expect("the only subscriber of this test binary");
    let (tx, rx) = mpsc::channel();
    failing_audit(1, tx);
    support::recv(&rx, "the queued call running");
    let queues = caller::queue_caller().expect("the queue caller");
    queues
        .queue_flush(&failing_audit)
        .wait_sync(Some(support::LIMIT))
        .expect("the call before the flush has run");
    let seen = seen.lock().unwrap();
    let field = |fields: &[(String, String)], key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    assert!(
        seen.spans.iter().any(|(name, fields)| name == "queued"
            && field(fields, "queue").as_deref() == Some("queue_tracing::failing_audit")),
        "a `queued` span names the function: {:?}",
        seen.spans
    );
    let failure = seen
        .events
        .iter()
        .find(|fields| field(fields, "error").is_some_and(|e| e.contains("audit 1 failed")))
        .expect("the failure was logged");
    assert_eq!(
        field(failure, "queue").as_deref(),
        Some("queue_tracing::failing_audit"),
        "the log line names the function, not a closure type"
    );
}
