//! A 2xx means admitted to every required sink: a store that cannot keep up makes the layer
//! answer `503` with `Retry-After`, never a `204` for a report it then drops. Real Postgres,
//! real HTTP over loopback.
#![cfg(feature = "postgres")]

#[path = "support/load.rs"]
mod load;
#[path = "support/postgres.rs"]
mod pg;

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use load::OnUnavailable;
use pg::TestDb;
use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::postgres::PostgresStore;
use tower_csp_reports::{CspReportLayer, ReportBatch, ReportSink, SinkError, SinkOptions};

const REPORTS_JSON: &str = "application/reports+json";

/// A store's sink slowed down, so that its queue fills under load.
struct Slow(std::sync::Arc<dyn ReportSink>);

#[async_trait]
impl ReportSink for Slow {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.0.send(batch).await
    }

    fn default_options(&self) -> SinkOptions {
        self.0.default_options()
    }
}

/// `n` reports for request `i`, each with a document of its own, so that every report can
/// be found in the table.
fn reports(i: usize, n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|j| {
            format!(
                r#"{{"type":"csp-violation","age":1,"url":"https://app.example/r/{i}/{j}","body":{{"documentURL":"https://app.example/r/{i}/{j}","blockedURL":"https://cdn.example/x.js","effectiveDirective":"script-src-elem","disposition":"enforce"}}}}"#
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

async fn stored_documents(db: &TestDb) -> (i64, BTreeSet<String>) {
    let rows = db
        .client()
        .await
        .query("SELECT document_uri FROM csp_reports", &[])
        .await
        .unwrap();
    let documents = rows.iter().map(|row| row.get::<_, String>(0)).collect();
    (rows.len() as i64, documents)
}

/// A layer whose only sink is the store's, slowed down, with a small queue.
async fn slow_store(db: &TestDb) -> CspReportLayer {
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.unwrap();
    let sink = Slow(std::sync::Arc::new(store.sink()));
    let options = sink
        .default_options()
        .queue_capacity(40)
        .batch_size(10)
        .concurrency(1);
    assert!(options.is_required(), "a store's sink is required");
    CspReportLayer::builder()
        .filter(KeepAll)
        .admission_wait(Duration::from_millis(20))
        .sink_with(sink, options)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_keep_up_gets_503_never_a_204_that_is_lost() {
    let db = TestDb::new().await;
    let layer = slow_store(&db).await;
    let handle = layer.handle();
    let http = load::Server::start(layer).await;

    let outcome = load::run(http.addr, 300, 8, Duration::ZERO, |i| {
        (reports(i, 5), REPORTS_JSON, 5)
    })
    .await;
    handle.flush().await;

    let answered_503 = outcome.statuses.get(&503).copied().unwrap_or(0);
    assert!(answered_503 > 0, "the queue never filled: {outcome:?}");
    assert!(
        outcome.statuses.get(&204).copied().unwrap_or(0) > 0,
        "{outcome:?}"
    );
    assert_eq!(
        outcome.statuses.values().sum::<usize>(),
        300,
        "only 204 and 503: {outcome:?}"
    );
    assert_eq!(
        outcome.unavailable_without_retry_after, 0,
        "every 503 says when to come back"
    );

    let (rows, documents) = stored_documents(&db).await;
    assert_eq!(
        rows as usize, outcome.reports_answered_204,
        "rows == reports answered 204"
    );
    assert_eq!(documents.len(), rows as usize, "none stored twice");
    let stats = handle.stats();
    assert_eq!(stats.received, 1500);
    assert_eq!(stats.accepted, rows as u64);
    assert_eq!(stats.rejected_overload, outcome.reports_answered_503 as u64);
    assert_eq!(stats.accepted + stats.rejected_overload, stats.received);
    let sink = &stats.sinks[0];
    assert_eq!(
        (sink.delivered, sink.dropped, sink.failed, sink.queued),
        (rows as u64, 0, 0, 0),
        "{sink:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_again_after_503_has_every_report_stored_once() {
    let db = TestDb::new().await;
    let layer = slow_store(&db).await;
    let handle = layer.handle();
    let http = load::Server::start(layer).await;

    // As Chromium does with a Reporting API batch, but sooner than its own schedule.
    let resend = OnUnavailable::Resend {
        times: 1_000,
        after: Duration::from_millis(50),
    };
    let outcome = load::run_with(http.addr, 200, 8, Duration::ZERO, resend, |i| {
        (reports(i, 5), REPORTS_JSON, 5)
    })
    .await;
    handle.flush().await;

    assert!(
        outcome.reports_answered_503 > 0,
        "nothing was refused: {outcome:?}"
    );
    assert_eq!(
        outcome.reports_answered_204, 1000,
        "every batch got through: {outcome:?}"
    );
    let (rows, documents) = stored_documents(&db).await;
    let expected: BTreeSet<String> = (0..200)
        .flat_map(|i| (0..5).map(move |j| format!("https://app.example/r/{i}/{j}")))
        .collect();
    assert_eq!(rows, 1000, "each report once");
    assert_eq!(documents, expected);
    let stats = handle.stats();
    assert_eq!(stats.accepted, 1000);
    assert_eq!(stats.rejected_overload, outcome.reports_answered_503 as u64);
    assert_eq!(stats.received, stats.accepted + stats.rejected_overload);
}
