//! The counters in the Prometheus text format.

use std::fmt::Write;

use tower_csp_reports::Stats;
use tower_csp_reports::dispatch::SinkStats;
use tower_csp_reports::sink::smtp::SmtpStats;

/// Reads one counter of a sink.
type SinkCounter = fn(&SinkStats) -> u64;

/// Renders the layer's counters, and the mail sink's when there is one, for a Prometheus
/// scrape.
pub(crate) fn render(stats: &Stats, mail: Option<SmtpStats>) -> String {
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
        (
            "busy",
            "requests refused with 503 before their body was read (memory budget)",
            stats.busy,
        ),
        (
            "rejected_overload",
            "reports refused with 503 because a required sink had no room",
            stats.rejected_overload,
        ),
    ];
    write_counters(&mut out, "csp_reports", &counters);
    let per_sink: [(&str, &str, &str, SinkCounter); 5] = [
        (
            "sink_delivered_total",
            "counter",
            "Reports each sink accepted.",
            |s| s.delivered,
        ),
        (
            "sink_dropped_total",
            "counter",
            "Reports dropped because a sink's queue was full.",
            |s| s.dropped,
        ),
        (
            "sink_failed_total",
            "counter",
            "Reports a sink failed for good.",
            |s| s.failed,
        ),
        (
            "sink_errors_total",
            "counter",
            "Failed calls to each sink.",
            |s| s.errors,
        ),
        (
            "sink_queued",
            "gauge",
            "Reports waiting in each sink's queue.",
            |s| s.queued as u64,
        ),
    ];
    for (name, kind, help, get) in per_sink {
        let _ = writeln!(out, "# HELP csp_reports_{name} {help}");
        let _ = writeln!(out, "# TYPE csp_reports_{name} {kind}");
        for sink in &stats.sinks {
            let _ = writeln!(
                out,
                "csp_reports_{name}{{sink=\"{}\"}} {}",
                escape(&sink.name),
                get(sink)
            );
        }
    }
    if let Some(mail) = mail {
        render_mail(&mut out, &mail);
    }
    out
}

/// What reached the mail server; failures are in the per-sink counters.
fn render_mail(out: &mut String, mail: &SmtpStats) {
    let counters = [
        (
            "emails_sent",
            "emails the mail server accepted",
            mail.emails_sent,
        ),
        (
            "reports_mailed",
            "reports in those emails",
            mail.reports_mailed,
        ),
        (
            "emails_capped",
            "emails held back by the cap per hour",
            mail.emails_capped,
        ),
        (
            "reports_capped",
            "reports in the emails held back by the cap",
            mail.reports_capped,
        ),
    ];
    write_counters(out, "csp_reports_smtp", &counters);
}

/// Writes `{prefix}_{name}_total` counters, each with its help and type lines.
fn write_counters(out: &mut String, prefix: &str, counters: &[(&str, &str, u64)]) {
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {prefix}_{name}_total The number of {help}.");
        let _ = writeln!(out, "# TYPE {prefix}_{name}_total counter");
        let _ = writeln!(out, "{prefix}_{name}_total {value}");
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
