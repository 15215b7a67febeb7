//! What became of each sink's reports: its counters and their snapshot, [`SinkStats`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::metrics::{self as m, Count, Latency, Started};

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

/// The counters of one sink, written by the dispatcher and its worker, and told to the
/// `metrics` facade with the feature of that name.
#[derive(Debug)]
pub(crate) struct SinkCounters {
    delivered: Count,
    dropped: Count,
    failed: Count,
    errors: Count,
    delivery_duration: Latency,
    /// Dropped since the last warning, and since the sink last heard of drops.
    unwarned: AtomicU64,
    untold: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl SinkCounters {
    /// The counters of the sink named `sink`, registered with the recorder installed now.
    pub(crate) fn new(sink: &str) -> Self {
        let count = |name, help| Count::new((name, help), Some(sink));
        Self {
            delivered: count(m::SINK_DELIVERED, "Reports each sink accepted."),
            dropped: count(
                m::SINK_DROPPED,
                "Reports dropped because a sink's queue was full.",
            ),
            failed: count(m::SINK_FAILED, "Reports a sink failed for good."),
            errors: count(m::SINK_ERRORS, "Failed calls to each sink."),
            delivery_duration: Latency::new(
                (
                    m::SINK_DELIVERY_DURATION,
                    "Seconds one call to a sink took (one batch), failed or not.",
                ),
                Some(sink),
            ),
            unwarned: AtomicU64::new(0),
            untold: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    pub(crate) fn delivered(&self, reports: usize) {
        self.delivered.add(reports);
    }

    pub(crate) fn failed(&self, reports: usize) {
        self.failed.add(reports);
    }

    pub(crate) fn error(&self) {
        self.errors.add(1);
    }

    /// One call to the sink ended.
    pub(crate) fn called(&self, started: Started) {
        self.delivery_duration.record(started);
    }

    /// Counts dropped reports; warns at most once per ten seconds per sink.
    pub(crate) fn dropped(&self, sink: &str, capacity: usize, reports: usize) {
        let n = reports as u64;
        self.dropped.add(reports);
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
        SinkStats {
            name: name.to_owned(),
            required,
            delivered: self.delivered.get(),
            dropped: self.dropped.get(),
            failed: self.failed.get(),
            errors: self.errors.get(),
            queued,
        }
    }
}
