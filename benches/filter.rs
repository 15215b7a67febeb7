//! The default filter per report: one it keeps (the common case), one it drops for its
//! scheme, one it drops for its host.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tower_csp_reports::Report;
use tower_csp_reports::filter::{DefaultFilter, Filter, RequestFacts};

fn bench(c: &mut Criterion) {
    let filter = DefaultFilter::new();
    let facts = RequestFacts::default();
    let report = |blocked: &str, source: &str| {
        let mut report = Report::csp(
            "https://shop.example/products/42",
            "script-src-elem",
            blocked,
        );
        report.source_file = Some(source.into());
        report
    };
    let cases = [
        (
            "kept",
            report(
                "https://cdn.tracker.example/pixel.js",
                "https://shop.example/static/app.js",
            ),
            true,
        ),
        (
            "extension",
            report("inline", "chrome-extension://abcdefghijklmnop/content.js"),
            false,
        ),
        (
            "noise-host",
            report(
                "https://cdncache-a.akamaihd.net/sub/x.js",
                "https://shop.example/static/app.js",
            ),
            false,
        ),
    ];
    let mut group = c.benchmark_group("default-filter");
    for (name, report, keep) in &cases {
        assert_eq!(filter.keep(report, &facts), *keep, "{name}");
        group.bench_with_input(BenchmarkId::from_parameter(name), report, |b, report| {
            b.iter(|| filter.keep(black_box(report), &facts))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
