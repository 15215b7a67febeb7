//! The feed: a store's violation events and digest claims, announced to the layer's alert
//! sinks.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use super::kind::is_ignored;
use super::{Alert, told_reports};
use crate::CspReportHandle;
use crate::error::{ConfigError, check_limit, check_nonzero};
use crate::store::{ReportStore, SummaryOptions, TimeRange, ViolationEvent};

/// The longest digest window: a week.
const MAX_WINDOW_SECS: u64 = 7 * 24 * 3600;

/// Announces what a store decides to the layer's alert sinks
/// ([`Feed::Alerts`](crate::dispatch::Feed::Alerts)): each new or regressed violation its
/// writes report, and a digest per window for which this process wins the store's claim.
///
/// Built from the store handle whose [`sink`](ReportStore::sink) the layer writes through
/// (it subscribes to that handle's events when built, so build it before serving), then
/// [started](Self::start) with the layer's handle. Violations marked ignored are never
/// announced, and a digest whose reports all belong to ignored violations is not sent.
#[derive(Debug)]
pub struct AlertFeed {
    store: Arc<dyn ReportStore>,
    events: Option<broadcast::Receiver<ViolationEvent>>,
    digest: Option<DigestSchedule>,
}

/// When digests are taken.
#[derive(Debug, Clone, Copy)]
struct DigestSchedule {
    window: Duration,
    delay: Duration,
    top: usize,
}

/// Configures an [`AlertFeed`]: [`AlertFeed::builder`].
#[derive(Debug)]
#[must_use]
pub struct AlertFeedBuilder {
    store: Arc<dyn ReportStore>,
    violations: bool,
    window: Option<Duration>,
    delay: Duration,
    top: usize,
}

impl AlertFeed {
    /// Starts configuring a feed from `store`: violation events on, digests off.
    pub fn builder(store: Arc<dyn ReportStore>) -> AlertFeedBuilder {
        AlertFeedBuilder {
            store,
            violations: true,
            window: None,
            delay: Duration::from_secs(5),
            top: 10,
        }
    }

    /// Runs the feed in a task of its own until [`AlertTask::stop`], announcing to the
    /// layer behind `handle`. Call it inside the Tokio runtime that serves the layer.
    pub fn start(self, handle: CspReportHandle) -> AlertTask {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(self.run(handle, stopped));
        AlertTask { stop, task }
    }

    async fn run(mut self, handle: CspReportHandle, mut stopped: oneshot::Receiver<()>) {
        let mut next = self
            .digest
            .map(|schedule| first_window(schedule, Timestamp::now()));
        loop {
            let due = async {
                match (self.digest, next) {
                    (Some(schedule), Some(range)) => {
                        sleep_until(range.to(), schedule.delay).await;
                    }
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stopped => break,
                event = recv(&mut self.events) => match event {
                    Ok(event) => {
                        let mut alerts = Vec::new();
                        push_event(&mut alerts, event);
                        // What committed meanwhile goes out together.
                        while let Some(Ok(event)) = self.events.as_mut().map(broadcast::Receiver::try_recv) {
                            push_event(&mut alerts, event);
                        }
                        handle.announce(alerts).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(target: "tower_csp_reports", missed, "violation alerts fell behind: some were not announced");
                    }
                    Err(broadcast::error::RecvError::Closed) => self.events = None,
                },
                () = due => {
                    if let (Some(schedule), Some(range)) = (self.digest, next) {
                        self.digest_of(&handle, schedule, range).await;
                        next = Some(following(range, schedule.window));
                    }
                }
            }
        }
        // The events of writes that committed before the stop still go out.
        let mut alerts = Vec::new();
        while let Some(Ok(event)) = self.events.as_mut().map(broadcast::Receiver::try_recv) {
            push_event(&mut alerts, event);
        }
        handle.announce(alerts).await;
    }

    async fn digest_of(
        &self,
        handle: &CspReportHandle,
        schedule: DigestSchedule,
        range: TimeRange,
    ) {
        let options = SummaryOptions::new().top(schedule.top);
        match self.store.claim_digest(range, &options).await {
            Ok(Some(summary)) if told_reports(&summary) > 0 => {
                handle.announce(vec![Alert::Digest(summary)]).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(target: "tower_csp_reports", %error, since = %range.since(), "cannot take the digest of a window");
            }
        }
    }
}

impl AlertFeedBuilder {
    /// Whether new and regressed violations are announced (default `true`).
    pub fn violations(mut self, announce: bool) -> Self {
        self.violations = announce;
        self
    }

