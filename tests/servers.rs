//! The layer in real servers over real sockets: axum, plain hyper and tonic.
//!
//! Each server gets the same table of requests; every answer the layer gives is checked,
//! as is what reached the sink and that other routes still work.

#[path = "support/connection.rs"]
mod connection;
#[path = "support/http.rs"]
mod http_client;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use http_client::{Answer, legacy, post, reporting_api, request, send};
use tokio::net::TcpListener;
use tower::Layer;
use tower_csp_reports::sink::MemorySink;
use tower_csp_reports::{CspReportHandle, CspReportLayer, CspReportLayerBuilder, WireFormat};

fn layer(memory: &MemorySink) -> CspReportLayerBuilder {
    CspReportLayer::builder()
        .max_body_size(4096)
        .body_timeout(Duration::from_millis(500))
        .sink(memory.clone())
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn axum_server(layer: CspReportLayer) -> SocketAddr {
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .layer(layer);
    let (listener, addr) = listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn hello(_: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

async fn hyper_server(layer: CspReportLayer) -> SocketAddr {
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = layer.layer(tower::service_fn(hello));
            tokio::spawn(connection::serve(stream, service));
        }
    });
    addr
}

/// A gRPC-style service answering `/demo.Echo/Say`, to show other routes keep working.
#[derive(Clone)]
struct Echo;

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "demo.Echo";
}

impl tower::Service<Request<tonic::body::Body>> for Echo {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<tonic::body::Body>) -> Self::Future {
        let body = tonic::body::Body::new(Full::new(Bytes::from_static(b"hello")));
        std::future::ready(Ok(Response::new(body)))
    }
}

async fn tonic_server(layer: CspReportLayer) -> SocketAddr {
    let (listener, addr) = listener().await;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(layer)
            .add_service(Echo)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    addr
}

/// A body that trickles in: one byte, then nothing for `pause`.
fn slow_body(pause: Duration) -> http_body_util::channel::Channel<Bytes, Infallible> {
    let (mut tx, body) = http_body_util::channel::Channel::new(1);
    tokio::spawn(async move {
        let _ = tx.send_data(Bytes::from_static(b"{")).await;
        tokio::time::sleep(pause).await;
        let _ = tx.send_data(Bytes::from_static(b"}")).await;
    });
    body
}

/// An over-limit body sent chunked, with no Content-Length.
fn chunked_body(len: usize) -> http_body_util::channel::Channel<Bytes, Infallible> {
    let (mut tx, body) = http_body_util::channel::Channel::new(4);
    tokio::spawn(async move {
        for _ in 0..len / 1024 {
            if tx.send_data(Bytes::from(vec![b' '; 1024])).await.is_err() {
                return;
            }
        }
    });
    body
}

