//! The emails themselves: subjects and both bodies, from reports and digests.

use std::fmt::Write;

use jiff::Timestamp;

use super::groups::{Group, Groups};
use super::text::{self, SUBJECT_MAX_CHARS};
use crate::Report;
use crate::report::{blocked_origin, strip_query};

/// How many violations a digest lists in full; the rest are summed up in one line.
const LISTED_GROUPS: usize = 50;

/// The longest single value shown in a field list, in characters (policies can be long).
pub(super) const FIELD_MAX_CHARS: usize = 2_000;

/// An email ready to go: its subject and its plain-text and HTML bodies.
///
/// Every value taken from a report is escaped in the HTML body, and the subject is one line
/// of at most 150 characters with every control character removed, whatever the report
/// holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Email {
    /// One line, safe for a header.
    pub(super) subject: String,
    /// The plain-text body.
    pub(super) text: String,
    /// The HTML body (the alternative most mail readers show).
    pub(super) html: String,
    /// How many reports the email is about.
    pub(super) reports: u64,
}

/// The kind of grouped email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GroupKind {
    Digest,
    NewViolations,
}

#[cfg(test)]
impl Email {
    /// The email for one report (`per_report` mode): its main fields, the user agent and the
    /// report as pretty JSON; for an invalid report, why it is invalid and the raw text.
    pub(super) fn report(subject_prefix: &str, report: &Report) -> Self {
        render_report(subject_prefix, report, &[])
    }

    /// A digest of `reports` (`digest` mode): grouped by fingerprint, most frequent first,
    /// each with its count, first and last time seen and one example.
    pub(super) fn digest<'a>(
        subject_prefix: &str,
        reports: impl IntoIterator<Item = &'a Report>,
    ) -> Self {
        render_groups(
            GroupKind::Digest,
            subject_prefix,
            &reports.into_iter().collect(),
            &[],
        )
    }

    /// An alert on violations not seen before (`new_only` mode), grouped like a digest.
    pub(super) fn new_violations<'a>(
        subject_prefix: &str,
        reports: impl IntoIterator<Item = &'a Report>,
    ) -> Self {
        render_groups(
            GroupKind::NewViolations,
            subject_prefix,
            &reports.into_iter().collect(),
            &[],
        )
    }
}

/// What a report is about, in a few words: "script-src-elem blocked inline on https://a.example/".
fn headline(report: &Report) -> String {
    let document = report
        .document()
        .map(strip_query)
        .unwrap_or("an unknown page");
    if !report.is_valid() {
        let reason = report.invalid_reason.as_deref().unwrap_or("unknown reason");
        return format!("invalid report ({reason})");
    }
    if !report.is_csp_violation() {
        return format!("{} report on {document}", report.report_type);
    }
    let directive = report
        .effective_directive
        .as_deref()
        .or(report.violated_directive.as_deref())
        .unwrap_or("a directive");
    let blocked = report
        .blocked_uri
        .as_deref()
        .map(blocked_origin)
        .filter(|b| !b.is_empty())
        .unwrap_or("something");
    format!("{directive} blocked {blocked} on {document}")
}

pub(super) fn subject(prefix: &str, rest: &str) -> String {
    let subject = if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{prefix} {rest}")
    };
    text::one_line(&subject, SUBJECT_MAX_CHARS)
}

