//! Handing reports to sinks off the request path.
//!
//! Each sink has its own bounded queue (counted in reports) and its own worker task, so a slow
//! or failing sink never holds up the response or another sink. A worker gathers reports into
//! batches that grow with the load, hands them to the sink (several at once if its
//! [`SinkOptions::concurrency`] allows) with a timeout, retries transient errors with
//! backoff and jitter, catches panics, and tells the error hook
//! ([`CspReportLayerBuilder::on_sink_error`](crate::CspReportLayerBuilder::on_sink_error)) about
//! every failure.
//!
//! When a sink's queue is full, what happens depends on whether the sink is *required*
//! ([`SinkOptions::required`]): a best-effort sink drops the new reports, counts them and warns
//! (at most once per ten seconds per sink); for a required sink, the request waits a moment
//! for room and is then answered `503` with `Retry-After`, so that a `204` always means the
//! reports are queued for every required sink. Stores are required by default.
//!
//! [`CspReportHandle::shutdown`](crate::CspReportHandle::shutdown) drains every queue, so a
//! graceful shutdown loses nothing that was accepted.
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::sink::MemorySink;
//! use tower_csp_reports::{CspReportLayer, SinkOptions};
//!
//! let layer = CspReportLayer::builder()
//!     .sink_with(
//!         MemorySink::new(),
//!         SinkOptions::default().batch_size(500).linger(Duration::from_millis(50)).required(true),
//!     )
//!     .build()?;
//! let stats = layer.handle().stats();
//! assert_eq!(stats.sinks[0].name, "memory");
//! assert!(stats.sinks[0].required);
//!
//! let error = CspReportLayer::builder()
//!     .sink_with(MemorySink::new(), SinkOptions::default().batch_size(0))
//!     .build()
//!     .unwrap_err();
//! assert_eq!(error.to_string(), "batch_size must be between 1 and 1000000, not 0");
//! # Ok::<(), tower_csp_reports::ConfigError>(())
//! ```

mod backoff;
mod deliver;
mod dispatcher;
mod hook;
mod options;
mod slot;
mod stats;
mod worker;

pub use hook::SinkFailure;
pub use options::{Dispatch, Feed, SinkOptions};
pub use stats::SinkStats;

#[cfg(feature = "nats")]
pub(crate) use backoff::Backoff;
#[cfg(feature = "nats")]
pub(crate) use deliver::call_sink;
pub(crate) use dispatcher::{Admission, Dispatcher};
#[cfg(feature = "nats")]
pub(crate) use hook::tell;
pub(crate) use hook::{ErrorHook, default_error_hook};
