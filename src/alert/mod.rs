//! Alerts decided by the store: new and regressed violations, and one digest per window,
//! each announced by exactly one collector however many write to one database.
//!
//! A store's write decides, in its transaction, which violations it created or reopened
//! ([`ViolationEvent`](crate::store::ViolationEvent)); a digest window goes to the one
//! collector that wins its claim ([`ReportStore::claim_digest`](crate::store::ReportStore::claim_digest)).
//! An [`AlertFeed`] hands both, as [`Alert`]s, to the layer's sinks fed alerts
//! ([`Feed::Alerts`](crate::dispatch::Feed::Alerts): the SMTP sink's
//! [`SmtpMode::StoreAlerts`](crate::sink::smtp::SmtpMode::StoreAlerts), the webhook sink),
//! through the dispatcher like reports: queues, timeouts, retries and counters.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use std::sync::Arc;
//! use tower_csp_reports::alert::{Alert, AlertFeed};
//! use tower_csp_reports::dispatch::Feed;
//! use tower_csp_reports::sqlite::SqliteStore;
//! use tower_csp_reports::store::{ReportStore, ViolationEventKind};
//! use tower_csp_reports::sink::sink_fn;
//! use tower_csp_reports::{CspReportLayer, Report, ReportBatch, ReportSink, SinkOptions};
//!
//! let path = std::env::temp_dir().join(format!("csp-alert-doc-{}.db", std::process::id()));
//! let store: Arc<dyn ReportStore> = Arc::new(SqliteStore::builder(&path).build()?);
//! store.migrate().await?;
//! let feed = AlertFeed::builder(Arc::clone(&store)).build()?; // subscribes now
//!
//! let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
//! let alerts = sink_fn(move |batch: ReportBatch| {
//!     let tx = tx.clone();
//!     async move {
//!         for alert in batch.alerts() {
//!             tx.send(alert.clone()).ok();
//!         }
//!         Ok(())
//!     }
//! });
//! let layer = CspReportLayer::builder()
//!     .sink(store.sink())
//!     .sink_with(alerts, SinkOptions::default().feed(Feed::Alerts))
//!     .build()?;
//! let task = feed.start(layer.handle());
//!
//! let report = Report::csp("https://shop.example/", "img-src", "https://ads.example/x.png");
//! store.sink().send(&ReportBatch::from(vec![report])).await?;
//! let Some(Alert::Violation(event)) = heard.recv().await else { panic!("no alert") };
//! assert_eq!(event.kind, ViolationEventKind::New);
//! assert_eq!(event.violation.blocked, "https://ads.example");
//! task.stop().await;
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod describe;
mod feed;
mod kind;

pub use feed::{AlertFeed, AlertFeedBuilder, AlertTask};
pub use kind::Alert;

// Each alert sink uses some of these; with both built, every one is used.
#[cfg_attr(not(all(feature = "smtp", feature = "webhook")), allow(unused_imports))]
pub(crate) use describe::{
    digest_lines, digest_title, event_title, headline, kind_word, plural, violation_fields,
};
pub(crate) use kind::told_reports;
