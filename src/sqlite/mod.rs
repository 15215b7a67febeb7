//! Storing reports in a SQLite file: the embedded store, with nothing else to install
//! (SQLite is built into the crate). [`SqliteStore`] implements
//! [`ReportStore`](crate::store::ReportStore), and is what `csp-reports serve` stores into by
//! default.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use tower_csp_reports::sqlite::SqliteStore;
//! use tower_csp_reports::store::{ReportStore, StoreErrorKind, SummaryOptions, TimeRange};
//! use tower_csp_reports::{Report, ReportBatch};
//!
//! let dir = std::env::temp_dir().join(format!("csp-sqlite-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = SqliteStore::builder(dir.join("reports.db")).build()?;
//! store.migrate().await?;                     // versioned, idempotent
//! let report = Report::csp("https://shop.example/cart", "script-src-elem", "inline");
//! store.sink().send(&ReportBatch::from(vec![report])).await?;
//! let summary = store.summary(TimeRange::all(), &SummaryOptions::new()).await?;
//! assert_eq!(summary.top_blocked[0].value, "inline");
//!
//! // A file that is not a database says so, naming it.
//! std::fs::write(dir.join("notes.txt"), "not a database, just some text ".repeat(100))?;
//! let wrong = SqliteStore::builder(dir.join("notes.txt")).build()?;
//! let error = wrong.migrate().await.unwrap_err();
//! assert_eq!(error.kind(), StoreErrorKind::NotADatabase);
//! assert!(error.to_string().contains("notes.txt"), "{error}");
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it writes and reads
//!
//! The file is in write-ahead-log mode. One thread of the store's own holds the only writing
//! connection: every write (a batch, a status, retention) is a job in its queue, and the jobs
//! waiting together run in one transaction, each in a savepoint of its own, so a failing job
//! loses nothing of the others and one `fsync` serves many batches. A job is answered once its
//! transaction has committed. Reads run on other connections (kept open between reads), on
//! Tokio's blocking threads, each in one read transaction: they never wait for the writer.
//! Other processes may use the same file (a `summary` beside a running `serve`); a lock they
//! hold is waited for up to the [busy timeout](SqliteStoreBuilder::busy_timeout).
//!
//! # The tables
//!
//! As in Postgres: the reports table (`csp_reports` by default), with the raw item as sent
//! (`raw_json`, or `raw_text` when it is not JSON) and every field in a typed column (times as
//! microseconds since the Unix epoch, UTC; the id as 16 bytes; the fingerprint as a signed
//! 64-bit integer), indexed by time, by violation and (invalid ones) by time; and beside it
//! `{table}_violations`, `{table}_violation_hours`, `{table}_violation_days`, `{table}_hours`
//! and `{table}_claims`.
//! Migrations are versioned in `tower_csp_reports_migrations`; a schema written by a newer
//! version of the crate is refused with an error naming both versions. Custom columns are a
//! Postgres feature: with SQLite, query `raw_json` with SQLite's JSON functions instead.

mod builder;
mod error;
mod evidence;
mod read;
mod report_store;
mod retention;
mod schema;
mod store;
mod write;
mod writer;

pub use builder::SqliteStoreBuilder;
pub use store::SqliteStore;

pub use rusqlite;
