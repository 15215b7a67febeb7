//! The counters in the Prometheus text format.

use std::fmt::Write;

use tower_csp_reports::Stats;
use tower_csp_reports::dispatch::SinkStats;

/// Reads one counter of a sink.
type SinkCounter = fn(&SinkStats) -> u64;

/// Renders the layer's counters for a Prometheus scrape.
pub(crate) fn render(stats: &Stats) -> String {
    let mut out = String::new();
    let counters = [
        ("requests", "requests to a report path", stats.requests),
        (
            "rejected",
            "report requests answered with a 4xx",
            stats.rejected,
        ),
        ("received", "reports parsed, valid or not", stats.received),
        ("invalid", "invalid reports received", stats.invalid),
        ("filtered", "reports dropped by the filter", stats.filtered),
        ("sampled", "reports left out by sampling", stats.sampled),
        ("accepted", "reports handed to the sinks", stats.accepted),
        (
            "truncated",
            "reports beyond the per-request limit",
            stats.truncated,
        ),
        (
            "rate_limited",
            "requests refused by the rate limit",
            stats.rate_limited,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP csp_reports_{name}_total The number of {help}.");
        let _ = writeln!(out, "# TYPE csp_reports_{name}_total counter");
        let _ = writeln!(out, "csp_reports_{name}_total {value}");
    }
    let per_sink: [(&str, SinkCounter); 4] = [
        ("delivered", |s| s.delivered),
        ("dropped", |s| s.dropped),
        ("failed", |s| s.failed),
        ("errors", |s| s.errors),
    ];
    for (name, get) in per_sink {
        let _ = writeln!(
            out,
            "# HELP csp_reports_sink_{name}_total Reports {name} per sink (errors: failed calls)."
        );
        let _ = writeln!(out, "# TYPE csp_reports_sink_{name}_total counter");
        for sink in &stats.sinks {
            let _ = writeln!(
                out,
                "csp_reports_sink_{name}_total{{sink=\"{}\"}} {}",
                escape(&sink.name),
                get(sink)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP csp_reports_sink_queued Reports waiting in each sink's queue."
    );
    let _ = writeln!(out, "# TYPE csp_reports_sink_queued gauge");
    for sink in &stats.sinks {
        let _ = writeln!(
            out,
            "csp_reports_sink_queued{{sink=\"{}\"}} {}",
            escape(&sink.name),
            sink.queued
        );
    }
    out
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
