//! Email alerts: [`SmtpSink`] mails reports through an SMTP server with [lettre] (Tokio,
//! rustls), as one email per report, a digest per window, or an alert when a violation not
//! seen before appears, with a cap on emails per hour. With a store, the store decides
//! ([`SmtpMode::StoreAlerts`], fed by an [`AlertFeed`](crate::alert::AlertFeed)), so
//! several collectors mail each new violation and each digest once.
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::sink::smtp::{SmtpMode, SmtpSink};
//! use tower_csp_reports::{CspReportLayer, ReportSink};
//!
//! let sink = SmtpSink::builder("smtp://csp:p%40ss@mail.example.com:587?tls=required")
//!     .from("CSP reports <csp@example.com>")
//!     .to("security@example.com")
//!     .to("web-team@example.com")
//!     .subject_prefix("[example.com CSP]")
//!     .mode(SmtpMode::digest(Duration::from_secs(10 * 60)))
//!     .max_per_hour(6)
//!     .build()?;
//! // The dispatcher gathers each window as one batch: one digest per window at most.
//! let options = sink.default_options();
//! assert!(!options.is_required());
//! let layer = CspReportLayer::builder().sink(sink).build()?;
//! assert_eq!(layer.handle().stats().sinks[0].name, "smtp");
//!
//! let refused = SmtpSink::builder("smtp://mail.example.com").to("ops@example.com").build();
//! assert_eq!(refused.unwrap_err().to_string(), "invalid smtp sender: a sender address is required");
//! # Ok::<(), tower_csp_reports::ConfigError>(())
//! ```
//!
//! A digest groups its window's reports by violation (fingerprint) with counts, first and
//! last time seen and one example each, most frequent first. Every email has a plain-text
//! body and an HTML alternative. Report values are escaped in the HTML and never become
//! links; subjects are one line, cut to 150 characters, with every control character removed,
//! so report content cannot add a header.
//!
//! The sink rides on the layer's dispatcher: transient failures (connection refused, `4xx`
//! answers, time-outs) are retried with backoff, permanent ones (`5xx` answers) are not, and
//! both reach the layer's error hook
//! ([`on_sink_error`](crate::CspReportLayerBuilder::on_sink_error)) as a
//! [`SinkError`](crate::SinkError) whose source is a [`DeliveryError`], and its counters.

mod alerts;
mod builder;
mod error;
mod groups;
mod memory;
mod mode;
mod render;
mod sink;
mod text;

pub use builder::SmtpSinkBuilder;
pub use error::DeliveryError;
pub use mode::SmtpMode;
pub use sink::{SmtpSink, SmtpStats};
#[doc(hidden)]
pub use text::html as escape_html;

pub use lettre;
