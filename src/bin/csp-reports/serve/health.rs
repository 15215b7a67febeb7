//! Readiness: whether the store answers, asked at most once a second however often a load
//! balancer (or anyone) asks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tower_csp_reports::store::ReportStore;

/// How long an answer of the store is trusted.
const FRESH: Duration = Duration::from_secs(1);
/// How long the store has to answer a ping; past it, it counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Readiness {
    /// `None`: nothing to check (`--no-store`).
    store: Option<Arc<dyn ReportStore>>,
    /// The last answer and when it came. Behind an async lock held across the ping, so that
    /// probes arriving together wait for one ping rather than each sending its own.
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    pub(super) fn new(store: Option<Arc<dyn ReportStore>>) -> Self {
        Self {
            store,
            last: Mutex::new(None),
        }
    }

    /// Whether the store answered a ping within the last second or so.
    pub(super) async fn ready(&self) -> bool {
        let Some(store) = &self.store else {
            return true;
        };
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last
            && at.elapsed() < FRESH
        {
            return ready;
        }
        let ready = match tokio::time::timeout(PING_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!(target: "csp_reports", error = %tower_csp_reports::error::chain(&error), "readiness: the store did not answer");
                false
            }
            Err(_) => {
                tracing::debug!(target: "csp_reports", timeout = ?PING_TIMEOUT, "readiness: the store did not answer in time");
                false
            }
        };
        *last = Some((Instant::now(), ready));
        ready
    }
}
