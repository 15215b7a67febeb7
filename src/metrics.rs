//! What the layer tells the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`):
//! every counter of [`Stats`](crate::Stats) and [`SinkStats`](crate::dispatch::SinkStats),
//! each sink's queue depth, and two latency histograms, so the application's own exporter
//! (Prometheus, StatsD, OpenTelemetry, ...) picks them up.
//!
//! The layer registers its metrics when it is [built](crate::CspReportLayerBuilder::build):
//! install the recorder first. Per-sink metrics carry a `sink` label, the sink's
//! [`name`](crate::ReportSink::name).
//!
//! ```
//! use metrics_exporter_prometheus::PrometheusBuilder;
//! use tower::ServiceExt;
//! use tower_csp_reports::CspReportLayer;
//! use tower_csp_reports::metrics::{ACCEPTED, REQUEST_DURATION, SINK_QUEUED};
//! use tower_csp_reports::sink::MemorySink;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let recorder = PrometheusBuilder::new().build_recorder();
//! let prometheus = recorder.handle();
//! // An application installs its recorder globally; here, for this block only.
//! let layer = metrics::with_local_recorder(&recorder, || {
//!     CspReportLayer::builder().sink(MemorySink::new()).build()
//! })?;
//! let app = tower::layer::Layer::layer(&layer, tower::service_fn(|_| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! }));
//! let report = r#"{"csp-report":{"document-uri":"https://example.com/",
//!     "violated-directive":"img-src","blocked-uri":"https://evil.example/x.png"}}"#;
//! let request = http::Request::post("/csp-report")
//!     .header("content-type", "application/csp-report")
//!     .body(report.to_owned())?;
//! assert_eq!(app.oneshot(request).await?.status(), 204);
//!
//! let text = prometheus.render();
//! assert!(text.contains(&format!("{ACCEPTED} 1")), "{text}");
//! assert!(text.contains(&format!("{REQUEST_DURATION}_count 1")), "{text}");
//! assert!(text.contains(&format!("{SINK_QUEUED}{{sink=\"memory\"}}")), "{text}");
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Counter: requests to a report path.
pub const REQUESTS: &str = "csp_reports_requests_total";
/// Counter: report requests answered with a `4xx`.
pub const REJECTED: &str = "csp_reports_rejected_total";
/// Counter: reports parsed, valid or not.
pub const RECEIVED: &str = "csp_reports_received_total";
/// Counter: invalid reports received.
pub const INVALID: &str = "csp_reports_invalid_total";
/// Counter: reports dropped by the filter.
pub const FILTERED: &str = "csp_reports_filtered_total";
/// Counter: reports left out by sampling.
pub const SAMPLED: &str = "csp_reports_sampled_total";
/// Counter: reports handed to the sinks.
pub const ACCEPTED: &str = "csp_reports_accepted_total";
/// Counter: reports beyond the per-request limit.
pub const TRUNCATED: &str = "csp_reports_truncated_total";
/// Counter: requests refused by the rate limit.
pub const RATE_LIMITED: &str = "csp_reports_rate_limited_total";
/// Counter: requests refused with `503` before their body was read (memory budget).
pub const BUSY: &str = "csp_reports_busy_total";
/// Counter: reports refused with `503` because a required sink had no room.
pub const REJECTED_OVERLOAD: &str = "csp_reports_rejected_overload_total";
/// Histogram, in seconds: from a request to a report path to its answer.
pub const REQUEST_DURATION: &str = "csp_reports_request_duration_seconds";

/// Counter, per sink: reports the sink accepted.
pub const SINK_DELIVERED: &str = "csp_reports_sink_delivered_total";
/// Counter, per sink: reports dropped because the sink's queue was full.
pub const SINK_DROPPED: &str = "csp_reports_sink_dropped_total";
/// Counter, per sink: reports the sink failed for good.
pub const SINK_FAILED: &str = "csp_reports_sink_failed_total";
/// Counter, per sink: failed calls to the sink, retried or not.
pub const SINK_ERRORS: &str = "csp_reports_sink_errors_total";
/// Gauge, per sink: reports waiting in the sink's queue.
pub const SINK_QUEUED: &str = "csp_reports_sink_queued";
/// Histogram, per sink, in seconds: one call to the sink (one batch), failed or not.
pub const SINK_DELIVERY_DURATION: &str = "csp_reports_sink_delivery_duration_seconds";

