//! Webhook alerts: [`WebhookSink`] posts the alerts a store decided (new and regressed
//! violations, digests) as JSON, over HTTP/1.1 with hyper, and TLS with rustls for `https`.
//!
//! ```
//! use tower_csp_reports::sink::webhook::{WebhookFormat, WebhookSink};
//! use tower_csp_reports::dispatch::Feed;
//! use tower_csp_reports::{CspReportLayer, ReportSink};
//!
//! let sink = WebhookSink::builder("https://hooks.slack.com/services/T000/B000/XXXX")
//!     .format(WebhookFormat::Slack)
//!     .max_per_hour(10)
//!     .build()?;
//! assert_eq!(sink.default_options().fed(), Feed::Alerts); // alerts, not reports
//! let layer = CspReportLayer::builder().sink(sink).build()?;
//! assert_eq!(layer.handle().stats().sinks[0].name, "webhook");
//!
//! let refused = WebhookSink::builder("ftp://hooks.example/x").build().unwrap_err();
//! assert_eq!(refused.to_string(), "invalid webhook url: the scheme must be http or https");
//! # Ok::<(), tower_csp_reports::ConfigError>(())
//! ```
//!
//! The generic body is the alerts as they serialize ([`Alert`](crate::alert::Alert)), and
//! what earlier posts could not carry:
//!
//! ```json
//! {"source": "tower-csp-reports",
//!  "alerts": [{"type": "violation", "kind": "new", "violation": {"fingerprint": "…", "directive": "img-src", …}},
//!             {"type": "digest", "since": "…", "to": "…", "total": 12, "top_fingerprints": […], …}],
//!  "missed": {"posts": 0, "alerts": 0}}
//! ```
//!
//! The Slack body is one `text` in mrkdwn, a line per field, with `&`, `<` and `>` escaped
//! in every value so a report cannot make a link or a mention. A webhook URL carries its
//! secret in the path: errors and logs name the endpoint by scheme and host only.

mod body;
mod builder;
mod client;
mod error;
mod sink;

pub use builder::WebhookSinkBuilder;
pub use error::WebhookError;
pub use sink::{WebhookSink, WebhookStats};

pub use tokio_rustls::rustls;

/// The shape of a webhook's JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WebhookFormat {
    /// `{"source", "alerts": [...], "missed"}`: the alerts as they serialize.
    #[default]
    Generic,
    /// `{"text": "..."}` in Slack's mrkdwn (Slack's incoming webhooks, and the chat tools
    /// that accept the same: Mattermost, Rocket.Chat, Discord's `/slack` endpoint).
    Slack,
}
