//! Fills a store with the benchmark data set: N reports over 30 days, 2,000 violations.
//!
//! ```sh
//! scripts/seed-store --reports 1000000 --database-url sqlite://./bench.db
//! scripts/seed-store --reports 10000000 --database-url postgres://postgres@localhost/bench
//! ```
//!
//! The reports go through the store's own write path (the sink's transaction, violation
//! tables included), in batches of 5,000, several at once; the run ends with the time it
//! took and the store's counts.

#[path = "../benches/support/seed.rs"]
mod seed;

use std::sync::Arc;
use std::time::Instant;

use tower_csp_reports::postgres::PostgresStore;
use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::store::{ReportStore, TimeRange};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut reports: u64 = 1_000_000;
    let mut url = "sqlite://./bench.db".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reports" => reports = args.next().ok_or("--reports N")?.parse()?,
            "--database-url" => url = args.next().ok_or("--database-url URL")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; use --reports N --database-url URL"
                )
                .into());
            }
        }
    }
    let store: Arc<dyn ReportStore> = match url.strip_prefix("sqlite://") {
        Some(path) => Arc::new(SqliteStore::builder(path).build()?),
        None => Arc::new(PostgresStore::builder_from_url(&url).build()?),
    };
    store.migrate().await?;
    let end = jiff::Timestamp::now();
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<tower_csp_reports::ReportBatch>(8);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, rx) = (store.clone(), rx.clone());
            tokio::spawn(async move {
                loop {
                    let batch = rx.lock().await.recv().await;
                    let Some(batch) = batch else {
                        return Ok::<(), BoxError>(());
                    };
                    store.write(&batch).await?;
                }
            })
        })
        .collect();
    let producer = tokio::task::spawn_blocking(move || {
        seed::generate(reports, end, 5_000, |batch| {
            let _ = tx.blocking_send(batch);
        });
    });
    producer.await?;
    for writer in writers {
        writer.await??;
    }
    let elapsed = started.elapsed();
    let counts = store.counts(TimeRange::all()).await?;
    println!(
        "seeded {} reports ({} invalid) in {:.1} s, {:.0} reports/s",
        counts.total,
        counts.invalid,
        elapsed.as_secs_f64(),
        reports as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
