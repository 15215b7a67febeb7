//! Stores: the [`ReportStore`] trait, the read and write side of a database of reports, and
//! the types it speaks in. [`SqliteStore`](crate::sqlite::SqliteStore) (feature `sqlite`)
//! and [`PostgresStore`](crate::postgres::PostgresStore) (feature `postgres`) implement it.
//!
//! A store keeps every report, valid or not (the raw item kept as sent), and groups the
//! valid CSP violations into [`Violation`]s: one per [`Fingerprint`](crate::Fingerprint)
//! (directive + blocked origin or keyword + document without query), with a count, first
//! and last seen times, hourly and daily counts and a [`ViolationStatus`] people set. The groups are
//! upserted in the transaction that stores the reports, so they are always exactly what is
//! stored; summaries and lists read them, so their cost grows with the violations, not
//! the reports.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use std::sync::Arc;
//! use tower_csp_reports::sqlite::SqliteStore;
//! use tower_csp_reports::store::{
//!     ReportStore, SummaryOptions, TimeRange, ViolationEventKind, ViolationQuery,
//!     ViolationStatus,
//! };
//! use tower_csp_reports::{Report, ReportBatch};
//!
//! let path = std::env::temp_dir().join(format!("csp-store-doc-{}.db", std::process::id()));
//! let store: Arc<dyn ReportStore> = Arc::new(SqliteStore::builder(&path).build()?);
//! store.migrate().await?;
//! let mut events = store.subscribe();               // new and regressed violations
//!
//! let sink = store.sink();                          // hand it to the layer
//! let report = Report::csp("https://shop.example/?id=1", "img-src", "https://ads.example/x.png");
//! let fingerprint = report.fingerprint;
//! sink.send(&ReportBatch::from(vec![report.clone(), report])).await?; // a retry: one stored
//! assert_eq!(events.recv().await?.kind, ViolationEventKind::New);
//!
//! let page = store.violations(&ViolationQuery::new()).await?;
//! let violation = &page.violations[0];
//! assert_eq!((violation.blocked.as_str(), violation.count), ("https://ads.example", 1));
//! assert_eq!(violation.document, "https://shop.example/");
//!
//! store.set_status(&[fingerprint], ViolationStatus::Ignored, Some("our own ads")).await?;
//! let summary = store.summary(TimeRange::all(), &SummaryOptions::new()).await?;
//! assert_eq!((summary.total, summary.ignored), (1, 1)); // left out of the top lists
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Alerts from violation events
//!
//! [`ReportStore::subscribe`] gives a `tokio::sync::broadcast` receiver of
//! [`ViolationEvent`]s: `New` when a write created a violation, `Regressed` when it reopened
//! one marked fixed. The store's upsert decides, in the write's transaction, so with several
//! collectors on one Postgres a new violation is announced by exactly one of them: an alert
//! sink that mails what its own collector's store handle announces mails each once. Subscribe
//! before the first write, then read in a task of its own:
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn tower_csp_reports::store::ReportStore>) {
//! use tokio::sync::broadcast::error::RecvError;
//! let mut events = store.subscribe();
//! tokio::spawn(async move {
//!     loop {
//!         match events.recv().await {
//!             Ok(event) => println!("{:?}: {}", event.kind, event.violation.blocked),
//!             Err(RecvError::Lagged(missed)) => eprintln!("{missed} events missed"),
//!             Err(RecvError::Closed) => break,
//!         }
//!     }
//! });
//! # }
//! ```
//!
//! A digest per window, once across collectors: when a window ends, each collector calls
//! [`claim_digest`](ReportStore::claim_digest)`(window, options)`; the one that wins the
//! claim gets the window's [`summary`](ReportStore::summary), which counts the reports of
//! every collector, and sends it. [`AlertFeed`](crate::alert::AlertFeed) does both for the
//! layer's alert sinks (email, webhook).
//!
//! # Retention
//!
//! [`delete_older_than`](ReportStore::delete_older_than) keeps the violation tables
//! coherent with the rows: the hourly counts of the deleted reports are deleted and each
//! violation's count loses its deleted reports, while the violation itself (status, note,
//! first and last seen) is kept as history.

#![cfg_attr(
    not(any(feature = "postgres", feature = "sqlite")),
    allow(dead_code, unused_imports)
)]

mod error;
mod event;
mod evidence;
pub(crate) mod group;
mod name;
mod query;
mod range;
mod report_store;
#[cfg(feature = "sqlite")]
mod sink;
mod summary;
mod violation;

pub use error::{StoreError, StoreErrorKind};
pub use event::{ViolationEvent, ViolationEventKind, WriteOutcome};
pub use evidence::{
    BlockedEvidence, DirectiveEvidence, EvidenceQuery, MAX_EVIDENCE_DOCUMENTS, PolicyEvidence,
};
pub use query::{
    InvalidCursor, MAX_PAGE, ReportCursor, ReportPage, ReportQuery, Seen, Validity, ViolationPage,
    ViolationQuery, ViolationSort,
};
pub use range::TimeRange;
pub use report_store::ReportStore;
pub use summary::{Count, Counts, FingerprintCount, InvalidReport, Summary, SummaryOptions};
pub use violation::{
    DirectiveHour, HourCount, UnknownStatus, Violation, ViolationDetail, ViolationExample,
    ViolationStatus,
};

pub(crate) use event::EventChannel;
pub(crate) use evidence::EvidenceRow;
pub(crate) use name::{Tables, identifier};
pub(crate) use range::{DaySplit, RangeSplit, day_floor, hour_floor};
#[cfg(feature = "sqlite")]
pub(crate) use range::{from_micros, micros};
#[cfg(feature = "sqlite")]
pub(crate) use sink::StoreSink;
pub(crate) use summary::GroupCount;
pub(crate) use violation::{DETAIL_SAMPLE, top_counts};
