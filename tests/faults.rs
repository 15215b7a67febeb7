//! Faults at the layer level, through HTTP with the dispatcher: Postgres restarted in the
//! middle of a stream of reports, the SMTP server gone, and a graceful shutdown under load.
#![cfg(all(feature = "postgres", feature = "smtp"))]

#[path = "support/load.rs"]
mod load;
#[path = "support/postgres.rs"]
mod pg;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pg::TestDb;
use tower_csp_reports::filter::KeepAll;
use tower_csp_reports::postgres::PostgresStore;
use tower_csp_reports::sink::MemorySink;
use tower_csp_reports::sink::smtp::{SmtpMode, SmtpSink};
use tower_csp_reports::{CspReportLayer, ReportBatch, ReportSink, SinkError, SinkOptions};

const REPORTS_JSON: &str = "application/reports+json";

async fn count_rows(db: &TestDb) -> (i64, i64) {
    let row = db
        .client()
        .await
        .query_one("SELECT count(*), count(DISTINCT id) FROM csp_reports", &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Patient options: a restart must cost retries, never reports.
fn patient() -> SinkOptions {
    SinkOptions::default()
        .queue_capacity(1_000_000)
        .batch_size(200)
        .linger(Duration::from_millis(20))
        .timeout(Duration::from_secs(2))
        .retries(200)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_stream_loses_and_duplicates_nothing() {
    // A server of its own even when DATABASE_URL is set: this test stops and starts it.
    let (server, db, pool) = pg::restartable().await;
    let store = PostgresStore::new(pool);
    store.migrate().await.unwrap();

    let errors = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&errors);
    let layer = CspReportLayer::builder()
        .filter(KeepAll)
        .sink_with(store.sink(), patient())
        .on_sink_error(move |failure| {
            assert!(failure.will_retry, "given up: {}", failure.error);
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let handle = layer.handle();
    let http = load::Server::start(layer).await;

    let restarter = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tokio::task::spawn_blocking(move || {
                server.stop();
                std::thread::sleep(Duration::from_millis(1000));
                server.start();
            })
            .await
            .unwrap();
        })
    };
    // Paced so the stream runs on both sides of the restart (about 3 s in all).
    let outcome = load::run(http.addr, 600, 2, Duration::from_millis(8), |i| {
        (load::batch(i, 10, None, None), REPORTS_JSON, 10)
    })
    .await;
    restarter.await.unwrap();
    http.stop_accepting();
    tokio::time::timeout(Duration::from_secs(60), handle.shutdown())
        .await
        .expect("the queue drains once Postgres is back");

    assert_eq!(outcome.statuses.get(&204), Some(&600), "{outcome:?}");
    let stats = handle.stats();
    assert!(
        errors.load(Ordering::Relaxed) > 0,
        "the restart happened while no batch was in flight"
    );
    let sink = &stats.sinks[0];
    assert_eq!((sink.dropped, sink.failed, sink.queued), (0, 0, 0));
    let (rows, distinct) = count_rows(&db).await;
    assert_eq!(rows, distinct, "duplicates");
    assert_eq!(
        rows as usize, outcome.reports_answered_204,
        "rows == reports answered 204"
    );
    assert_eq!(sink.delivered, rows as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_server_gone_leaves_the_other_sinks_alone() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smtp = SmtpSink::builder(format!("smtp://127.0.0.1:{port}"))
        .from("csp@example.test")
        .to("security@example.test")
        .mode(SmtpMode::digest(Duration::from_millis(300)))
        .build()
        .unwrap();
    let smtp_options = smtp
        .default_options()
        .retries(3)
        .backoff(Duration::from_millis(20), Duration::from_millis(100));
    let memory = MemorySink::with_capacity(100_000);
    let db = TestDb::new().await;
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.unwrap();
    let dispatch_errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&dispatch_errors);
    let layer = CspReportLayer::builder()
        .filter(KeepAll)
        .sink_with(smtp, smtp_options)
        .sink(memory.clone())
        .sink(store.sink())
        .on_sink_error(move |failure| {
            seen.lock().unwrap().push((
                failure.sink.to_owned(),
                failure.error.is_transient(),
                failure.will_retry,
                failure.error.to_string(),
            ));
        })
        .build()
        .unwrap();
    let handle = layer.handle();
    let http = load::Server::start(layer).await;

    let outcome = load::run(http.addr, 200, 4, Duration::from_millis(5), |i| {
        (load::batch(i, 10, None, None), REPORTS_JSON, 10)
    })
    .await;
    assert_eq!(outcome.statuses.get(&204), Some(&200), "{outcome:?}");
    handle.flush().await;

    // The other sinks have everything, at once.
    let sent = outcome.reports_sent as u64;
    assert_eq!(memory.total(), sent);
    assert_eq!(count_rows(&db).await.0 as u64, sent);

    // The window's digest is due, tried and retried, and given up on.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let told = dispatch_errors.lock().unwrap().len();
    assert!(told >= 1, "the hook was told of the SMTP sink's failure");

    // One more report, then the shutdown: its digest fails at the shutdown (or just before).
    let last = load::run(http.addr, 1, 1, Duration::ZERO, |i| {
        (load::batch(1000 + i, 10, None, None), REPORTS_JSON, 10)
    })
    .await;
    assert_eq!(last.statuses.get(&204), Some(&1));
    let sent = sent + 10;
    http.stop_accepting();
    tokio::time::timeout(Duration::from_secs(30), handle.shutdown())
        .await
        .expect("the shutdown gives up on the SMTP server in bounded time");

    let stats = handle.stats();
    let by_name = |name: &str| stats.sinks.iter().find(|s| s.name == name).unwrap();
    for name in ["memory", "postgres"] {
        let sink = by_name(name);
        assert_eq!(sink.delivered, sent, "{name}");
        assert_eq!(
            (sink.errors, sink.dropped, sink.failed),
            (0, 0, 0),
            "{name}"
        );
    }
    assert_eq!(count_rows(&db).await.0 as u64, sent);
    // The SMTP sink rides on the dispatcher: its failures are the dispatcher's to retry, tell
    // and count, like any sink's.
    let smtp = by_name("smtp");
    let dispatch_errors = dispatch_errors.lock().unwrap().clone();
    assert!(
        dispatch_errors.iter().all(|(sink, ..)| sink == "smtp"),
        "{dispatch_errors:?}"
    );
    for (_, transient, _, message) in &dispatch_errors {
        assert!(
            transient,
            "a server that is down is worth a retry: {message}"
        );
    }
    let given_up = dispatch_errors
        .iter()
        .filter(|(_, _, retry, _)| !retry)
        .count();
    assert!(
        given_up >= 2,
        "both digests were given up on: {dispatch_errors:?}"
    );
    assert_eq!(smtp.errors as usize, dispatch_errors.len());
    assert_eq!(
        (smtp.delivered, smtp.failed, smtp.dropped),
        (0, sent, 0),
        "{smtp:?}"
    );
}

/// A Postgres sink slowed down, so that a queue builds up under load.
struct Slow<S>(S);

#[async_trait]
impl<S: ReportSink> ReportSink for Slow<S> {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.send(batch).await
    }

    async fn shutdown(&self) -> Result<(), SinkError> {
        self.0.shutdown().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_under_load_drains_everything_accepted() {
    let db = TestDb::new().await;
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.unwrap();
    let layer = CspReportLayer::builder()
        .sink_with(
            Slow(store.sink()),
            SinkOptions::default()
                .queue_capacity(1_000_000)
                .batch_size(100),
        )
        .build()
        .unwrap();
    let handle = layer.handle();
    let http = load::Server::start(layer).await;

    // Every 10th report is extension noise, filtered; every 50th is invalid, stored.
    let outcome = load::run(http.addr, 500, 4, Duration::ZERO, |i| {
        (load::batch(i, 20, Some(10), Some(50)), REPORTS_JSON, 20)
    })
    .await;
    http.stop_accepting();
    let before = handle.stats();
    assert!(
        before.sinks[0].queued > 0,
        "the load ended with an empty queue: nothing to drain"
    );
    tokio::time::timeout(Duration::from_secs(120), handle.shutdown())
        .await
        .expect("drained");

    let stats = handle.stats();
    assert_eq!(outcome.statuses.get(&204), Some(&500), "{outcome:?}");
    assert_eq!(stats.received, outcome.reports_sent as u64);
    assert_eq!(stats.filtered, outcome.reports_sent as u64 / 10);
    assert_eq!(stats.invalid, outcome.reports_sent as u64 / 50);
    let sink = &stats.sinks[0];
    assert_eq!((sink.queued, sink.dropped, sink.failed), (0, 0, 0));
    let (rows, distinct) = count_rows(&db).await;
    assert_eq!(rows, distinct);
    assert_eq!(rows as u64, stats.accepted, "rows == accepted");
    assert_eq!(stats.accepted + stats.filtered, outcome.reports_sent as u64);
}
