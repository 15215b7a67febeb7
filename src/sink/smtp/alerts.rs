//! The emails of the store's alerts: new and regressed violations, and digests.

use std::fmt::Write;

use super::render::{
    Email, FIELD_MAX_CHARS, HTML_HEAD, HTML_TAIL, notices_html, notices_text, subject,
};
use super::text;
use crate::alert::{
    digest_lines, digest_title, event_title, headline, plural, told_reports, violation_fields,
};
use crate::store::{Summary, ViolationEvent};

/// One email for violations the store created or reopened, each with its fields.
pub(super) fn render_violations(
    prefix: &str,
    events: &[&ViolationEvent],
    notices: &[String],
) -> Email {
    let subject_rest = match events {
        [only] => format!("{}: {}", event_title(only), headline(&only.violation)),
        _ => format!(
            "{} new or regressed",
            plural(events.len() as u64, "violation", "violations")
        ),
    };
    let mut text = String::new();
    let mut html = String::from(HTML_HEAD);
    notices_text(&mut text, notices);
    notices_html(&mut html, notices);
    for event in events {
        let title = text::one_line(
            &format!("{}: {}", event_title(event), headline(&event.violation)),
            FIELD_MAX_CHARS,
        );
        let _ = writeln!(text, "{title}");
        let _ = writeln!(html, "<h3>{}</h3>", text::html(&title));
        let fields = violation_fields(&event.violation);
        let width = fields.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 1;
        html.push_str("<table style=\"border-collapse:collapse;font-size:14px\">\n");
        for (name, value) in fields {
            let value = text::one_line(&value, FIELD_MAX_CHARS);
            let _ = writeln!(text, "   {:<width$} {value}", format!("{name}:"));
            // No links: report values come from anyone.
            let _ = writeln!(
                html,
                "<tr><th style=\"text-align:left;padding:2px 12px 2px 0;vertical-align:top\">{name}</th><td style=\"padding:2px 0;word-break:break-all\">{}</td></tr>",
                text::html(&value)
            );
        }
        html.push_str("</table>\n");
        text.push('\n');
    }
    html.push_str(HTML_TAIL);
    Email {
        subject: subject(prefix, &subject_rest),
        text,
        html,
        reports: events.len() as u64,
    }
}

/// The digest of one window, from the store's summary.
pub(super) fn render_digest(prefix: &str, summary: &Summary, notices: &[String]) -> Email {
    let title = digest_title(summary);
    let mut text = String::new();
    let mut html = String::from(HTML_HEAD);
    notices_text(&mut text, notices);
    notices_html(&mut html, notices);
    let _ = writeln!(text, "{title}\n");
    let _ = writeln!(html, "<h2>{}</h2>", text::html(&title));
    html.push_str("<ul>\n");
    for line in digest_lines(summary) {
        let line = text::one_line(&line, FIELD_MAX_CHARS);
        let _ = writeln!(text, "{line}");
        let _ = writeln!(html, "<li>{}</li>", text::html(&line));
    }
    html.push_str("</ul>\n");
    html.push_str(HTML_TAIL);
    Email {
        subject: subject(prefix, &title),
        text,
        html,
        reports: told_reports(summary),
    }
}
