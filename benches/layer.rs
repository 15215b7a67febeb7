//! The layer in-process: a request to another path through the layer against the bare inner
//! service (the pass-through must cost next to nothing), and the report path end to end
//! (parse, filter, enqueue) into a sink that does nothing.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use std::hint::black_box;
use tower::{Layer, Service, ServiceExt};
use tower_csp_reports::sink::sink_fn;
use tower_csp_reports::{CspReportLayer, ReportBatch, SinkOptions};

async fn inner(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

const REPORT: &str = r#"[{"age":1,"body":{"blockedURL":"https://cdn.example/lib.js","disposition":"enforce","documentURL":"https://site.example/page","effectiveDirective":"script-src-elem","lineNumber":12,"originalPolicy":"default-src 'self'; report-to csp","statusCode":200},"type":"csp-violation","url":"https://site.example/page","user_agent":"Mozilla/5.0 Chrome/156"}]"#;

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
    group.bench_function("parse-filter-enqueue", |b| {
        b.to_async(&runtime).iter(|| {
            let request = Request::post("/csp-report")
                .header("content-type", "application/reports+json")
                .header("content-length", REPORT.len())
                .body(Full::new(Bytes::from_static(REPORT.as_bytes())))
                .unwrap();
            let service = layer.layer(tower::service_fn(inner));
            async move { service.oneshot(request).await.unwrap() }
        })
    });
    group.finish();
    runtime.block_on(handle.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
