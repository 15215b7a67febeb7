//! The sink: one post per batch of alerts, under the cap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::body::{Missed, render};
use super::builder::{HookSettings, WebhookSinkBuilder};
use super::{WebhookError, WebhookFormat};
use crate::SinkOptions;
use crate::alert::Alert;
use crate::dispatch::Feed;
use crate::sink::limit::{SendLimit, Untold};
use crate::sink::{ReportBatch, ReportSink, SinkError};

/// Posts the alerts a store decided (new and regressed violations, digests) to a webhook as
/// JSON, in a [generic](WebhookFormat::Generic) shape or [Slack's](WebhookFormat::Slack).
///
/// Fed alerts by an [`AlertFeed`](crate::alert::AlertFeed) through the layer's dispatcher
/// ([`default_options`](ReportSink::default_options): [`Feed::Alerts`]), which gathers the
/// alerts of a second into one post, gives each post 10 s, and retries transient failures
/// (no answer, `5xx`, `408`, `429`) with backoff for about a quarter of an hour; other
/// answers fail for good. At most 20 posts go out an hour (see
/// [`max_per_hour`](WebhookSinkBuilder::max_per_hour)). Clones share the cap and counters.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    inner: Arc<Hook>,
}

#[derive(Debug)]
struct Hook {
    settings: HookSettings,
    state: Mutex<HookState>,
    posts_sent: AtomicU64,
    alerts_sent: AtomicU64,
}

#[derive(Debug)]
struct HookState {
    limit: SendLimit,
    untold: Untold,
}

/// What reached the webhook. Failures are the dispatcher's to count
/// ([`SinkStats`](crate::dispatch::SinkStats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookStats {
    /// Posts the webhook answered with a `2xx`.
    pub posts_sent: u64,
    /// Alerts in them.
    pub alerts_sent: u64,
    /// Posts the cap held back, not yet told of in a later post.
    pub posts_capped: u64,
}

impl WebhookSink {
    /// Starts configuring a sink that posts to `url` (`https://...`, or `http://` on a
    /// private network). The URL is checked by [`build`](WebhookSinkBuilder::build), and
    /// never shown in errors or logs beyond its scheme and host.
    pub fn builder(url: impl Into<String>) -> WebhookSinkBuilder {
        WebhookSinkBuilder::new(url.into())
    }

    pub(super) fn new(settings: HookSettings) -> Self {
        let state = HookState {
            limit: SendLimit::new(settings.max_posts, settings.per),
            untold: Untold::default(),
        };
        Self {
            inner: Arc::new(Hook {
                settings,
                state: Mutex::new(state),
                posts_sent: AtomicU64::new(0),
                alerts_sent: AtomicU64::new(0),
            }),
        }
    }

    /// What the posts so far carried.
    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            posts_sent: self.inner.posts_sent.load(Ordering::Relaxed),
            alerts_sent: self.inner.alerts_sent.load(Ordering::Relaxed),
            posts_capped: self.inner.state().untold.capped_mails,
        }
    }

    /// The body's shape.
    pub fn format(&self) -> WebhookFormat {
        self.inner.settings.format
    }
}

impl Hook {
    fn state(&self) -> MutexGuard<'_, HookState> {
        // Every update leaves the state whole, so a panic elsewhere cannot corrupt it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wants(&self, alert: &Alert) -> bool {
        match alert {
            Alert::Violation(_) => self.settings.violations,
            Alert::Digest(_) => self.settings.digests,
        }
    }
}

#[async_trait]
impl ReportSink for WebhookSink {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn send(&self, batch: &ReportBatch) -> Result<(), SinkError> {
        let hook = &self.inner;
        let alerts: Vec<&Alert> = batch.alerts().filter(|alert| hook.wants(alert)).collect();
        let n = alerts.len() as u64;
        let (told, body) = {
            let mut state = hook.state();
            state.untold.dropped_reports += batch.dropped();
            if alerts.is_empty() {
                return Ok(());
            }
            if !state.limit.try_take(Instant::now()) {
                state.untold.capped_mails += 1;
                state.untold.capped_reports += n;
                return Ok(());
            }
            let told = state.untold;
            let missed = Missed {
                posts: told.capped_mails,
                alerts: told.capped_reports + told.dropped_reports,
            };
            (told, render(hook.settings.format, &alerts, missed))
        };
        let failed = |error: WebhookError| {
            // The post did not go through: its place under the cap is free again.
            hook.state().limit.give_back();
            if error.is_permanent() {
                SinkError::permanent(error)
            } else {
                SinkError::transient(error)
            }
        };
        let endpoint = &hook.settings.endpoint;
        let status = endpoint.post(body).await.map_err(failed)?;
        if !status.is_success() {
            return Err(failed(WebhookError::status(&endpoint.name, status)));
        }
        hook.state().untold.forget(&told);
        hook.posts_sent.fetch_add(1, Ordering::Relaxed);
        hook.alerts_sent.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Fed alerts, a second's worth per post; 10 s per post; transient failures retried
    /// 20 times, 1 s to 60 s apart.
    fn default_options(&self) -> SinkOptions {
        SinkOptions::default()
            .feed(Feed::Alerts)
            .queue_capacity(10_000)
            .batch_size(100)
            .linger(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .retries(20)
            .backoff(Duration::from_secs(1), Duration::from_secs(60))
    }
}
