//! The parser on arbitrary bytes. The first byte picks the content type and the limits; the
//! rest is the body. Beyond "no panic", it checks what the crate promises of every report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_csp_reports::parse::{Limits, parse_body};
use tower_csp_reports::{ContentType, Fingerprint, WireFormat};

/// The longest reason a report may carry, whatever the field limit.
const MAX_REASON: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Some((&select, body)) = data.split_first() else {
        return;
    };
    let content_type = match select % 3 {
        0 => ContentType::CspReport,
        1 => ContentType::ReportsJson,
        _ => ContentType::Json,
    };
    let mut limits = Limits::default();
    limits.max_reports = [1, 3, 100][usize::from(select / 3 % 3)];
    limits.max_field_length = [16, 64, 4096][usize::from(select / 9 % 3)];

    let parsed = parse_body(body, content_type, &limits);

    if parsed.reports.is_empty() {
        // Only an empty batch (`[]`) holds nothing; anything else is kept, if only raw.
        assert!(parsed.rejection.is_none() && parsed.truncated == 0);
        let text = std::str::from_utf8(body).expect("UTF-8");
        let batch: Vec<serde_json::Value> =
            serde_json::from_str(text.trim_start_matches('\u{feff}')).expect("a JSON array");
        assert!(batch.is_empty());
    }
    assert!(parsed.reports.len() <= limits.max_reports);
    if parsed.truncated > 0 {
        assert_eq!(parsed.reports.len(), limits.max_reports);
    }
    let unparsed = parsed
        .reports
        .iter()
        .any(|r| r.format == WireFormat::Unparsed);
    assert_eq!(parsed.rejection.is_some(), unparsed);
    for report in &parsed.reports {
        assert_eq!(report.is_valid(), report.invalid_reason.is_none());
        assert_eq!(report.fingerprint, Fingerprint::of(report));
        if let Some(reason) = &report.invalid_reason {
            // Reasons are the crate's words, but may quote a bit of the input.
            assert!(!reason.chars().any(char::is_control), "{reason:?}");
            assert!(
                reason.len() <= MAX_REASON + 3,
                "a reason of {} bytes",
                reason.len()
            );
        }
        let texts = [
            &report.user_agent,
            &report.url,
            &report.document_uri,
            &report.referrer,
            &report.blocked_uri,
            &report.effective_directive,
            &report.violated_directive,
            &report.original_policy,
            &report.disposition,
            &report.script_sample,
            &report.source_file,
        ];
        for text in texts.into_iter().flatten() {
            assert!(!text.chars().any(char::is_control), "{text:?}");
            // Cut on a character boundary, then an ellipsis (3 bytes).
            assert!(
                text.len() <= limits.max_field_length + 3,
                "{} bytes",
                text.len()
            );
        }
        assert!(!report.report_type.chars().any(char::is_control));
        assert!(report.report_type.len() <= limits.max_field_length + 3);
        if report.is_valid() && report.is_csp_violation() {
            assert!(report.effective_directive.is_some());
            assert!(report.document().is_some());
        }
        serde_json::to_string(report).expect("every report serializes");
    }
});
