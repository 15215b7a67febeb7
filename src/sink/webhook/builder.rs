//! Configuring a webhook sink.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::ClientConfig;

use super::client::Endpoint;
use super::{WebhookFormat, WebhookSink};
use crate::error::{ConfigError, check_limit, check_nonzero};

/// At most this many posts per period can be asked for.
const MAX_POSTS_LIMIT: u64 = 100_000;

/// Configures a [`WebhookSink`]: [`WebhookSink::builder`]. Every setting is checked by
/// [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct WebhookSinkBuilder {
    url: String,
    format: WebhookFormat,
    violations: bool,
    digests: bool,
    max_posts: u32,
    per: Duration,
    tls: Option<Arc<ClientConfig>>,
}

/// What the sink was built with.
#[derive(Debug)]
pub(super) struct HookSettings {
    pub(super) endpoint: Endpoint,
    pub(super) format: WebhookFormat,
    pub(super) violations: bool,
    pub(super) digests: bool,
    pub(super) max_posts: u32,
    pub(super) per: Duration,
}

impl WebhookSinkBuilder {
    pub(super) fn new(url: String) -> Self {
        Self {
            url,
            format: WebhookFormat::Generic,
            violations: true,
            digests: true,
            max_posts: 20,
            per: Duration::from_secs(3600),
            tls: None,
        }
    }

    /// The body's shape (default [`WebhookFormat::Generic`]).
    pub fn format(mut self, format: WebhookFormat) -> Self {
        self.format = format;
        self
    }

    /// Whether new and regressed violations are posted (default `true`).
    pub fn violations(mut self, post: bool) -> Self {
        self.violations = post;
        self
    }

    /// Whether digests are posted (default `true`).
    pub fn digests(mut self, post: bool) -> Self {
        self.digests = post;
        self
    }

    /// At most `max` posts an hour (default 20); the alerts of posts held back are counted
    /// and told in the next post.
    pub fn max_per_hour(self, max: u32) -> Self {
        self.max_posts(max, Duration::from_secs(3600))
    }

    /// At most `max` posts in any sliding `period`.
    pub fn max_posts(mut self, max: u32, period: Duration) -> Self {
        self.max_posts = max;
        self.per = period;
        self
    }

    /// The TLS settings for `https` URLs (default: the public web's certificate
    /// authorities from webpki-roots, TLS 1.2 and 1.3).
    pub fn tls_config(mut self, config: Arc<ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Checks the settings: an `http` or `https` URL with a host, a cap above zero.
    pub fn build(self) -> Result<WebhookSink, ConfigError> {
        let endpoint =
            Endpoint::parse(&self.url, self.tls).map_err(|reason| ConfigError::Invalid {
                setting: "webhook url",
                reason,
            })?;
        check_limit(
            "webhook max_posts",
            u64::from(self.max_posts),
            MAX_POSTS_LIMIT,
        )?;
        check_nonzero("webhook max_posts period", self.per)?;
        Ok(WebhookSink::new(HookSettings {
            endpoint,
            format: self.format,
            violations: self.violations,
            digests: self.digests,
            max_posts: self.max_posts,
            per: self.per,
        }))
    }
}
