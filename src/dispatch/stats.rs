//! What became of each sink's reports: its counters and their snapshot, [`SinkStats`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// A snapshot of one sink's counters.
///
/// For each sink, every report the layer accepted is delivered, dropped, failed or still
/// queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// Whether the sink is required (see [`SinkOptions::required`](crate::SinkOptions::required)).
    pub required: bool,
    /// Reports the sink accepted.
    pub delivered: u64,
    /// Reports dropped because the sink's queue was full or the layer was shut down (never for
    /// a required sink: the request is answered `503` instead).
    pub dropped: u64,
    /// Reports lost after the sink failed for good (permanent error or retries exhausted).
    pub failed: u64,
    /// Failed calls, retried or not.
    pub errors: u64,
    /// Reports waiting in the queue now.
    pub queued: usize,
}

/// The counters of one sink, written by the dispatcher and its worker.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
    /// Dropped since the last warning, and since the sink last heard of drops.
    unwarned: AtomicU64,
    untold: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl SinkCounters {
    pub(crate) fn delivered(&self, reports: usize) {
        self.delivered.fetch_add(reports as u64, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, reports: usize) {
        self.failed.fetch_add(reports as u64, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts dropped reports; warns at most once per ten seconds per sink.
    pub(crate) fn dropped(&self, sink: &str, capacity: usize, reports: usize) {
        let n = reports as u64;
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.untold.fetch_add(n, Ordering::Relaxed);
        self.unwarned.fetch_add(n, Ordering::Relaxed);
        let mut last = self
            .last_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(10)) {
            return;
        }
        *last = Some(now);
        let dropped = self.unwarned.swap(0, Ordering::Relaxed);
        tracing::warn!(
            target: "tower_csp_reports",
            sink,
            dropped,
            capacity,
            "CSP report queue full: reports dropped for this sink"
        );
    }

    /// The reports dropped since the last call, for the sink's next batch.
    pub(crate) fn take_untold(&self) -> u64 {
        self.untold.swap(0, Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self, name: &str, required: bool, queued: usize) -> SinkStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        SinkStats {
            name: name.to_owned(),
            required,
            delivered: get(&self.delivered),
            dropped: get(&self.dropped),
            failed: get(&self.failed),
            errors: get(&self.errors),
            queued,
        }
    }
}