async fn check_server(
    addr: SocketAddr,
    other_path: &str,
    memory: &MemorySink,
    handle: &CspReportHandle,
) {
    // Other routes are untouched.
    let other = if other_path == "/" {
        send(addr, request("GET", "/")).await
    } else {
        send(addr, post(other_path, "application/grpc", Bytes::new())).await
    };
    assert_eq!(other.status, StatusCode::OK, "{other:?}");
    assert_eq!(other.body, "hello");

    let table: Vec<(&str, Request<Full<Bytes>>, StatusCode, usize)> = vec![
        (
            "legacy report-uri",
            post(
                "/csp-report",
                "application/csp-report",
                legacy("https://s.example/a", "script-src-elem", "inline"),
            ),
            StatusCode::NO_CONTENT,
            1,
        ),
        (
            "Reporting API batch",
            post(
                "/csp-report",
                "application/reports+json",
                reporting_api("https://s.example/b", 3),
            ),
            StatusCode::NO_CONTENT,
            3,
        ),
        (
            "content type with parameters",
            post(
                "/csp-report",
                "Application/JSON; charset=utf-8",
                legacy("https://s.example/c", "img-src", "data"),
            ),
            StatusCode::NO_CONTENT,
            1,
        ),
        (
            "not JSON: 400, still kept as invalid",
            post("/csp-report", "application/csp-report", "<html>oops"),
            StatusCode::BAD_REQUEST,
            1,
        ),
        (
            "extension noise: 204, filtered",
            post(
                "/csp-report",
                "application/csp-report",
                legacy("https://s.example/d", "script-src", "chrome-extension"),
            ),
            StatusCode::NO_CONTENT,
            0,
        ),
        (
            "wrong type",
            post("/csp-report", "text/plain", "{}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            0,
        ),
        (
            "no type",
            request("POST", "/csp-report"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            0,
        ),
        (
            "GET",
            request("GET", "/csp-report"),
            StatusCode::METHOD_NOT_ALLOWED,
            0,
        ),
        (
            "PUT",
            request("PUT", "/csp-report"),
            StatusCode::METHOD_NOT_ALLOWED,
            0,
        ),
        (
            "too large, with Content-Length",
            post("/csp-report", "application/csp-report", vec![b' '; 5000]),
            StatusCode::PAYLOAD_TOO_LARGE,
            0,
        ),
    ];
    let mut expected = 0;
    for (name, req, status, reports) in table {
        let answer = send(addr, req).await;
        assert_eq!(answer.status, status, "{name}: {answer:?}");
        if status.is_client_error() {
            assert!(!answer.body.trim().is_empty(), "{name}: a 4xx says why");
        }
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(answer.headers["allow"], "POST, OPTIONS", "{name}");
        }
        expected += reports;
        handle.flush().await;
        assert_eq!(
            memory.total(),
            expected as u64,
            "{name}: reports at the sink"
        );
    }

    let too_large = Request::post("/csp-report")
        .header("host", "127.0.0.1")
        .header("content-type", "application/csp-report")
        .body(chunked_body(8192))
        .unwrap();
    assert_eq!(
        send(addr, too_large).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let slow = Request::post("/csp-report")
        .header("host", "127.0.0.1")
        .header("content-type", "application/csp-report")
        .body(slow_body(Duration::from_secs(3)))
        .unwrap();
    let answer = send(addr, slow).await;
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT, "{answer:?}");

    // Cross-origin Reporting API: the preflight, then the upload, as Chromium sends them.
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/csp-report")
        .header("host", "127.0.0.1")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer: Answer = send(addr, preflight).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.headers["access-control-allow-origin"], "*");
    assert_eq!(
        answer.headers["access-control-allow-headers"],
        "content-type"
    );
    assert!(
        answer.headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(answer.headers.contains_key("access-control-max-age"));
    let mut upload = post(
        "/csp-report",
        "application/reports+json",
        reporting_api("https://shop.example/", 2),
    );
    upload
        .headers_mut()
        .insert("origin", "https://shop.example".parse().unwrap());
    let answer = send(addr, upload).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        answer.headers["access-control-allow-origin"], "*",
        "Firefox resends without it"
    );
    expected += 2;

    handle.flush().await;
    let reports = memory.reports();
    assert_eq!(reports.len(), expected);
    assert_eq!(reports[0].format, WireFormat::Legacy);
    assert_eq!(
        reports[0].user_agent.as_deref(),
        Some("integration-test/1.0")
    );
    assert_eq!(reports[1].format, WireFormat::ReportingApi);
    assert_eq!(
        reports[1].user_agent.as_deref(),
        Some("Mozilla/5.0 test"),
        "the report's own UA wins"
    );
    let unparsed = reports
        .iter()
        .find(|r| r.format == WireFormat::Unparsed)
        .unwrap();
    assert_eq!(unparsed.raw, "<html>oops");
    assert!(!unparsed.is_valid());

    let stats = handle.stats();
    assert_eq!(stats.accepted, expected as u64);
    assert_eq!(stats.filtered, 1);
    assert_eq!(stats.invalid, 1);
    assert_eq!(stats.sinks[0].delivered, expected as u64);
    assert_eq!(stats.sinks[0].dropped, 0);
}

#[tokio::test]
async fn axum_router() {
    let memory = MemorySink::new();
    let layer = layer(&memory).build().unwrap();
    let handle = layer.handle();
    let addr = axum_server(layer).await;
    check_server(addr, "/", &memory, &handle).await;
}

#[tokio::test]
async fn hyper_server_with_tower_service() {
    let memory = MemorySink::new();
    let layer = layer(&memory).build().unwrap();
    let handle = layer.handle();
    let addr = hyper_server(layer).await;
    check_server(addr, "/", &memory, &handle).await;
}

