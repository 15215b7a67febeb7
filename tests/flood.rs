//! A flood: a bounded, self-stopping load of reports over loopback into the layer with the
//! Postgres sink, then an exact count: rows + dropped + filtered = sent.
//!
//! `CSP_FLOOD_REPORTS` sets the size (default 200,000: 2,000 requests of 100 reports over 8
//! connections) and `CSP_FLOOD_QUEUE` the sink's queue (default 10,000 reports). The figures
//! are printed: `cargo test --all-features --test flood -- --nocapture`.
#![cfg(feature = "postgres")]

#[path = "support/load.rs"]
mod load;
#[path = "support/postgres.rs"]
mod pg;

use std::time::{Duration, Instant};

use pg::TestDb;
use tower_csp_reports::postgres::PostgresStore;
use tower_csp_reports::{CspReportLayer, SinkOptions};

const PER_REQUEST: usize = 100;
const CONNECTIONS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_counted_exactly() {
    let setting = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let total = setting("CSP_FLOOD_REPORTS", 200_000);
    let queue = setting("CSP_FLOOD_QUEUE", 10_000);
    let requests = total.div_ceil(PER_REQUEST);

    let db = TestDb::new().await;
    let store = PostgresStore::new(db.pool().await);
    store.migrate().await.unwrap();
    // With the default queue, a flood faster than Postgres has reports dropped and counted
    // rather than held in memory.
    let options = SinkOptions::default()
        .batch_size(1_000)
        .queue_capacity(queue);
    let layer = CspReportLayer::builder()
        .sink_with(store.sink(), options)
        .build()
        .unwrap();
    let handle = layer.handle();
    let http = load::Server::start(layer).await;
    let rss_before = load::peak_rss_kib();

    let started = Instant::now();
    // Every 25th report is extension noise (filtered), every 100th is invalid (stored).
    let outcome = load::run(http.addr, requests, CONNECTIONS, Duration::ZERO, |i| {
        let body = load::batch(i, PER_REQUEST, Some(25), Some(100));
        (body, "application/reports+json", PER_REQUEST)
    })
    .await;
    let load_time = started.elapsed();
    http.stop_accepting();
    tokio::time::timeout(Duration::from_secs(300), handle.shutdown())
        .await
        .expect("the queue drains");
    let drain_time = started.elapsed() - load_time;

    let rows: i64 = db.count("csp_reports").await;
    let stats = handle.stats();
    let sink = &stats.sinks[0];
    let sent = outcome.reports_sent as u64;
    let peak_rss = load::peak_rss_kib();
    eprintln!(
        "flood: queue {queue}; sent {sent} reports in {} requests over {CONNECTIONS} connections in {load_time:.1?} \
         (drained in {drain_time:.1?}); stored {rows}, dropped {}, failed {}, filtered {}, \
         invalid {}; peak RSS {} MiB (before the load: {} MiB)",
        outcome.requests,
        sink.dropped,
        sink.failed,
        stats.filtered,
        stats.invalid,
        peak_rss.unwrap_or(0) / 1024,
        rss_before.unwrap_or(0) / 1024,
    );

    assert_eq!(outcome.requests, requests);
    assert_eq!(outcome.statuses.get(&204), Some(&requests), "{outcome:?}");
    assert_eq!(stats.received, sent);
    assert_eq!(
        (stats.truncated, stats.sampled, stats.rate_limited),
        (0, 0, 0)
    );
    assert_eq!(stats.filtered, sent / 25);
    assert_eq!((sink.queued, sink.failed), (0, 0));
    assert_eq!(
        rows as u64 + sink.dropped + stats.filtered,
        sent,
        "rows + dropped + filtered = sent"
    );
    assert_eq!(rows as u64, sink.delivered);
}