/// Counter: emails the mail server accepted (the SMTP sink).
pub const SMTP_EMAILS_SENT: &str = "csp_reports_smtp_emails_sent_total";
/// Counter: reports in those emails.
pub const SMTP_REPORTS_MAILED: &str = "csp_reports_smtp_reports_mailed_total";
/// Counter: emails held back by the cap per hour.
pub const SMTP_EMAILS_CAPPED: &str = "csp_reports_smtp_emails_capped_total";
/// Counter: reports in the emails held back by the cap.
pub const SMTP_REPORTS_CAPPED: &str = "csp_reports_smtp_reports_capped_total";

/// A metric's name and its help text.
pub(crate) type Described = (&'static str, &'static str);

/// A counter read by the crate's own stats and, with the feature, told to the facade.
#[derive(Debug)]
pub(crate) struct Count {
    value: AtomicU64,
    #[cfg(feature = "metrics")]
    exported: ::metrics::Counter,
}

impl Count {
    /// A counter, registered with the recorder installed now; `sink` labels a sink's.
    pub(crate) fn new((name, help): Described, sink: Option<&str>) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = (name, help, sink);
        Self {
            value: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            exported: {
                ::metrics::describe_counter!(name, help);
                match sink {
                    Some(sink) => ::metrics::counter!(name, "sink" => sink.to_owned()),
                    None => ::metrics::counter!(name),
                }
            },
        }
    }

    pub(crate) fn add(&self, n: usize) {
        // Most counts of a request are zero: skip the atomic operations for them.
        if n > 0 {
            self.value.fetch_add(n as u64, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            self.exported.increment(n as u64);
        }
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// A level that goes up and down (a queue's depth), told to the facade as a gauge.
#[derive(Debug)]
pub(crate) struct Level {
    value: AtomicUsize,
    #[cfg(feature = "metrics")]
    exported: ::metrics::Gauge,
}

impl Level {
    pub(crate) fn new((name, help): Described, sink: &str) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = (name, help, sink);
        Self {
            value: AtomicUsize::new(0),
            #[cfg(feature = "metrics")]
            exported: {
                ::metrics::describe_gauge!(name, help);
                ::metrics::gauge!(name, "sink" => sink.to_owned())
            },
        }
    }

    /// Adds `n`; returns the level before.
    pub(crate) fn add(&self, n: usize) -> usize {
        let before = self.value.fetch_add(n, Ordering::AcqRel);
        #[cfg(feature = "metrics")]
        self.exported.increment(n as f64);
        before
    }

    pub(crate) fn sub(&self, n: usize) {
        self.value.fetch_sub(n, Ordering::AcqRel);
        #[cfg(feature = "metrics")]
        self.exported.decrement(n as f64);
    }

    pub(crate) fn get(&self) -> usize {
        self.value.load(Ordering::Relaxed)
    }
}

/// A latency histogram; without the feature it keeps nothing and reads no clock.
#[derive(Debug)]
pub(crate) struct Latency {
    #[cfg(feature = "metrics")]
    exported: ::metrics::Histogram,
}

/// When something began, for a [`Latency`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started {
    #[cfg(feature = "metrics")]
    at: std::time::Instant,
}

impl Started {
    pub(crate) fn now() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            at: std::time::Instant::now(),
        }
    }
}

impl Latency {
    pub(crate) fn new((name, help): Described, sink: Option<&str>) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = (name, help, sink);
        Self {
            #[cfg(feature = "metrics")]
            exported: {
                ::metrics::describe_histogram!(name, ::metrics::Unit::Seconds, help);
                match sink {
                    Some(sink) => ::metrics::histogram!(name, "sink" => sink.to_owned()),
                    None => ::metrics::histogram!(name),
                }
            },
        }
    }

    /// Records the time since `started`.
    pub(crate) fn record(&self, started: Started) {
        #[cfg(feature = "metrics")]
        self.exported.record(started.at.elapsed());
        #[cfg(not(feature = "metrics"))]
        let _ = started;
    }
}
