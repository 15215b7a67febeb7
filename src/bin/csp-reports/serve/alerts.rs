//! The alerts of `csp-reports serve`: the webhook options, and the feed that hands the
//! store's decisions (new and regressed violations, digests) to the email and webhook sinks.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args as ClapArgs, ValueEnum};
use tower_csp_reports::alert::{AlertFeed, AlertTask};
use tower_csp_reports::sink::webhook::{WebhookFormat, WebhookSink};
use tower_csp_reports::store::ReportStore;
use tower_csp_reports::{CspReportHandle, CspReportLayerBuilder, ReportSink};

use super::args::{parse_duration, parse_positive_duration};
use crate::Failure;

#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Alerts")]
pub(crate) struct AlertArgs {
    /// Post new and regressed violations and digests, as decided by the store, to this
    /// URL as JSON (needs a store).
    #[arg(long, env = "CSP_REPORTS_WEBHOOK_URL", hide_env_values = true)]
    pub(crate) webhook_url: Option<String>,

    /// The webhook body: generic JSON, or Slack's {"text": ...}.
    #[arg(long, env = "CSP_REPORTS_WEBHOOK_FORMAT", value_enum, default_value_t = HookFormat::Generic)]
    pub(crate) webhook_format: HookFormat,

    /// At most this many webhook posts an hour.
    #[arg(long, env = "CSP_REPORTS_WEBHOOK_MAX_PER_HOUR", default_value_t = 20)]
    pub(crate) webhook_max_per_hour: u32,

    /// How long one webhook post may take before it is retried.
    #[arg(long, env = "CSP_REPORTS_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub(crate) webhook_timeout: Duration,

    /// The window of the store's digests (email in digest mode, the webhook), aligned on
    /// the clock so that every collector cuts the same ones [default: --smtp-window].
    #[arg(long, env = "CSP_REPORTS_DIGEST_WINDOW", value_parser = parse_duration)]
    pub(crate) digest_window: Option<Duration>,
}

/// The webhook body's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HookFormat {
    /// {"source", "alerts": [...], "missed"}.
    Generic,
    /// {"text": "..."} in Slack's mrkdwn.
    Slack,
}

/// What the store is to announce.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wanted {
    pub(crate) violations: bool,
    pub(crate) digests: bool,
}

impl AlertArgs {
    /// Adds the webhook sink, when asked for; returns what it wants announced.
    pub(crate) fn add_webhook(
        &self,
        layer: CspReportLayerBuilder,
        store: Option<&Arc<dyn ReportStore>>,
    ) -> Result<(CspReportLayerBuilder, Wanted), Failure> {
        let Some(url) = &self.webhook_url else {
            return Ok((layer, Wanted::default()));
        };
        if store.is_none() {
            return Err(Failure::usage(
                "--webhook-url posts what the store decides: it cannot go with --no-store",
            ));
        }
        let format = match self.webhook_format {
            HookFormat::Generic => WebhookFormat::Generic,
            HookFormat::Slack => WebhookFormat::Slack,
        };
        let sink = WebhookSink::builder(url)
            .format(format)
            .max_per_hour(self.webhook_max_per_hour)
            .build()?;
        let options = sink.default_options().timeout(self.webhook_timeout);
        tracing::info!(target: "csp_reports", format = ?self.webhook_format, "posting alerts to a webhook");
        let wanted = Wanted {
            violations: true,
            digests: true,
        };
        Ok((layer.sink_with(sink, options), wanted))
    }

    /// The feed of the store's decisions, when a sink wants them.
    pub(crate) fn feed(
        &self,
        store: Option<&Arc<dyn ReportStore>>,
        wanted: Wanted,
        smtp_window: Duration,
    ) -> Result<Option<AlertFeed>, Failure> {
        let Some(store) = store.filter(|_| wanted.violations || wanted.digests) else {
            return Ok(None);
        };
        let mut feed = AlertFeed::builder(Arc::clone(store)).violations(wanted.violations);
        if wanted.digests {
            let window = self.digest_window.unwrap_or(smtp_window);
            feed = feed
                .digest_window(window)
                .digest_delay(window.min(Duration::from_secs(5)));
        }
        Ok(Some(feed.build()?))
    }
}

/// Starts the feed on the built layer.
pub(crate) fn start(feed: Option<AlertFeed>, handle: CspReportHandle) -> Option<AlertTask> {
    feed.map(|feed| feed.start(handle))
}