    /// Takes a digest of every `window` (whole seconds, 1 s to a week), windows aligned on
    /// the Unix epoch so that every collector cuts the same ones; one collector per window
    /// wins the store's claim ([`ReportStore::claim_digest`]) and announces it. Default: no
    /// digests.
    pub fn digest_window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// How long after a window ends its digest is taken (default 5 s), so that the reports
    /// other collectors received before its end have reached the store. Reports stored
    /// later still count in the store, but in no digest.
    pub fn digest_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// How many violations, sources and blocked values a digest lists (default 10).
    pub fn digest_top(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// Checks the settings and subscribes to the store's events.
    pub fn build(self) -> Result<AlertFeed, ConfigError> {
        let digest = match self.window {
            Some(window) => {
                check_nonzero("digest_window", window)?;
                check_limit("digest_window", window.as_secs(), MAX_WINDOW_SECS)?;
                if window.subsec_nanos() != 0 {
                    return Err(ConfigError::Invalid {
                        setting: "digest_window",
                        reason: format!("must be whole seconds, not {window:?}"),
                    });
                }
                check_limit("digest_delay", self.delay.as_secs().max(1), MAX_WINDOW_SECS)?;
                check_limit("digest_top", self.top as u64, 1_000)?;
                Some(DigestSchedule {
                    window,
                    delay: self.delay,
                    top: self.top,
                })
            }
            None => None,
        };
        let events = self.violations.then(|| self.store.subscribe());
        Ok(AlertFeed {
            store: self.store,
            events,
            digest,
        })
    }
}

/// A running [`AlertFeed`].
#[derive(Debug)]
pub struct AlertTask {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl AlertTask {
    /// Announces the events of writes committed so far, then stops. Call it after the
    /// layer's [`flush`](CspReportHandle::flush) and before its
    /// [`shutdown`](CspReportHandle::shutdown), so that the last reports' alerts go out.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        // A join error means the runtime is going away.
        let _ = self.task.await;
    }
}

fn push_event(alerts: &mut Vec<Alert>, event: ViolationEvent) {
    if !is_ignored(&event) {
        alerts.push(Alert::Violation(event));
    }
}

async fn recv(
    events: &mut Option<broadcast::Receiver<ViolationEvent>>,
) -> Result<ViolationEvent, broadcast::error::RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

/// The window that holds `now`.
fn first_window(schedule: DigestSchedule, now: Timestamp) -> TimeRange {
    let secs = schedule.window.as_secs() as i64;
    let start = now.as_second() - now.as_second().rem_euclid(secs);
    let since = Timestamp::from_second(start).unwrap_or(now);
    TimeRange::new(since, add(since, schedule.window))
}

fn following(range: TimeRange, window: Duration) -> TimeRange {
    TimeRange::new(range.to(), add(range.to(), window))
}

fn add(at: Timestamp, duration: Duration) -> Timestamp {
    let duration = SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
    at.saturating_add(duration).unwrap_or(Timestamp::MAX)
}

async fn sleep_until(at: Timestamp, delay: Duration) {
    let wait = add(at, delay).duration_since(Timestamp::now());
    if let Ok(wait) = Duration::try_from(wait) {
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_on_the_epoch() {
        let schedule = DigestSchedule {
            window: Duration::from_secs(300),
            delay: Duration::ZERO,
            top: 10,
        };
        let cases = [
            (
                "2026-12-01T10:07:30Z",
                "2026-12-01T10:05:00Z",
                "2026-12-01T10:10:00Z",
            ),
            (
                "2026-12-01T10:05:00Z",
                "2026-12-01T10:05:00Z",
                "2026-12-01T10:10:00Z",
            ),
            (
                "2026-12-01T10:09:59.999Z",
                "2026-12-01T10:05:00Z",
                "2026-12-01T10:10:00Z",
            ),
        ];
        for (now, since, to) in cases {
            let range = first_window(schedule, now.parse().unwrap());
            assert_eq!(range.since(), since.parse::<Timestamp>().unwrap(), "{now}");
            assert_eq!(range.to(), to.parse::<Timestamp>().unwrap(), "{now}");
            let next = following(range, schedule.window);
            assert_eq!(next.since(), range.to());
        }
    }
}
