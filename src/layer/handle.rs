//! [`CspReportHandle`]: counters and graceful shutdown.

use std::sync::Arc;

use serde::Serialize;

use super::core::Core;
use crate::dispatch::SinkStats;

/// A snapshot of the layer's counters.
///
/// Every report received is filtered, sampled out, refused for overload or accepted; every
/// accepted report is, for each sink, delivered, dropped, failed or still queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests to a report path, whatever their method.
    pub requests: u64,
    /// Requests answered with a `4xx` (bad body, wrong type, too large, too slow).
    pub rejected: u64,
    /// Requests answered `503` before their body was read, because the bodies being read at
    /// that moment already took the layer's memory budget
    /// ([`max_bytes_in_flight`](crate::CspReportLayerBuilder::max_bytes_in_flight)).
    pub busy: u64,
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
    /// Reports whose request was answered `503` because a required sink had no room for them
    /// in time (or the layer was shut down); no sink has them, and the browser may send them
    /// again.
    pub rejected_overload: u64,
    /// Per sink.
    pub sinks: Vec<SinkStats>,
}

/// A handle on a built [`CspReportLayer`](crate::CspReportLayer)'s counters and sinks; cheap
/// to clone. Every handle of a layer, and of its clones, sees the same counters.
///
/// ```
/// use tower_csp_reports::CspReportLayer;
/// use tower_csp_reports::sink::MemorySink;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let layer = CspReportLayer::builder().sink(MemorySink::new()).build().unwrap();
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
    core: Arc<Core>,
}

impl CspReportHandle {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        Self { core }
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let c = self.core.counters().values();
        Stats {
            requests: c.requests,
            rejected: c.rejected,
            busy: c.busy,
            received: c.received,
            invalid: c.invalid,
            filtered: c.filtered,
            accepted: c.accepted,
            truncated: c.truncated,
            rate_limited: c.rate_limited,
            sampled: c.sampled,
            rejected_overload: c.rejected_overload,
            sinks: self.core.dispatcher().stats(),
        }
    }

    /// Waits until every report accepted so far was handed to its sinks (or given up on).
    pub async fn flush(&self) {
        self.core.dispatcher().flush().await;
    }

    /// Hands alerts to every sink fed alerts
    /// ([`Feed::Alerts`](crate::dispatch::Feed::Alerts)), through its queue, timeout and
    /// retries like reports; what does not fit in a queue is dropped and counted. An
    /// [`AlertFeed`](crate::alert::AlertFeed) calls it with what the store decided.
    pub async fn announce(&self, alerts: Vec<crate::alert::Alert>) {
        self.core.dispatcher().announce(alerts).await;
    }

    /// Stops taking reports (later ones are answered `503` when a sink is required, and
    /// counted as dropped otherwise), delivers every queued one, and calls each sink's
    /// [`shutdown`](crate::ReportSink::shutdown). Call it after the server stopped accepting
    /// connections; wrap it in a timeout to bound the wait.
    pub async fn shutdown(&self) {
        self.core.dispatcher().shutdown().await;
    }
}