#[tokio::test]
async fn tonic_server_with_http1() {
    let memory = MemorySink::new();
    let layer = layer(&memory).build().unwrap();
    let handle = layer.handle();
    let addr = tonic_server(layer).await;
    check_server(addr, "/demo.Echo/Say", &memory, &handle).await;
}

#[tokio::test]
async fn cors_origin_list() {
    let memory = MemorySink::new();
    let layer = layer(&memory)
        .cors(tower_csp_reports::Cors::origins(["https://shop.example"]).unwrap())
        .build()
        .unwrap();
    let addr = axum_server(layer).await;
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/csp-report")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let allowed = send(addr, preflight("https://shop.example")).await;
    assert_eq!(allowed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(allowed.headers["vary"], "origin");
    let denied = send(addr, preflight("https://evil.example")).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(!denied.headers.contains_key("access-control-allow-origin"));
    // A plain OPTIONS is not a preflight.
    let plain = send(addr, request("OPTIONS", "/csp-report")).await;
    assert_eq!(plain.status, StatusCode::NO_CONTENT);
    assert_eq!(plain.headers["allow"], "POST, OPTIONS");
}

#[tokio::test]
async fn inline_dispatch_delivers_before_answering() {
    let memory = MemorySink::new();
    let layer = layer(&memory)
        .dispatch(tower_csp_reports::Dispatch::Inline)
        .build()
        .unwrap();
    let addr = axum_server(layer).await;
    let answer = send(
        addr,
        post(
            "/csp-report",
            "application/csp-report",
            legacy("https://s.example/", "img-src", "data"),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    // No flush: inline delivery finished before the answer was sent.
    assert_eq!(memory.total(), 1);
    assert!(answer.body.is_empty());
}

#[tokio::test]
async fn rate_limit_per_client_behind_a_trusted_proxy_and_sampling() {
    use axum::extract::ConnectInfo;
    use tower_csp_reports::client_ip::forwarded_for_with;
    use tower_csp_reports::{RateLimit, Sampling};

    let memory = MemorySink::new();
    let client_ip = forwarded_for_with(["127.0.0.0/8"], |parts| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip())
    })
    .unwrap();
    let layer = layer(&memory)
        .client_ip(client_ip)
        .rate_limit(RateLimit::per_client(3, Duration::from_secs(3600)).unwrap())
        .sampling(Sampling::new(2, 3).unwrap())
        .build()
        .unwrap();
    let handle = layer.handle();
    let app = axum::Router::new().layer(layer);
    let (listener, addr) = listener().await;
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let from = |client: &str| {
        let mut request = post(
            "/csp-report",
            "application/csp-report",
            legacy("https://s.example/", "img-src", "data"),
        );
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        request
    };
    for _ in 0..3 {
        assert_eq!(
            send(addr, from("198.51.100.1")).await.status,
            StatusCode::NO_CONTENT
        );
    }
    let limited = send(addr, from("198.51.100.1")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    // Another client behind the same proxy has its own allowance.
    for _ in 0..3 {
        assert_eq!(
            send(addr, from("198.51.100.2")).await.status,
            StatusCode::NO_CONTENT
        );
    }
    handle.flush().await;
    let stats = handle.stats();
    assert_eq!(stats.rate_limited, 1);
    // Six reports of one violation: the first two, then one in three (indexes 2 and 5).
    assert_eq!((stats.received, stats.sampled, stats.accepted), (6, 2, 4));
    assert_eq!(memory.total(), 4);
    // The limit counted each full address; the reports keep only their network.
    let ips: Vec<String> = memory
        .reports()
        .iter()
        .map(|r| r.client_ip.unwrap().to_string())
        .collect();
    assert_eq!(ips, ["198.51.100.0"; 4]);
}

#[tokio::test]
async fn a_filter_sees_the_request_as_sent() {
    use std::sync::{Arc, Mutex};
    use tower_csp_reports::ContentType;
    use tower_csp_reports::filter::{RequestFacts, filter_fn};

    type Seen = (String, Option<String>, Option<String>, Option<ContentType>);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = Arc::clone(&seen);
    let memory = MemorySink::new();
    let layer = layer(&memory)
        .paths(["/csp-report", "/other-reports"])
        // Keeps reports sent to one path only, and notes what it was shown.
        .filter(filter_fn(move |_: &_, facts: &RequestFacts<'_>| {
            record.lock().unwrap().push((
                facts.path.to_owned(),
                facts.user_agent.as_deref().map(str::to_owned),
                facts.origin.as_deref().map(str::to_owned),
                facts.content_type,
            ));
            facts.path == "/csp-report"
        }))
        .build()
        .unwrap();
    let handle = layer.handle();
    let addr = axum_server(layer).await;
    let body = || legacy("https://s.example/", "img-src", "data");
    let mut plain = post("/csp-report", "application/csp-report", body());
    plain
        .headers_mut()
        .insert("user-agent", "Mozilla/5.0 (X11)".parse().unwrap());
    let mut odd = post("/other-reports", "application/json", body());
    let headers = odd.headers_mut();
    headers.insert("user-agent", "tab\there".parse().unwrap());
    headers.insert(
        "origin",
        http::HeaderValue::from_bytes(b"https://\xe2\x80\xaes.example").unwrap(),
    );
    for request in [plain, odd] {
        assert_eq!(send(addr, request).await.status, StatusCode::NO_CONTENT);
    }
    handle.flush().await;

    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                "/csp-report".to_owned(),
                Some("Mozilla/5.0 (X11)".to_owned()),
                None,
                Some(ContentType::CspReport),
            ),
            (
                "/other-reports".to_owned(),
                Some(r"tab\there".to_owned()),
                Some(r"https://\u{202e}s.example".to_owned()),
                Some(ContentType::Json),
            ),
        ]
    );
    // The legacy report has no user agent of its own: it takes the request's.
    let stored = memory.reports();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
}

