//! The conformance suite every sink passes: it takes every kind of report, each exactly
//! once, in batches of any size, and shuts down cleanly.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::future::Future;

use tower_csp_reports::parse::{Limits, parse_body};
use tower_csp_reports::{ContentType, Report, ReportBatch, ReportSink};

/// Reports of every shape a sink must take: valid legacy and Reporting API reports, other
/// Reporting API types, invalid items, an unparsed body, hostile and maximal strings.
pub fn sample_reports() -> Vec<Report> {
    let mut reports = Vec::new();
    let bodies: [(&[u8], ContentType); 5] = [
        (
            br#"{"csp-report":{"document-uri":"https://s.example/a?q=1","referrer":"https://r.example/","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"script-src 'self'; report-uri /r","disposition":"enforce","blocked-uri":"inline","line-number":9,"column-number":12,"source-file":"https://s.example/a","status-code":200,"script-sample":"alert('<b>&amp;')"}}"#,
            ContentType::CspReport,
        ),
        (
            br#"[{"type":"csp-violation","age":12,"url":"https://s.example/b","user_agent":"Mozilla/5.0 conformance","body":{"documentURL":"https://s.example/b","blockedURL":"https://cdn.example/x.js","effectiveDirective":"script-src-elem","disposition":"report"}},
                {"type":"deprecation","url":"https://s.example/b","body":{"id":"X"}},
                {"type":"csp-violation","body":{"lineNumber":-1}}]"#,
            ContentType::ReportsJson,
        ),
        (b"not json at all\r\nFAKE: line \xff", ContentType::Json),
        (
            "{\"csp-report\":{\"document-uri\":\"https://s.example/\\u00e9\\u4e2d\\r\\nX-Injected: 1\",\"effective-directive\":\"img-src\",\"blocked-uri\":\"data\",\"script-sample\":\"\\u001b[2J'; DROP TABLE x; --\"}}".as_bytes(),
            ContentType::CspReport,
        ),
        (
            format!(
                r#"{{"csp-report":{{"document-uri":"https://s.example/long","effective-directive":"img-src","original-policy":"{}"}}}}"#,
                "x".repeat(10_000)
            )
            .leak()
            .as_bytes(),
            ContentType::CspReport,
        ),
    ];
    for (body, content_type) in bodies {
        reports.extend(parse_body(body, content_type, &Limits::default()).reports);
    }
    reports
}

/// Runs the suite. `delivered` reads back the ids of every report the sink holds or has
/// passed on, in any order.
pub async fn check<S, F, Fut>(sink: &S, delivered: F)
where
    S: ReportSink,
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    assert!(!sink.name().is_empty(), "a sink has a name");
    sink.send(&ReportBatch::new())
        .await
        .expect("an empty batch is fine");
    assert!(delivered().await.is_empty(), "nothing delivered yet");

    let reports = sample_reports();
    assert!(reports.iter().any(|r| !r.is_valid()) && reports.iter().any(|r| r.is_valid()));
    let first: ReportBatch = reports.iter().take(3).cloned().collect();
    let rest: ReportBatch = reports.iter().skip(3).cloned().collect();
    sink.send(&first).await.expect("first batch");
    sink.send(&rest).await.expect("second batch");
    sink.shutdown().await.expect("shutdown");

    let want: BTreeSet<String> = reports.iter().map(|r| r.id.to_string()).collect();
    let got = delivered().await;
    let got_set: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(got.len(), got_set.len(), "no report delivered twice");
    assert_eq!(got_set, want, "every report delivered");
}
