//! The built-in sinks pass the conformance suite.

#[path = "support/conformance.rs"]
mod conformance;

use std::sync::{Arc, Mutex};

use tower_csp_reports::ReportBatch;
use tower_csp_reports::sink::{MemorySink, TracingSink, sink_fn};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

#[tokio::test]
async fn memory_sink() {
    let sink = MemorySink::new();
    conformance::check(&sink, || async {
        sink.reports().iter().map(|r| r.id.to_string()).collect()
    })
    .await;
}

#[tokio::test]
async fn closure_sink() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = Arc::clone(&seen);
    let sink = sink_fn(move |batch: ReportBatch| {
        let store = Arc::clone(&store);
        async move {
            store
                .lock()
                .unwrap()
                .extend(batch.iter().map(|r| r.id.to_string()));
            Ok(())
        }
    });
    conformance::check(&sink, || async { seen.lock().unwrap().clone() }).await;
}

/// Records the events the tracing sink writes: target, level and fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

/// One event: target, level, fields.
type Captured = (String, tracing::Level, Vec<(String, String)>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), fields.0));
    }
}

#[tokio::test]
async fn tracing_sink() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let sink = TracingSink::new()
        .target("security::csp")
        .level(tracing::Level::INFO);
    let ids = || async {
        capture
            .0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, _, fields)| {
                fields
                    .iter()
                    .filter(|(k, _)| k == "report_id")
                    .map(|(_, v)| v.clone())
            })
            .collect()
    };
    conformance::check(&sink, ids).await;

    let events = capture.0.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .all(|(target, level, _)| target == "security::csp" && *level == tracing::Level::INFO)
    );
    let field = |event: &Captured, name: &str| {
        event
            .2
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let first = &events[0];
    assert_eq!(field(first, "blocked_uri").as_deref(), Some("inline"));
    assert_eq!(
        field(first, "effective_directive").as_deref(),
        Some("script-src-elem")
    );
    assert_eq!(field(first, "line_number").as_deref(), Some("9"));
    assert_eq!(field(first, "valid").as_deref(), Some("true"));
    assert_eq!(field(first, "raw"), None, "valid reports are not dumped");
    let unparsed = events
        .iter()
        .find(|e| field(e, "format").as_deref() == Some("unparsed"))
        .unwrap();
    assert_eq!(field(unparsed, "valid").as_deref(), Some("false"));
    assert!(
        field(unparsed, "raw")
            .unwrap()
            .starts_with("not json at all")
    );
    for event in &events {
        for (name, value) in &event.2 {
            assert!(
                !value.contains(['\r', '\n', '\u{1b}']),
                "{name}={value:?} could break a log line"
            );
        }
    }
}
