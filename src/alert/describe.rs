//! How an alert reads, the same in every alert sink: headlines and field lists. Values are
//! as stored; each sink escapes them for its own context (HTML, JSON, Slack's mrkdwn).

#![cfg_attr(not(all(feature = "smtp", feature = "webhook")), allow(dead_code))]

use jiff::Timestamp;

use crate::store::{Summary, Violation, ViolationEvent, ViolationEventKind};

/// "img-src blocked https://ads.example on https://shop.example/".
pub(crate) fn headline(violation: &Violation) -> String {
    let or = |value: &str, missing: &'static str| {
        if value.is_empty() {
            missing.to_owned()
        } else {
            value.to_owned()
        }
    };
    format!(
        "{} blocked {} on {}",
        or(&violation.directive, "a directive"),
        or(&violation.blocked, "something"),
        or(&violation.document, "an unknown page"),
    )
}

/// "New violation" or "Regressed violation".
pub(crate) fn event_title(event: &ViolationEvent) -> &'static str {
    match event.kind {
        ViolationEventKind::Regressed => "Regressed violation",
        _ => "New violation",
    }
}

/// "new" or "regressed".
pub(crate) fn kind_word(kind: ViolationEventKind) -> &'static str {
    match kind {
        ViolationEventKind::Regressed => "regressed",
        _ => "new",
    }
}

/// The fields worth reading about a violation, in order, skipping empty ones.
pub(crate) fn violation_fields(violation: &Violation) -> Vec<(&'static str, String)> {
    let mut fields = Vec::new();
    let mut push = |name: &'static str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            fields.push((name, value));
        }
    };
    let example = &violation.example;
    push("Document", Some(violation.document.clone()));
    push("Directive", Some(violation.directive.clone()));
    push(
        "Blocked",
        example
            .blocked_uri
            .clone()
            .or(Some(violation.blocked.clone())),
    );
    push("Disposition", example.disposition.clone());
    let source = example.source_file.as_ref().map(|file| {
        match (example.line_number, example.column_number) {
            (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
            (Some(line), None) => format!("{file}:{line}"),
            _ => file.clone(),
        }
    });
    push("Source", source);
    push("Sample", example.script_sample.clone());
    push("Policy", example.original_policy.clone());
    push("Reports", Some(violation.count.to_string()));
    push("First seen", Some(time(violation.first_seen)));
    push("Last seen", Some(time(violation.last_seen)));
    push("Fingerprint", Some(violation.fingerprint.to_string()));
    push("Report id", Some(example.report_id.to_string()));
    fields
}

/// "Digest: 12 reports from 10:05 to 10:10 UTC".
pub(crate) fn digest_title(summary: &Summary) -> String {
    format!(
        "Digest: {} from {} to {}",
        plural(summary.total, "report", "reports"),
        time(summary.since),
        time(summary.to)
    )
}

/// The lines of a digest after its title: totals, then the top violations.
pub(crate) fn digest_lines(summary: &Summary) -> Vec<String> {
    let mut lines = vec![format!(
        "{} ({} valid, {} invalid).",
        plural(summary.total, "report", "reports"),
        summary.valid,
        summary.invalid
    )];
    if summary.ignored > 0 {
        lines.push(format!(
            "{} of ignored violations, not listed.",
            plural(summary.ignored, "report", "reports")
        ));
    }
    for (i, top) in summary.top_fingerprints.iter().enumerate() {
        let or = |value: &str| {
            if value.is_empty() {
                "-".to_owned()
            } else {
                value.to_owned()
            }
        };
        lines.push(format!(
            "{}. {} blocked {} on {} ({}, {})",
            i + 1,
            or(&top.directive),
            or(&top.blocked),
            or(&top.source),
            plural(top.count, "report", "reports"),
            top.status.as_str()
        ));
    }
    lines
}

pub(crate) fn time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(crate) fn plural(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}
