//! Storing reports in Postgres: the schema, a batched sink, the violation tables, summaries
//! and retention. [`PostgresStore`] implements [`ReportStore`](crate::store::ReportStore).
//!
//! A [`PostgresStore`] owns a reports table and its violation tables.
//! [`migrate`](PostgresStore::migrate) creates or upgrades them; [`sink`](PostgresStore::sink)
//! gives the [`PostgresSink`] that writes every report, valid or not (the raw item kept as
//! `json`, or as text when it is not JSON), one `COPY` per batch, and upserts the violation
//! tables in the same transaction; the [`ReportStore`](crate::store::ReportStore) methods
//! read and prune them.
//!
//! With one batch at a time, the sink waits for Postgres to store each batch before it sends
//! the next. When reports come faster than that, give it two or more batches at once
//! ([`SinkOptions::concurrency`](crate::SinkOptions::concurrency), at most the pool's size)
//! and larger batches ([`SinkOptions::batch_size`](crate::SinkOptions::batch_size), e.g. 1000):
//! the next `COPY` is then on its way while Postgres stores the last.
//!
//! ```no_run
//! use jiff::{SignedDuration, Timestamp};
//! use tower_csp_reports::postgres::{CustomColumn, PostgresStore};
//! use tower_csp_reports::store::{ReportStore, SummaryOptions, TimeRange};
//! use tower_csp_reports::{Report, ReportBatch, ReportSink};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::builder_from_url("postgres://app@localhost/app")
//!     .table("csp_reports")                  // a plain identifier (the default name)
//!     .partition_by_day(true)                // retention drops whole days
//!     .column(CustomColumn::new("tenant", "text", |report| {
//!         // https://acme.app.example/... -> "acme"
//!         let host = report.document_uri.as_deref().and_then(|uri| uri.strip_prefix("https://"));
//!         Box::new(host.and_then(|host| host.split('.').next()).map(str::to_owned))
//!     }))
//!     .build()?;                             // every setting checked here
//! store.migrate().await?;                    // versioned, idempotent, safe to run concurrently
//!
//! let sink = store.sink();                   // impl ReportSink: hand it to the layer
//! let report = Report::csp("https://acme.app.example/?id=1", "img-src", "https://ads.example/x.png");
//! sink.send(&ReportBatch::from(vec![report])).await?;
//!
//! let day = TimeRange::last(SignedDuration::from_hours(24));
//! let summary = store.summary(day, &SummaryOptions::new()).await?;
//! assert_eq!(summary.top_sources[0].value, "https://acme.app.example/");
//! let week_ago = Timestamp::now() - SignedDuration::from_hours(168);
//! let old = store.delete_older_than(week_ago, true).await?; // dry run: only counts
//! assert_eq!(old, 0);
//! # Ok(())
//! # }
//! ```
//!
//! # The tables
//!
//! One row per report in the reports table (`csp_reports` by default). Its primary key,
//! `(received_at, id)`, serves every time-range query and keeps a retried batch from being
//! stored twice; `(fingerprint, received_at)` serves a violation's reports, and a partial
//! index the invalid reports. Columns: `id uuid`, `received_at timestamptz`,
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
//! Beside it, named after it: `{table}_violations` (one row per violation, keyed by
//! fingerprint: directive, blocked, document, document host, first and last seen, count,
//! status, note, an example report's fields), `{table}_violation_hours` and
//! `{table}_violation_days` (reports per violation per UTC hour and day), `{table}_hours`
//! (reports, invalid and violation reports per UTC hour) and `{table}_claims` (the windows
//! claimed with [`claim_window`](crate::store::ReportStore::claim_window)). The sink upserts
//! the first four in the transaction that stores the reports, each table's rows in key order, so two
//! collectors writing the same violations at once take their locks in the same order and
//! never deadlock; a retried batch counts only the rows it actually inserted.
//!
//! With [daily partitions](PostgresStoreBuilder::partition_by_day), each UTC day is a partition named
//! `{table}_pYYYYMMDD`, created ahead of time by `migrate` and by the sink when a report's day
//! has none yet; retention drops whole days.

mod browse;
mod builder;
mod column;
mod error;
mod evidence;
mod groups;
mod report_store;
mod retention;
mod schema;
mod sink;
mod store;
mod summary;
mod value;

pub use builder::PostgresStoreBuilder;
pub use column::{ColumnValue, CustomColumn};
pub use sink::PostgresSink;
pub use store::{MakeTls, PostgresStore, WriteMethod};

pub use bb8;
pub use bb8_postgres;
pub use tokio_postgres;