fn time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The fields worth reading, in order, skipping those the report does not have.
fn fields(report: &Report) -> Vec<(&'static str, String)> {
    let mut fields = Vec::new();
    let mut push = |name: &'static str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            fields.push((name, text::one_line(value, FIELD_MAX_CHARS)));
        }
    };
    push("Document", report.document());
    push("Blocked", report.blocked_uri.as_deref());
    push("Directive", report.effective_directive.as_deref());
    if report.violated_directive != report.effective_directive {
        push("Violated directive", report.violated_directive.as_deref());
    }
    push("Disposition", report.disposition.as_deref());
    push(
        "Status",
        report.status_code.map(|s| s.to_string()).as_deref(),
    );
    let source =
        report
            .source_file
            .as_ref()
            .map(|file| match (report.line_number, report.column_number) {
                (Some(line), Some(column)) => format!("{file}:{line}:{column}"),
                (Some(line), None) => format!("{file}:{line}"),
                _ => file.to_string(),
            });
    push("Source", source.as_deref());
    push("Sample", report.script_sample.as_deref());
    push("Referrer", report.referrer.as_deref());
    push("Policy", report.original_policy.as_deref());
    push("User agent", report.user_agent.as_deref());
    push(
        "Client",
        report.client_ip.map(|ip| ip.to_string()).as_deref(),
    );
    push("Received", Some(&time(report.received_at)));
    push("Format", Some(report.format.as_str()));
    if !report.is_csp_violation() {
        push("Type", Some(&report.report_type));
    }
    push("Fingerprint", Some(&report.fingerprint.to_string()));
    // The id finds the report where it is stored (the `id` column of the Postgres sink).
    push("Report id", Some(&report.id.to_string()));
    fields
}

fn text_fields(out: &mut String, report: &Report, indent: &str) {
    let fields = fields(report);
    let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 1;
    for (name, value) in fields {
        let _ = writeln!(out, "{indent}{:<width$} {value}", format!("{name}:"));
    }
}

fn html_fields(out: &mut String, report: &Report) {
    out.push_str("<table style=\"border-collapse:collapse;font-size:14px\">\n");
    for (name, value) in fields(report) {
        // No links: report values come from anyone, and a clickable URL in an alert mail is
        // an invitation to phishing.
        let _ = writeln!(
            out,
            "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{name}</th><td style=\"padding:2px 0;word-break:break-all\">{}</td></tr>",
            text::html(&value)
        );
    }
    out.push_str("</table>\n");
}

pub(super) const HTML_HEAD: &str = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body style=\"font-family:sans-serif\">\n";
pub(super) const HTML_TAIL: &str = "</body></html>\n";

pub(super) fn notices_text(out: &mut String, notices: &[String]) {
    for notice in notices {
        let _ = writeln!(out, "Note: {notice}");
    }
    if !notices.is_empty() {
        out.push('\n');
    }
}

pub(super) fn notices_html(out: &mut String, notices: &[String]) {
    for notice in notices {
        let _ = writeln!(
            out,
            "<p style=\"background:#fff3cd;padding:6px\"><strong>Note:</strong> {}</p>",
            text::html(notice)
        );
    }
}

pub(super) fn render_report(prefix: &str, report: &Report, notices: &[String]) -> Email {
    let subject = subject(prefix, &headline(report));
    let mut text = String::new();
    let mut html = String::from(HTML_HEAD);
    notices_text(&mut text, notices);
    notices_html(&mut html, notices);

    let title = if report.is_valid() {
        "CSP violation report".to_owned()
    } else {
        format!(
            "Invalid CSP report: {}",
            report.invalid_reason.as_deref().unwrap_or("unknown reason")
        )
    };
    let _ = writeln!(text, "{}\n", text::one_line(&title, FIELD_MAX_CHARS));
    let _ = writeln!(
        html,
        "<h2>{}</h2>",
        text::html(&text::one_line(&title, FIELD_MAX_CHARS))
    );
    text_fields(&mut text, report, "");
    html_fields(&mut html, report);

    let (label, body) = if report.is_valid() {
        let json = serde_json::to_string_pretty(report).unwrap_or_else(|e| e.to_string());
        ("The report as JSON", json)
    } else {
        ("The raw text as received", report.raw.to_string())
    };
    let body = text::block(&body);
    let _ = write!(text, "\n{label}:\n{body}\n");
    let _ = writeln!(
        html,
        "<h3>{label}</h3>\n<pre style=\"white-space:pre-wrap;word-break:break-all\">{}</pre>",
        text::html(&body)
    );
    html.push_str(HTML_TAIL);
    Email {
        subject,
        text,
        html,
        reports: 1,
    }
}

