//! The layer in-process: a request to another path through the layer against the bare inner
//! service (the pass-through must cost next to nothing), and the report path end to end
//! (parse, filter, enqueue) into a sink that does nothing, with the default privacy and with
//! `Privacy::off()`, for a report with nothing to remove and one whose URLs carry queries.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use std::hint::black_box;
use tower::{Layer, Service, ServiceExt};
use tower_csp_reports::sink::sink_fn;
use tower_csp_reports::{CspReportLayer, Privacy, ReportBatch, SinkOptions};

async fn inner(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

const REPORT: &str = r#"[{"age":1,"body":{"blockedURL":"https://cdn.example/lib.js","disposition":"enforce","documentURL":"https://site.example/page","effectiveDirective":"script-src-elem","lineNumber":12,"originalPolicy":"default-src 'self'; report-to csp","statusCode":200},"type":"csp-violation","url":"https://site.example/page","user_agent":"Mozilla/5.0 Chrome/156"}]"#;

/// The same report from a page with a query, as most pages have: the layer rewrites it.
const REPORT_WITH_QUERY: &str = r#"[{"age":1,"body":{"blockedURL":"https://cdn.example/lib.js?v=3","disposition":"enforce","documentURL":"https://site.example/page?session=abc123&ref=mail","effectiveDirective":"script-src-elem","lineNumber":12,"originalPolicy":"default-src 'self'; report-to csp","statusCode":200},"type":"csp-violation","url":"https://site.example/page?session=abc123&ref=mail","user_agent":"Mozilla/5.0 Chrome/156"}]"#;

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let null = sink_fn(|_: ReportBatch| async { Ok(()) }).named("null");
    let layer = CspReportLayer::builder()
        .sink_with(null, SinkOptions::default().queue_capacity(10_000_000))
        .build()
        .unwrap();
    let handle = layer.handle();
    // Everything kept as sent: the cost of the redaction is the difference.
    let null = sink_fn(|_: ReportBatch| async { Ok(()) }).named("null");
    let kept = CspReportLayer::builder()
        .privacy(Privacy::off())
        .sink_with(null, SinkOptions::default().queue_capacity(10_000_000))
        .build()
        .unwrap();
    let kept_handle = kept.handle();
    let mut bare = tower::service_fn(inner);
    let mut layered = layer.layer(tower::service_fn(inner));

    let mut group = c.benchmark_group("pass-through");
    group.bench_function("bare", |b| {
        b.to_async(&runtime).iter(|| {
            let request = Request::get("/app/page")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let call = bare.call(black_box(request));
            async move { call.await.unwrap() }
        })
    });
    group.bench_function("layered", |b| {
        b.to_async(&runtime).iter(|| {
            let request = Request::get("/app/page")
                .body(Full::new(Bytes::new()))
                .unwrap();
            let call = layered.call(black_box(request));
            async move { call.await.unwrap() }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("report-path");
    for (name, layer, report) in [
        ("parse-filter-enqueue", &layer, REPORT),
        ("parse-filter-enqueue/privacy-off", &kept, REPORT),
        ("with-query", &layer, REPORT_WITH_QUERY),
        ("with-query/privacy-off", &kept, REPORT_WITH_QUERY),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let request = Request::post("/csp-report")
                    .header("content-type", "application/reports+json")
                    .header("content-length", report.len())
                    .body(Full::new(Bytes::from_static(report.as_bytes())))
                    .unwrap();
                let service = layer.layer(tower::service_fn(inner));
                async move { service.oneshot(request).await.unwrap() }
            })
        });
    }
    group.finish();
    runtime.block_on(handle.shutdown());
    runtime.block_on(kept_handle.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