#[tokio::test]
async fn the_filter_and_the_sinks_see_no_query_and_no_full_address_unless_asked() {
    use std::net::IpAddr;
    use std::sync::{Arc, Mutex};
    use tower_csp_reports::Privacy;
    use tower_csp_reports::filter::{RequestFacts, filter_fn};
    use tower_csp_reports::privacy::ClientIpPrivacy;

    type Seen = (Option<String>, Option<IpAddr>);
    let body = || {
        legacy(
            "https://s.example/reset?token=SECRET#part",
            "img-src",
            "https://cdn.example/a.png?uid=SECRET",
        )
    };
    let cases = [
        (
            Privacy::default(),
            Some("https://s.example/reset"),
            Some("198.51.100.0"),
        ),
        (
            Privacy::default().client_ip(ClientIpPrivacy::Off),
            Some("https://s.example/reset"),
            None,
        ),
        (
            Privacy::off(),
            Some("https://s.example/reset?token=SECRET#part"),
            Some("198.51.100.23"),
        ),
    ];
    for (privacy, document, ip) in cases {
        let ip: Option<IpAddr> = ip.map(|ip| ip.parse().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = Arc::clone(&seen);
        let memory = MemorySink::new();
        let layer = layer(&memory)
            // As a proxy would tell it.
            .client_ip(|_| Some(IpAddr::from([198, 51, 100, 23])))
            .privacy(privacy)
            .filter(filter_fn(move |report: &_, facts: &RequestFacts<'_>| {
                let report: &tower_csp_reports::Report = report;
                record.lock().unwrap().push((
                    report.document_uri.as_deref().map(str::to_owned),
                    facts.client_ip,
                ));
                true
            }))
            .build()
            .unwrap();
        let handle = layer.handle();
        let addr = hyper_server(layer).await;
        let answer = send(addr, post("/csp-report", "application/csp-report", body())).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{privacy:?}");
        handle.flush().await;

        assert_eq!(
            *seen.lock().unwrap(),
            [(document.map(str::to_owned), ip)],
            "{privacy:?}"
        );
        let stored = memory.reports();
        let [report] = &stored[..] else {
            panic!("{stored:?}")
        };
        assert_eq!(report.document_uri.as_deref(), document, "{privacy:?}");
        assert_eq!(report.client_ip, ip, "{privacy:?}");
        let secret_kept = report.raw.contains("SECRET");
        assert_eq!(secret_kept, privacy == Privacy::off(), "{}", report.raw);
        handle.shutdown().await;
    }
}
