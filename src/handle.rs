//! [`CspReportHandle`]: counters and graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::dispatch::SinkStats;
use crate::layer::Shared;

/// Counters of the layer, updated as requests come.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) truncated: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) sampled: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        // Most counts of a request are zero: skip the atomic operation for them.
        if n > 0 {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// A snapshot of the layer's counters.
///
/// Every report received is filtered, sampled out or accepted; every accepted report is,
/// for each sink, delivered, dropped, failed or still queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests to a report path, whatever their method.
    pub requests: u64,
    /// Requests answered with a `4xx` (bad body, wrong type, too large, too slow).
    pub rejected: u64,
    /// Reports parsed, valid or not.
    pub received: u64,
    /// Of those, the invalid ones.
    pub invalid: u64,
    /// Reports the filter dropped.
    pub filtered: u64,
    /// Reports handed to the sinks.
    pub accepted: u64,
    /// Reports beyond the per-request limit, dropped unparsed.
    pub truncated: u64,
    /// Requests refused with `429` by the rate limit (their reports were not read).
    pub rate_limited: u64,
    /// Reports left out by sampling.
    pub sampled: u64,
    /// Per sink.
    pub sinks: Vec<SinkStats>,
}

/// A handle on a [`CspReportLayer`](crate::CspReportLayer)'s counters and sinks; cheap to
/// clone.
///
/// ```
/// use tower_csp_reports::CspReportLayer;
/// use tower_csp_reports::sink::MemorySink;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let layer = CspReportLayer::new().sink(MemorySink::new());
/// let handle = layer.handle();
/// // ... serve with the layer, then on the way out:
/// handle.shutdown().await;
/// let stats = handle.stats();
/// assert_eq!(stats.sinks[0].name, "memory");
/// assert_eq!(stats.sinks[0].queued, 0);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CspReportHandle {
    shared: Arc<Shared>,
}

impl CspReportHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            requests: get(&c.requests),
            rejected: get(&c.rejected),
            received: get(&c.received),
            invalid: get(&c.invalid),
            filtered: get(&c.filtered),
            accepted: get(&c.accepted),
            truncated: get(&c.truncated),
            rate_limited: get(&c.rate_limited),
            sampled: get(&c.sampled),
            sinks: self.shared.dispatcher().stats(),
        }
    }

    /// Waits until every report accepted so far was handed to its sinks (or given up on).
    pub async fn flush(&self) {
        self.shared.dispatcher().flush().await;
    }

    /// Stops taking reports (later ones are counted as dropped), delivers every queued one,
    /// and calls each sink's [`shutdown`](crate::ReportSink::shutdown). Call it after the
    /// server stopped accepting connections; wrap it in a timeout to bound the wait.
    pub async fn shutdown(&self) {
        self.shared.dispatcher().shutdown().await;
    }
}
