//! How reports reach a sink: [`Dispatch`] for the layer, [`SinkOptions`] for each sink.

use std::time::Duration;

use crate::error::{ConfigError, check_limit, check_nonzero};

/// When sinks run relative to the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dispatch {
    /// Queue the reports and answer at once; workers deliver them (the default).
    #[default]
    Background,
    /// Deliver to every sink (with retries) before answering: for tests, and for serverless
    /// platforms that freeze the process once the response is sent.
    Inline,
}

/// How one sink is fed: its queue, its batches, its timeout and retries, and whether the
/// browser's answer depends on it.
///
/// A *required* sink (a store, by default: see [`SinkOptions::store`]) must take every report
/// the layer answers `204` for: when its queue is full, the request waits a moment for room
/// ([`admission_wait`](crate::CspReportLayerBuilder::admission_wait)) and is then answered
/// `503 Service Unavailable` with `Retry-After` instead, so nothing is answered as received and
/// then lost. A *best-effort* sink (logs, email: the default) drops what does not fit in its
/// queue and counts it.
///
/// Batches adapt to the load: a worker hands the sink what has come in, up to
/// [`batch_size`](Self::batch_size) reports, as soon as one of its
/// [`concurrency`](Self::concurrency) places is free and the first report has waited
/// [`linger`](Self::linger); while every place is busy, reports gather into bigger batches.
///
/// Every setting is checked when the layer is built
/// ([`CspReportLayerBuilder::build`](crate::CspReportLayerBuilder::build)).
///
/// ```
/// use std::time::Duration;
/// use tower_csp_reports::SinkOptions;
///
/// let options = SinkOptions::default()
///     .batch_size(500)
///     .linger(Duration::from_millis(50))
///     .timeout(Duration::from_secs(5))
///     .retries(3);
/// assert!(!options.is_required());
/// assert!(SinkOptions::store().is_required());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkOptions {
    pub(crate) queue_capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) concurrency: usize,
    pub(crate) linger: Duration,
    pub(crate) timeout: Duration,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) required: bool,
    pub(crate) feed: Feed,
}

/// What a sink is fed: the reports of requests, or the alerts a store decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Feed {
    /// The reports of requests (the default).
    #[default]
    Reports,
    /// [`Alert`](crate::alert::Alert)s: new and regressed violations and digests, as an
    /// [`AlertFeed`](crate::alert::AlertFeed) (or
    /// [`CspReportHandle::announce`](crate::CspReportHandle::announce)) hands them over,
    /// with the same queue, timeout, retries and counters as reports. Such a sink is never
    /// required: the answer to a browser does not wait for alerts.
    Alerts,
}

impl Default for SinkOptions {
    /// A best-effort sink: a queue of 10,000 reports, batches of up to 100, one at a time,
    /// 100 ms of linger, 10 s per call, 10 retries from 100 ms to 10 s apart.
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 100,
            concurrency: 1,
            linger: Duration::from_millis(100),
            timeout: Duration::from_secs(10),
            retries: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            required: false,
            feed: Feed::Reports,
        }
    }
}

impl SinkOptions {
    /// What a store's sink is fed with: required, batches of up to 1,000 reports, four at
    /// once, 20 ms of linger, 30 s per call, and transient failures retried for as long as
    /// it takes (100 ms to 5 s apart), since every report in its queue was answered `204`.
    pub fn store() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 1_000,
            concurrency: 4,
            linger: Duration::from_millis(20),
            timeout: Duration::from_secs(30),
            retries: u32::MAX,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            required: true,
            feed: Feed::Reports,
        }
    }

    /// Reports that may wait for the sink (default 10,000). A request whose reports do not fit
    /// is answered `503` for a required sink, and its reports dropped for a best-effort one.
    #[must_use]
    pub fn queue_capacity(mut self, reports: usize) -> Self {
        self.queue_capacity = reports;
        self
    }

    /// The most reports handed to the sink in one call (default 100).
    #[must_use]
    pub fn batch_size(mut self, reports: usize) -> Self {
        self.batch_size = reports;
        self
    }

    /// How many batches may be with the sink at once (default 1: one after the other, in the
    /// order the reports came).
    ///
    /// A sink that waits on a server, such as a database, keeps up with more reports when
    /// the next batch is on its way while the server stores the last one; batches may then
    /// finish out of order. Keep it at most the number of connections the sink can use.
    #[must_use]
    pub fn concurrency(mut self, batches: usize) -> Self {
        self.concurrency = batches;
        self
    }

    /// How long the first report of a batch may wait for others (default 100 ms). A full
    /// batch goes at once.
    #[must_use]
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// How long one call to the sink may take before it counts as a transient failure
    /// (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a batch is tried again after a transient failure (default 10;
    /// `u32::MAX`: for as long as the process runs).
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The first wait before a retry, about doubled each time up to `max`, with some jitter
    /// so that many workers do not retry in step (default 100 ms to 10 s).
    #[must_use]
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }

    /// Whether the answer to the browser depends on this sink taking the reports (default
    /// `false`; `true` for [`store`](Self::store)). See the type's documentation.
    #[must_use]
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }

    /// Whether the sink is required.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// What the sink is fed (default [`Feed::Reports`]). An alert sink
    /// ([`Feed::Alerts`]) is never required, whatever [`required`](Self::required) says.
    #[must_use]
    pub fn feed(mut self, feed: Feed) -> Self {
        self.feed = feed;
        self
    }

    /// What the sink is fed.
    pub fn fed(&self) -> Feed {
        self.feed
    }

    /// Whether the sink is required for the reports of a request.
    pub(crate) fn requires_reports(&self) -> bool {
        self.required && self.feed == Feed::Reports
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check_limit("queue_capacity", self.queue_capacity as u64, 100_000_000)?;
        check_limit("batch_size", self.batch_size as u64, 1_000_000)?;
        check_limit("concurrency", self.concurrency as u64, 1_000)?;
        check_nonzero("timeout", self.timeout)?;
        check_nonzero("backoff", self.backoff)?;
        if self.backoff > self.max_backoff {
            return Err(ConfigError::Invalid {
                setting: "backoff",
                reason: format!(
                    "the first wait ({:?}) is longer than the longest ({:?})",
                    self.backoff, self.max_backoff
                ),
            });
        }
        Ok(())
    }
}
