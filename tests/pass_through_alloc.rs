//! The pass-through path allocates nothing beyond what the inner service allocates.
//!
//! The counting allocator (from `allocation-counter`) counts the allocations of the current
//! thread, so each call is polled to completion right here, on this thread, with a no-op
//! waker: every service in this file is ready at once. Requests are built before counting.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_csp_reports::CspReportLayer;
use tower_csp_reports::sink::MemorySink;

/// An inner service that allocates on purpose (a body copied into a new buffer), so the test
/// shows that the layer adds nothing to it rather than that nothing allocates at all.
async fn inner(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("page {}", request.uri().path());
    Ok(Response::new(Full::new(Bytes::from(body))))
}

fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("every service here answers at once"),
    }
}

/// Allocations made by one `call` (and polling its future) on `service`; the response is
/// dropped after counting.
fn allocations<S, B>(service: &mut S, request: Request<Full<Bytes>>) -> u64
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let mut response = None;
    let info = allocation_counter::measure(|| {
        run(std::future::poll_fn(|cx| service.poll_ready(cx))).unwrap();
        response = Some(run(service.call(request)).unwrap());
    });
    drop(response);
    info.count_total
}

fn page() -> Request<Full<Bytes>> {
    Request::get("/app/page?id=7")
        .body(Full::new(Bytes::from_static(b"")))
        .unwrap()
}

fn layer() -> CspReportLayer {
    CspReportLayer::builder()
        .paths(["/csp-report", "/reports"])
        .sink(MemorySink::new())
        .build()
        .unwrap()
}

#[test]
fn pass_through_allocates_what_the_inner_service_allocates() {
    let mut bare = tower::service_fn(inner);
    let mut layered = layer().layer(tower::service_fn(inner));
    // Warm up once each: lazily initialised statics are not per-request costs.
    allocations(&mut bare, page());
    allocations(&mut layered, page());

    let baseline = allocations(&mut bare, page());
    assert!(
        baseline > 0,
        "the inner service allocates, and the counter sees it"
    );
    for _ in 0..100 {
        assert_eq!(allocations(&mut layered, page()), baseline);
    }
}

#[test]
fn the_counter_sees_a_layer_that_allocates() {
    // The same inner service behind a layer that boxes its future: one more allocation per
    // request, which the comparison above would catch in this crate's layer.
    let mut bare = tower::service_fn(inner);
    let mut boxed = tower::util::BoxService::layer().layer(tower::service_fn(inner));
    allocations(&mut bare, page());
    allocations(&mut boxed, page());
    assert!(allocations(&mut boxed, page()) > allocations(&mut bare, page()));
}

#[test]
fn the_counter_sees_the_report_path() {
    // The report path does allocate (the body, the parsed report); the pass-through must not.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let mut bare = tower::service_fn(inner);
    let mut layered = layer().layer(tower::service_fn(inner));
    let report = || {
        Request::post("/csp-report")
            .header("content-type", "application/csp-report")
            .body(Full::new(Bytes::from_static(
                br#"{"csp-report":{"document-uri":"https://example.com/","violated-directive":"img-src","blocked-uri":"https://ads.example/x.gif"}}"#,
            )))
            .unwrap()
    };
    allocations(&mut layered, report());
    assert!(allocations(&mut layered, report()) > allocations(&mut bare, report()));
}