fn plural(count: u64, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

pub(super) fn render_groups(
    kind: GroupKind,
    prefix: &str,
    groups: &Groups,
    notices: &[String],
) -> Email {
    let sorted = groups.sorted();
    let violations = sorted.len() as u64;
    let reports = groups.reports();
    let subject_rest = match (kind, sorted.as_slice()) {
        (GroupKind::NewViolations, [only]) => format!("New: {}", headline(&only.example)),
        (GroupKind::NewViolations, _) => format!(
            "{} ({})",
            plural(violations, "new violation", "new violations"),
            plural(reports, "report", "reports")
        ),
        (GroupKind::Digest, _) => format!(
            "Digest: {} of {}",
            plural(reports, "report", "reports"),
            plural(violations, "violation", "violations")
        ),
    };
    let subject = subject(prefix, &subject_rest);

    let mut intro = match kind {
        GroupKind::Digest => format!(
            "{} of {}",
            plural(reports, "report", "reports"),
            plural(violations, "distinct violation", "distinct violations")
        ),
        GroupKind::NewViolations => format!(
            "{} not seen before ({})",
            plural(violations, "violation", "violations"),
            plural(reports, "report", "reports")
        ),
    };
    if let Some((first, last)) = groups.span() {
        let _ = write!(
            intro,
            ", received between {} and {}",
            time(first),
            time(last)
        );
    }
    intro.push('.');

    let mut text = String::new();
    let mut html = String::from(HTML_HEAD);
    notices_text(&mut text, notices);
    notices_html(&mut html, notices);
    let _ = writeln!(text, "{intro}\n");
    let _ = writeln!(html, "<p>{}</p>", text::html(&intro));

    for (i, group) in sorted.iter().take(LISTED_GROUPS).enumerate() {
        group_text(&mut text, i + 1, group);
        group_html(&mut html, i + 1, group);
    }
    let unlisted: u64 = sorted.iter().skip(LISTED_GROUPS).map(|g| g.count).sum();
    let unlisted_groups = sorted.len().saturating_sub(LISTED_GROUPS);
    if unlisted_groups > 0 {
        let line = format!(
            "And {} more ({}) not listed.",
            plural(unlisted_groups as u64, "violation", "violations"),
            plural(unlisted, "report", "reports")
        );
        let _ = writeln!(text, "{line}");
        let _ = writeln!(html, "<p>{}</p>", text::html(&line));
    }
    html.push_str(HTML_TAIL);
    Email {
        subject,
        text,
        html,
        reports,
    }
}

fn group_title(n: usize, group: &Group) -> String {
    format!(
        "{n}. {} ({})",
        text::one_line(&headline(&group.example), FIELD_MAX_CHARS),
        plural(group.count, "report", "reports")
    )
}

fn group_text(out: &mut String, n: usize, group: &Group) {
    let _ = writeln!(out, "{}", group_title(n, group));
    let _ = writeln!(
        out,
        "   First seen {}, last seen {}.\n   Example:",
        time(group.first_seen),
        time(group.last_seen)
    );
    text_fields(out, &group.example, "     ");
    out.push('\n');
}

fn group_html(out: &mut String, n: usize, group: &Group) {
    let _ = writeln!(out, "<h3>{}</h3>", text::html(&group_title(n, group)));
    let _ = writeln!(
        out,
        "<p>First seen {}, last seen {}. Example:</p>",
        time(group.first_seen),
        time(group.last_seen)
    );
    html_fields(out, &group.example);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_say_what_happened() {
        let report = Report::csp(
            "https://example.com/p?q=1#f",
            "img-src",
            "https://ads.example/x.png",
        );
        let mut invalid = Report::csp("https://example.com/", "img-src", "data");
        invalid.invalid_reason = Some("not JSON".to_owned());
        let mut other = Report::csp("https://example.com/", "img-src", "data");
        other.report_type = "deprecation".into();
        let cases: &[(&Report, &str)] = &[
            (
                &report,
                "[CSP] img-src blocked https://ads.example on https://example.com/p",
            ),
            (&invalid, "[CSP] invalid report (not JSON)"),
            (&other, "[CSP] deprecation report on https://example.com/"),
        ];
        for (report, expected) in cases {
            assert_eq!(Email::report("[CSP]", report).subject, *expected);
        }
    }

    #[test]
    fn subject_cannot_carry_a_header() {
        let report = Report::csp(
            "https://e.example/\r\nBcc: x@evil.example",
            "img-src\n",
            "data",
        );
        let email = Email::report("[CSP]\r\nX-Evil: 1", &report);
        assert!(!email.subject.contains(['\r', '\n']));
        assert!(email.subject.chars().count() <= SUBJECT_MAX_CHARS + 1);
        let long = Report::csp(
            &format!("https://e.example/{}", "a".repeat(500)),
            "img-src",
            "data",
        );
        assert_eq!(
            Email::report("", &long).subject.chars().count(),
            SUBJECT_MAX_CHARS + 1
        );
    }

    #[test]
    fn per_report_mail_has_json_or_raw_text() {
        let mut report = Report::csp("https://example.com/", "script-src", "eval");
        report.user_agent = Some("Firefox/149".into());
        let email = Email::report("", &report);
        let agent_line = email
            .text
            .lines()
            .find(|line| line.starts_with("User agent:"));
        assert_eq!(
            agent_line.map(|line| line.split_whitespace().last()),
            Some(Some("Firefox/149"))
        );
        assert!(
            email.text.contains("\"blocked_uri\": \"eval\""),
            "{}",
            email.text
        );

        let mut invalid = report.clone();
        invalid.invalid_reason = Some("expected a JSON object".to_owned());
        invalid.raw = "{not json <script>".into();
        let email = Email::report("", &invalid);
        assert!(
            email
                .text
                .contains("Invalid CSP report: expected a JSON object")
        );
        assert!(
            email
                .text
                .contains("The raw text as received:\n{not json <script>")
        );
        assert!(email.html.contains("{not json &lt;script&gt;"));
    }

    #[test]
    fn digest_groups_counts_and_lists_most_frequent_first() {
        let a = Report::csp("https://example.com/", "img-src", "https://a.example/1");
        let b = Report::csp("https://example.com/", "script-src", "inline");
        let email = Email::digest("[CSP]", [&a, &b, &b, &b]);
        assert_eq!(email.subject, "[CSP] Digest: 4 reports of 2 violations");
        assert_eq!(email.reports, 4);
        let first = email
            .text
            .find("1. script-src blocked inline on https://example.com/ (3 reports)");
        let second = email
            .text
            .find("2. img-src blocked https://a.example on https://example.com/ (1 report)");
        assert!(
            first.is_some() && second.is_some() && first < second,
            "{}",
            email.text
        );
    }

    #[test]
    fn new_violation_subject_names_a_single_violation() {
        let a = Report::csp("https://example.com/", "img-src", "data");
        assert_eq!(
            Email::new_violations("[CSP]", [&a, &a]).subject,
            "[CSP] New: img-src blocked data on https://example.com/"
        );
        let b = Report::csp("https://example.com/", "font-src", "data");
        assert_eq!(
            Email::new_violations("[CSP]", [&a, &b]).subject,
            "[CSP] 2 new violations (2 reports)"
        );
    }

    #[test]
    fn notices_come_first_in_both_bodies() {
        let a = Report::csp("https://example.com/", "img-src", "data");
        let email = render_report("", &a, &["3 emails <held>".to_owned()]);
        assert!(email.text.starts_with("Note: 3 emails <held>\n"));
        assert!(
            email
                .html
                .contains("<strong>Note:</strong> 3 emails &lt;held&gt;")
        );
    }
}
