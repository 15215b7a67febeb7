//! The SQLite store on real files on disk, through the conformance suite and the cases that
//! are its own: bad files, newer schemas, several handles on one file.
#![cfg(feature = "sqlite")]

#[path = "support/conformance.rs"]
mod conformance;
#[path = "support/store_conformance.rs"]
mod store_conformance;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::sqlite::rusqlite::Connection;
use tower_csp_reports::store::{ReportStore, StoreErrorKind, SummaryOptions, TimeRange};
use tower_csp_reports::{Report, ReportBatch, ReportSink};

/// A directory of its own for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "csp-sqlite-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_the_conformance_suite() {
    let dir = Arc::new(TempDir::new());
    let counter = AtomicU32::new(0);
    store_conformance::check(|| {
        let path = dir.file(&format!(
            "store-{}.db",
            counter.fetch_add(1, Ordering::Relaxed)
        ));
        async move {
            let store = SqliteStore::builder(path).build().unwrap();
            store.migrate().await.unwrap();
            Arc::new(store) as Arc<dyn ReportStore>
        }
    })
    .await;
}

#[tokio::test]
async fn the_sink_passes_the_sink_conformance_suite() {
    let dir = TempDir::new();
    let store = SqliteStore::builder(dir.file("sink.db")).build().unwrap();
    store.migrate().await.unwrap();
    let sink = store.sink();
    let reader = store.clone();
    conformance::check(&sink, || {
        let reader = reader.clone();
        async move {
            reader
                .reports(&tower_csp_reports::store::ReportQuery::new().limit(1000))
                .await
                .unwrap()
                .reports
                .iter()
                .map(|r| r.id.to_string())
                .collect()
        }
    })
    .await;
}

#[tokio::test]
async fn bad_files_get_clear_errors() {
    let dir = TempDir::new();
    // Not a database.
    std::fs::write(dir.file("text.db"), "hello ".repeat(1000)).unwrap();
    let store = SqliteStore::builder(dir.file("text.db")).build().unwrap();
    let error = store.migrate().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::NotADatabase, "{error}");
    assert!(error.to_string().contains("text.db"), "{error}");
    assert!(!error.is_transient());
    // A path that cannot be created.
    let nowhere = dir.file("missing/dir/reports.db");
    let store = SqliteStore::builder(&nowhere).build().unwrap();
    let error = store.migrate().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Open, "{error}");
    assert!(
        error.to_string().contains("missing/dir/reports.db"),
        "{error}"
    );
    // Reading a file that does not exist creates nothing.
    let absent = dir.file("absent.db");
    let store = SqliteStore::builder(&absent).build().unwrap();
    let error = store
        .summary(TimeRange::all(), &SummaryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Open, "{error}");
    assert!(error.to_string().contains("absent.db"), "{error}");
    assert!(!absent.exists());
    // An empty database without the schema.
    Connection::open(dir.file("empty.db"))
        .unwrap()
        .execute_batch("CREATE TABLE other (x)")
        .unwrap();
    let store = SqliteStore::builder(dir.file("empty.db")).build().unwrap();
    let error = store.ping().await.unwrap_err();
    assert_eq!(error.kind(), StoreErrorKind::Schema, "{error}");
    assert!(error.to_string().contains("migrate"), "{error}");
}

#[tokio::test]
async fn a_schema_from_a_newer_version_is_refused() {
    let dir = TempDir::new();
    let path = dir.file("newer.db");
    let store = SqliteStore::builder(&path).build().unwrap();
    store.migrate().await.unwrap();
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO tower_csp_reports_migrations VALUES ('csp_reports', 99, 0)",
            [],
        )
        .unwrap();
    let fresh = SqliteStore::builder(&path).build().unwrap();
    for error in [
        fresh.migrate().await.unwrap_err(),
        fresh
            .summary(TimeRange::all(), &SummaryOptions::new())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(error.kind(), StoreErrorKind::NewerSchema, "{error}");
        let text = error.to_string();
        assert!(
            text.contains("99") && text.contains("up to 1") && text.contains("newer.db"),
            "{text}"
        );
    }
}

/// Two stores on one file, as `serve` and `clean` in two processes: writes of both land, in
/// write-ahead-log mode, and many batches at once from many tasks are all stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_and_many_writers_on_one_file() {
    let dir = TempDir::new();
    let path = dir.file("shared.db");
    let a = SqliteStore::builder(&path).build().unwrap();
    a.migrate().await.unwrap();
    let b = SqliteStore::builder(&path).build().unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let batch: ReportBatch = (0..25)
                .map(|j| Report::csp(&format!("https://a.example/{i}/{j}"), "img-src", "data"))
                .collect();
            store.sink().send(&batch).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mode: String = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let counts = b.counts(TimeRange::all()).await.unwrap();
    assert_eq!(counts.total, 1000);
    let summary = a
        .summary(TimeRange::all(), &SummaryOptions::new())
        .await
        .unwrap();
    assert_eq!(summary.total, 1000);
    assert_eq!(
        summary,
        a.summary_from_reports(TimeRange::all(), &SummaryOptions::new())
            .await
            .unwrap()
    );
}
