//! The summary of a range, read from the violation tables, beside the same summary computed
//! by `GROUP BY` over the report rows: SQLite at 1 M reports, Postgres at 1 M and 10 M (goal:
//! at most 50 ms from the violation tables).
//!
//! `cargo bench --features postgres,sqlite --bench store_summary`. Each store is filled
//! first with the data set of `scripts/seed-store` (reports over 30 days, 2,000 violations),
//! through its own write path; `STORES` picks the stores and sizes (default
//! `sqlite:1000000,postgres:1000000,postgres:10000000`). Postgres is `DATABASE_URL` when set,
//! otherwise a throwaway server (see `tests/support/postgres.rs`).

#[path = "../tests/support/postgres.rs"]
mod pg;
#[path = "support/seed.rs"]
mod seed;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use jiff::{SignedDuration, Timestamp};
use tokio::runtime::Runtime;
use tower_csp_reports::postgres::PostgresStore;
use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::store::{ReportStore, SummaryOptions, TimeRange};

/// Fills a store, several batches at once, and says how long it took.
async fn fill(store: Arc<dyn ReportStore>, n: u64, end: Timestamp) {
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel::<tower_csp_reports::ReportBatch>(8);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (store, rx) = (store.clone(), rx.clone());
            tokio::spawn(async move {
                loop {
                    let batch = rx.lock().await.recv().await;
                    let Some(batch) = batch else { return };
                    store.write(&batch).await.unwrap();
                }
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        seed::generate(n, end, 5_000, |batch| {
            let _ = tx.blocking_send(batch);
        });
    })
    .await
    .unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let counts = store.counts(TimeRange::all()).await.unwrap();
    assert_eq!(counts.total, n);
    eprintln!(
        "{}: {n} reports stored in {:.1} s",
        store.name(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let rt = Runtime::new().unwrap();
    let stores = std::env::var("STORES")
        .unwrap_or_else(|_| "sqlite:1000000,postgres:1000000,postgres:10000000".to_owned());
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let dir = std::env::temp_dir().join(format!("csp-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The end of the data set on an hour, so the ranges below are whole hours, plus one that
    // is not.
    let end = Timestamp::from_second(Timestamp::now().as_second() / 3600 * 3600).unwrap();
    let ranges = [
        (
            "1d",
            TimeRange::new(end - SignedDuration::from_hours(24), end),
        ),
        (
            "1d-off-the-hour",
            TimeRange::new(
                end - SignedDuration::from_mins(24 * 60 + 17),
                end - SignedDuration::from_mins(17),
            ),
        ),
        (
            "30d",
            TimeRange::new(end - SignedDuration::from_hours(24 * 30), end),
        ),
    ];
    for spec in stores.split(',') {
        let (kind, n) = spec.split_once(':').expect("STORES entries are kind:count");
        let n: u64 = n.parse().expect("a count of reports");
        let store: Arc<dyn ReportStore> = rt.block_on(async {
            let store: Arc<dyn ReportStore> = match kind {
                "sqlite" => Arc::new(
                    SqliteStore::builder(dir.join(format!("bench-{n}.db")))
                        .build()
                        .unwrap(),
                ),
                "postgres" => {
                    let db = pg::TestDb::new().await;
                    let store = PostgresStore::new(db.pool().await);
                    Arc::new(store)
                }
                other => panic!("unknown store {other}"),
            };
            store.migrate().await.unwrap();
            fill(store.clone(), n, end).await;
            store
        });
        let mut group = criterion.benchmark_group(format!("summary/{kind}/{n}"));
        let options = SummaryOptions::new();
        for (name, range) in ranges {
            // Both ways give the same figures.
            let (fast, slow) = rt.block_on(async {
                (
                    store.summary(range, &options).await.unwrap(),
                    store.summary_from_reports(range, &options).await.unwrap(),
                )
            });
            assert_eq!(fast, slow, "{kind} {name}");
            group.bench_function(BenchmarkId::new("violation-tables", name), |b| {
                b.iter(|| rt.block_on(store.summary(range, &options)).unwrap());
            });
            group.bench_function(BenchmarkId::new("group-by-rows", name), |b| {
                b.iter(|| {
                    rt.block_on(store.summary_from_reports(range, &options))
                        .unwrap()
                });
            });
        }
        group.finish();
        drop(store);
    }
    criterion.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
}
