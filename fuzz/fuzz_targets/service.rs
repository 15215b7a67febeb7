//! The whole service in-process: arbitrary method, path, headers and body through
//! `CspReportLayer`, with sinks, filter, rate limit and sampling all on.
//!
//! The input reads like an HTTP/1 request, so seeds are readable and mutations stay useful:
//! a first line `METHOD PATH`, header lines `name: value` up to an empty line, then the body.
//! Two made-up headers steer the harness: `x-fuzz-chunk: N` splits the body into frames of
//! N bytes, and `x-fuzz-peer: ADDR` sets the client's socket address.
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tower::{Layer, ServiceExt};
use tower_csp_reports::sink::{MemorySink, TracingSink};
use tower_csp_reports::{
    CspReportHandle, CspReportLayer, Dispatch, RateLimit, Sampling, client_ip,
};

const MAX_BODY: usize = 4096;

/// A request body delivered in the frames the input asks for.
struct Frames(VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
    }
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    layer: CspReportLayer,
    handle: CspReportHandle,
    memory: MemorySink,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // Reports go through a real formatter, so the tracing sink's event is built in full.
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        let memory = MemorySink::with_capacity(64);
        let client_ip = client_ip::forwarded_for(["10.0.0.0/8", "::1"]).unwrap();
        let layer = CspReportLayer::builder()
            .max_body_size(MAX_BODY)
            
            .max_reports_per_request(8)
            
            .max_field_length(64)
            
            .client_ip(client_ip)
            .rate_limit(
                RateLimit::per_client(50, Duration::from_secs(1))
                    .unwrap()
                    .max_clients(16),
            )
            .sampling(Sampling::new(3, 2).unwrap())
            .dispatch(Dispatch::Inline)
            .sink(memory.clone())
            .sink(TracingSink::new())
            .build()
            .unwrap();
        let handle = layer.handle();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        Harness {
            runtime,
            layer,
            handle,
            memory,
        }
    })
}

struct Input {
    request: Request<Frames>,
    body_len: usize,
    declared: Option<u64>,
}

fn decode(data: &[u8]) -> Input {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|&b| b == b'\n');
    let first = lines.next().unwrap_or_default();
    let mut words = first.splitn(2, |&b| b == b' ');
    let method = Method::from_bytes(words.next().unwrap_or_default()).unwrap_or(Method::POST);
    let uri = std::str::from_utf8(words.next().unwrap_or_default())
        .ok()
        .and_then(|p| p.parse::<Uri>().ok())
        .unwrap_or_else(|| Uri::from_static("/csp-report"));
    let mut request = Request::builder().method(method).uri(uri);
    let mut chunk = body.len().max(1);
    let mut peer = None;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        if name == "x-fuzz-chunk" {
            let n = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            chunk = n.filter(|&n| n > 0).unwrap_or(chunk);
        } else if name == "x-fuzz-peer" {
            peer = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<IpAddr>().ok());
        } else if let Ok(value) = HeaderValue::from_bytes(value) {
            request = request.header(name, value);
        }
    }
    let frames = body.chunks(chunk).map(Bytes::copy_from_slice).collect();
    let mut request = request.body(Frames(frames)).unwrap();
    if let Some(ip) = peer {
        request.extensions_mut().insert(SocketAddr::new(ip, 443));
    }
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Input {
        request,
        body_len: body.len(),
        declared,
    }
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Input {
        request,
        body_len,
        declared,
    } = decode(data);
    let method = request.method().clone();
    let is_report_path = request.uri().path() == "/csp-report";
    let before = h.handle.stats();
    let stored_before = h.memory.total();

    let inner = tower::service_fn(|_: Request<Frames>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"inner"))))
    });
    let (status, body) = h.runtime.block_on(async {
        let response = h.layer.layer(inner).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });

    let after = h.handle.stats();
    if !is_report_path {
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"inner"[..]));
        assert_eq!(after.requests, before.requests);
        return;
    }
    let expected = [204, 400, 403, 405, 413, 415, 429];
    assert!(expected.contains(&status.as_u16()), "{status}");
    assert!(body.len() < 200, "a short answer");
    if method != Method::POST {
        assert!(
            matches!(status.as_u16(), 204 | 403 | 405),
            "{method} got {status}"
        );
        assert_eq!(after.received, before.received);
    }
    if matches!(status.as_u16(), 204 | 400) && method == Method::POST {
        assert!(body_len <= MAX_BODY && declared.is_none_or(|d| d <= MAX_BODY as u64));
    }
    if method == Method::POST && body_len > MAX_BODY {
        assert!(matches!(status.as_u16(), 413 | 415 | 429), "{status}");
    }
    // Every report received is filtered, sampled out or accepted, and the accepted ones all
    // reached the sink (inline dispatch: before the answer).
    let delta = |a: u64, b: u64| a - b;
    let received = delta(after.received, before.received);
    let parts = delta(after.filtered, before.filtered)
        + delta(after.sampled, before.sampled)
        + delta(after.accepted, before.accepted);
    assert_eq!(received, parts);
    assert_eq!(
        h.memory.total() - stored_before,
        delta(after.accepted, before.accepted)
    );
    for (a, b) in after.sinks.iter().zip(&before.sinks) {
        assert_eq!((a.dropped, a.failed), (b.dropped, b.failed), "{}", a.name);
    }
});
