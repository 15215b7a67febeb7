//! Storing reports in Postgres: the schema, a batched sink, summaries and retention.
//!
//! A [`PostgresStore`] owns one table. [`migrate`](PostgresStore::migrate) creates or
//! upgrades it; [`sink`](PostgresStore::sink) gives the [`PostgresSink`] that writes every
//! report, valid or not (the raw item kept as `json`, or as text when it is not JSON), one
//! statement per batch; [`summary`](PostgresStore::summary) and
//! [`delete_older_than`](PostgresStore::delete_older_than) read and prune it.
//!
//! With one batch at a time, the sink waits for Postgres to store each batch before it sends
//! the next. When reports come faster than that, give it two or more batches at once
//! ([`SinkOptions::concurrency`](crate::SinkOptions::concurrency), at most the pool's size)
//! and larger batches ([`SinkOptions::batch_size`](crate::SinkOptions::batch_size), e.g. 1000):
//! the next `COPY` is then on its way while Postgres stores the last.
//!
//! ```no_run
//! use jiff::{Timestamp, ToSpan};
//! use tower_csp_reports::postgres::{CustomColumn, PostgresStore};
//! use tower_csp_reports::{Report, ReportBatch, ReportSink};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect("postgres://app@localhost/app")
//!     .await?
//!     .table("csp_reports")?                 // a validated identifier (the default name)
//!     .partition_by_day(true)                // retention drops whole days
//!     .column(CustomColumn::new("tenant", "text", |report| {
//!         // https://acme.app.example/... -> "acme"
//!         let host = report.document_uri.as_deref().and_then(|uri| uri.strip_prefix("https://"));
//!         Box::new(host.and_then(|host| host.split('.').next()).map(str::to_owned))
//!     })?)?;
//! store.migrate().await?;                    // versioned, idempotent, safe to run concurrently
//!
//! let sink = store.sink();                   // impl ReportSink: hand it to the layer
//! let report = Report::csp("https://acme.app.example/?id=1", "img-src", "https://ads.example/x.png");
//! sink.send(&ReportBatch::from(vec![report])).await?;
//!
//! let now = Timestamp::now();
//! let summary = store.summary(now - 24.hours(), now + 1.second(), 10).await?;
//! assert_eq!(summary.total, 1);
//! assert_eq!(summary.top_sources[0].value, "https://acme.app.example/");
//! let old = store.delete_older_than(now - 168.hours(), true).await?; // dry run: only counts
//! assert_eq!(old, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # The table
//!
//! One row per report. The primary key, `(received_at, id)`, is the table's only index: it
//! serves every time-range query (summaries, retention) and keeps a retried batch from being
//! stored twice. Columns: `id uuid`, `received_at timestamptz`,
//! `age_ms`, `format`, `report_type`, `invalid_reason` and a generated `valid boolean`, `raw_json
//! json` or `raw_text text`, `user_agent`, `client_ip inet`, `url`, `document_uri`,
//! `referrer`, `blocked_uri`, `effective_directive`, `violated_directive`, `original_policy`,
//! `disposition`, `status_code`, `script_sample`, `source_file`, `line_number`,
//! `column_number`, `fingerprint bigint` (the [`Fingerprint`](crate::Fingerprint)'s 64 bits),
//! then your [custom columns](CustomColumn). Applied migrations are recorded in
//! `tower_csp_reports_migrations`.
//!
//! `raw_json` is `json`, not `jsonb`: the item exactly as the browser sent it (key order,
//! spacing and repeated keys kept), checked by Postgres but not converted, which makes each
//! row markedly cheaper to store. `->` and `->>` read it as they are; cast it
//! (`raw_json::jsonb`) for containment queries, or index such an expression. An item with a
//! `\u0000` escape, which no JSON value in Postgres can turn into text, is kept in `raw_text`,
//! so reading any stored `raw_json` never fails.
//!
//! With [daily partitions](PostgresStore::partition_by_day), each UTC day is a partition named
//! `{table}_pYYYYMMDD`, created ahead of time by `migrate` and by the sink when a report's day
//! has none yet; retention drops whole days.

mod column;
mod error;
mod retention;
mod schema;
mod sink;
mod store;
mod summary;

pub use column::{ColumnValue, CustomColumn};
pub use error::StoreError;
pub use sink::PostgresSink;
pub use store::{MakeTls, PostgresStore, WriteMethod};
pub use summary::{Count, FingerprintCount, InvalidReport, Summary};

pub use bb8;
pub use bb8_postgres;
pub use tokio_postgres;
