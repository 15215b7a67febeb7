//! Parser throughput per format: ns per report and bytes per second, and per report with the
//! default privacy applied after parsing.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tower_csp_reports::parse::{Limits, parse_body};
use tower_csp_reports::{ContentType, Privacy};

const LEGACY: &str = r#"{"csp-report":{"document-uri":"https://site.example/page?id=1","referrer":"https://site.example/","violated-directive":"script-src-elem","effective-directive":"script-src-elem","original-policy":"default-src 'self'; script-src 'self' 'report-sample'; report-uri /csp-report","disposition":"enforce","blocked-uri":"inline","line-number":12,"column-number":39,"source-file":"https://site.example/page?id=1","status-code":200,"script-sample":"alert(document.cookie)"}}"#;

fn reporting_item(i: usize) -> String {
    format!(
        r#"{{"age":{i},"body":{{"blockedURL":"https://cdn{i}.example/lib.js","columnNumber":39,"disposition":"enforce","documentURL":"https://site.example/page?id={i}","effectiveDirective":"script-src-elem","lineNumber":12,"originalPolicy":"default-src 'self'; report-to csp","referrer":"","sample":"","sourceFile":"https://site.example/app.js","statusCode":200}},"type":"csp-violation","url":"https://site.example/page?id={i}","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"}}"#
    )
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let privacy = Privacy::default();
    let mut group = c.benchmark_group("parse");
    let mut cases: Vec<(String, String, ContentType, u64)> = vec![
        ("legacy".into(), LEGACY.into(), ContentType::CspReport, 1),
        (
            "safari-single".into(),
            reporting_item(0),
            ContentType::CspReport,
            1,
        ),
        (
            "invalid".into(),
            "this is not json {".repeat(20),
            ContentType::Json,
            1,
        ),
    ];
    for n in [1, 10, 100] {
        let items: Vec<String> = (0..n).map(reporting_item).collect();
        cases.push((
            format!("reporting-api-{n}"),
            format!("[{}]", items.join(",")),
            ContentType::ReportsJson,
            n as u64,
        ));
    }
    for (name, body, content_type, reports) in &cases {
        // Per report, so batches of different sizes compare.
        group.throughput(Throughput::Elements(*reports));
        group.bench_with_input(BenchmarkId::new("reports", name), body, |b, body| {
            b.iter(|| parse_body(black_box(body.as_bytes()), *content_type, &limits))
        });
        // Then the default privacy on each report: these bodies' pages have queries, so
        // every report is rewritten.
        group.bench_with_input(BenchmarkId::new("redacted", name), body, |b, body| {
            b.iter(|| {
                let mut parsed = parse_body(black_box(body.as_bytes()), *content_type, &limits);
                for report in &mut parsed.reports {
                    privacy.apply(report);
                }
                parsed
            })
        });
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("bytes", name), body, |b, body| {
            b.iter(|| parse_body(black_box(body.as_bytes()), *content_type, &limits))
        });
    }
    group.finish();

    // What the default privacy costs a parsed report, beside what parsing it costs: with
    // nothing to remove (the common path), and with queries in every URL (the raw JSON
    // rewritten). `apply` is timed alone: the clone it works on is made outside the timing.
    let mut group = c.benchmark_group("privacy");
    let plain = reporting_item(0).replace("?id=0", "");
    for (name, body) in [("nothing-to-remove", plain), ("queries", reporting_item(0))] {
        let parsed = parse_body(body.as_bytes(), ContentType::CspReport, &limits);
        let report = &parsed.reports[0];
        group.bench_function(BenchmarkId::new("parse", name), |b| {
            b.iter(|| parse_body(black_box(body.as_bytes()), ContentType::CspReport, &limits))
        });
        group.bench_function(BenchmarkId::new("apply", name), |b| {
            b.iter_batched_ref(
                || report.clone(),
                |report| privacy.apply(report),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
