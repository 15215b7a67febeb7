//! Where reports go: the [`ReportSink`] trait and the built-in sinks.
//!
//! A sink receives a [`ReportBatch`] from its own worker, off the request path. It returns a
//! [`SinkError`] that says whether trying again may help; the dispatcher retries transient
//! errors with backoff and hands the rest to the error hook.
//!
//! ```
//! use tower_csp_reports::sink::{sink_fn, MemorySink, ReportBatch, ReportSink};
//! use tower_csp_reports::Report;
//!
//! # tokio_test_block_on(async {
//! let memory = MemorySink::new();
//! let batch = ReportBatch::from(vec![Report::csp("https://example.com/", "img-src", "https://ads.example/")]);
//! memory.send(&batch).await.unwrap();
//! assert_eq!(memory.reports()[0].blocked_uri.as_deref(), Some("https://ads.example/"));
//!
//! let counting = sink_fn(|batch: ReportBatch| async move {
//!     assert_eq!(batch.len(), 1);
//!     Ok(())
//! });
//! counting.send(&batch).await.unwrap();
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

mod batch;
mod error;
mod func;
#[cfg(any(feature = "smtp", feature = "webhook"))]
mod limit;
mod memory;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub mod smtp;
mod tracing;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub mod webhook;

pub use batch::ReportBatch;
pub use error::SinkError;
pub use func::{SinkFn, sink_fn};
pub use memory::MemorySink;
#[cfg(feature = "smtp")]
#[cfg_attr(docsrs, doc(cfg(feature = "smtp")))]
pub use smtp::SmtpSink;
pub use tracing::TracingSink;
#[cfg(feature = "webhook")]
#[cfg_attr(docsrs, doc(cfg(feature = "webhook")))]
pub use webhook::WebhookSink;

use async_trait::async_trait;

use crate::SinkOptions;

/// A destination for reports: logs, email, a database, your own code.
///
/// Implementations must be cheap to share: the dispatcher keeps one in an `Arc` and calls it
/// from one worker task, one batch at a time, with a timeout around each call.
#[async_trait]
pub trait ReportSink: Send + Sync + 'static {
    /// A short name for counters and error messages (`"tracing"`, `"postgres"`).
    fn name(&self) -> &str;

    /// Delivers a batch. Return a [transient](SinkError::transient) error to have the same
    /// batch offered again after a backoff.
    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError>;

    /// Called once after the last batch when the dispatcher shuts down: flush what is
    /// buffered, close connections.
    async fn shutdown(&self) -> Result<(), SinkError> {
        Ok(())
    }

    /// How the layer feeds this sink when it is added with
    /// [`sink`](crate::CspReportLayerBuilder::sink) rather than
    /// [`sink_with`](crate::CspReportLayerBuilder::sink_with): [`SinkOptions::default`], a
    /// best-effort sink, unless the sink knows better (a store is required, an email digest
    /// gathers a window).
    fn default_options(&self) -> SinkOptions {
        SinkOptions::default()
    }
}

#[async_trait]
impl<S: ReportSink + ?Sized> ReportSink for std::sync::Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        (**self).send(batch).await
    }

    async fn shutdown(&self) -> Result<(), SinkError> {
        (**self).shutdown().await
    }

    fn default_options(&self) -> SinkOptions {
        (**self).default_options()
    }
}
