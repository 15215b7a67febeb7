//! Privacy copies nothing from a report with nothing to remove, and one buffer (the raw
//! text, rewritten) from a report whose URLs carry queries.
//!
//! The counting allocator (from `allocation-counter`) counts the allocations of the current
//! thread; the reports are parsed before counting.

use tower_csp_reports::parse::{Limits, parse_body};
use tower_csp_reports::{ContentType, Privacy, Report};

fn item(document: &str, blocked: &str, sample: &str) -> String {
    format!(
        r#"{{"type":"csp-violation","age":1,"url":"{document}","user_agent":"Mozilla/5.0","body":{{"documentURL":"{document}","referrer":"https://r.example/","blockedURL":"{blocked}","sourceFile":"https://s.example/app.js","effectiveDirective":"script-src-elem","originalPolicy":"script-src 'self'; report-uri /r","sample":"{sample}","disposition":"enforce","statusCode":200}}}}"#
    )
}

fn parsed(body: &str) -> Report {
    let mut parsed = parse_body(body.as_bytes(), ContentType::CspReport, &Limits::default());
    assert_eq!(parsed.reports.len(), 1);
    parsed.reports.remove(0)
}

/// Allocations made by applying the default privacy, and the report it left.
fn allocations(mut report: Report) -> (u64, Report) {
    let privacy = Privacy::default();
    let info = allocation_counter::measure(|| privacy.apply(&mut report));
    (info.count_total, report)
}

#[test]
fn privacy_allocates_only_to_rewrite() {
    // Warm up once: lazily initialised statics are not per-report costs.
    allocations(parsed(&item("https://s.example/?q", "inline", "")));

    let cases = [
        // Nothing to remove: an `@` in a path is no credential.
        (
            item(
                "https://s.example/p",
                "https://cdn.example/npm/vue@3/x.js",
                "x",
            ),
            0,
            "https://s.example/p",
        ),
        // A `?` outside the URL fields makes the raw text be scanned, not copied.
        (
            item("https://s.example/p", "eval", "a ? b : c # d"),
            0,
            "https://s.example/p",
        ),
        // Queries: the fields become slices of themselves, the raw text one new buffer (and
        // the shared handle `Bytes` puts on a buffer with room to spare).
        (
            item(
                "https://s.example/p?token=1#f",
                "https://cdn.example/x.js?v=2",
                "",
            ),
            2,
            "https://s.example/p",
        ),
    ];
    for (body, expected, document) in cases {
        let sent = parsed(&body);
        let (count, report) = allocations(sent.clone());
        assert_eq!(count, expected, "{body}");
        assert_eq!(report.document_uri.as_deref(), Some(document));
        assert_eq!(report.raw == sent.raw, expected == 0, "{}", report.raw);
    }
}
