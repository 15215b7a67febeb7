//! Email alerts: [`SmtpSink`] mails reports through an SMTP server with [lettre] (Tokio,
//! rustls), as one email per report, a digest per window, or an alert when a violation not
//! seen before appears, with a cap on emails per hour.
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::sink::smtp::{Email, SmtpMode, SmtpSink};
//! use tower_csp_reports::Report;
//!
//! let sink = SmtpSink::builder("smtp://csp:p%40ss@mail.example.com:587?tls=required")
//!     .from("CSP reports <csp@example.com>")
//!     .to("security@example.com")
//!     .to("web-team@example.com")
//!     .subject_prefix("[example.com CSP]")
//!     .mode(SmtpMode::digest(Duration::from_secs(10 * 60)))
//!     .max_per_hour(6)
//!     .build()
//!     .expect("valid settings");
//! # drop(sink);
//!
//! // What the recipients read for a window with these three reports:
//! let inline = Report::csp("https://example.com/pay?step=2", "script-src-elem", "inline");
//! let pixel = Report::csp("https://example.com/", "img-src", "https://tracker.example/p.gif");
//! let digest = Email::digest("[example.com CSP]", [&inline, &pixel, &inline]);
//! assert_eq!(digest.subject, "[example.com CSP] Digest: 3 reports of 2 violations");
//! assert!(digest.text.contains("1. script-src-elem blocked inline on https://example.com/pay (2 reports)"));
//! assert!(digest.text.contains("2. img-src blocked https://tracker.example on https://example.com/ (1 report)"));
//! ```
//!
//! Every email has a plain-text body and an HTML alternative. Report values are escaped in
//! the HTML and never become links; subjects are one line, cut to 150 characters, with every
//! control character removed, so report content cannot add a header.
//!
//! Emails go out from the sink's own task: [`send`](crate::ReportSink::send) returns at once.
//! Transient failures (connection refused, 4xx answers, time-outs) are retried with backoff;
//! permanent ones (5xx answers) and emails still failing after
//! [`give_up_after`](SmtpSinkBuilder::give_up_after) go to the
//! [error hook](SmtpSinkBuilder::on_error) as a [`SinkError`](crate::SinkError) whose source
//! is a [`DeliveryError`].

mod builder;
mod error;
mod groups;
mod limit;
mod memory;
mod mode;
mod render;
mod sink;
mod text;
mod worker;

pub use builder::SmtpSinkBuilder;
pub use error::DeliveryError;
pub use mode::SmtpMode;
pub use render::Email;
pub use sink::{SmtpSink, SmtpStats};
pub use text::html as escape_html;

pub use lettre;
