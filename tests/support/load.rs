//! A bounded load of report requests over loopback, and the server that takes it.
#![allow(dead_code, unreachable_pub)]

#[path = "connection.rs"]
mod connection;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower::Layer;
use tower_csp_reports::CspReportLayer;

/// A server running the layer (HTTP/1 and HTTP/2) over an app that answers `app`.
pub struct Server {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Server {
    pub async fn start(layer: CspReportLayer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = layer.layer(tower::service_fn(
                    |_: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"app"))))
                    },
                ));
                tokio::spawn(connection::serve(stream, service));
            }
        });
        Self { addr, accept }
    }

    /// Stops accepting connections (those open are served to their end).
    pub fn stop_accepting(&self) {
        self.accept.abort();
    }
}

/// What a load sent and how it was answered.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub requests: usize,
    /// Reports in every request sent.
    pub reports_sent: usize,
    /// Reports in the requests answered 204.
    pub reports_answered_204: usize,
    /// Reports in the requests answered 503 (counted once per answer, resent or not).
    pub reports_answered_503: usize,
    /// Answers 503 without a `Retry-After` header.
    pub unavailable_without_retry_after: usize,
    /// Answers by status.
    pub statuses: BTreeMap<u16, usize>,
}

/// What a client does with a `503`: give up (what `report-uri` requests do), or send the
/// same body again after a pause, up to a number of times (what Chromium does with a
/// Reporting API batch).
#[derive(Debug, Clone, Copy)]
pub enum OnUnavailable {
    GiveUp,
    Resend { times: u32, after: Duration },
}

/// Sends `requests` requests over `connections` keep-alive HTTP/1.1 connections, each
/// connection waiting `pace` between its requests; request `i` carries `body(i)`: the text,
/// its content type and how many reports it holds. Stops by itself once all are answered.
pub async fn run<F>(
    addr: SocketAddr,
    requests: usize,
    connections: usize,
    pace: Duration,
    body: F,
) -> Outcome
where
    F: Fn(usize) -> (String, &'static str, usize) + Send + Sync + 'static,
{
    run_with(
        addr,
        requests,
        connections,
        pace,
        OnUnavailable::GiveUp,
        body,
    )
    .await
}

/// [`run`], with what the client does when it is answered `503`.
pub async fn run_with<F>(
    addr: SocketAddr,
    requests: usize,
    connections: usize,
    pace: Duration,
    on_unavailable: OnUnavailable,
    body: F,
) -> Outcome
where
    F: Fn(usize) -> (String, &'static str, usize) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let body = Arc::clone(&body);
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                let stream = TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .expect("handshake");
                tokio::spawn(connection);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return outcome;
                    }
                    let (text, content_type, reports) = body(i);
                    let text = Bytes::from(text);
                    outcome.reports_sent += reports;
                    let mut resends = 0;
                    loop {
                        let request = Request::post("/csp-report")
                            .header("host", "127.0.0.1")
                            .header("content-type", content_type)
                            .header("user-agent", "load/1.0")
                            .body(Full::new(text.clone()))
                            .unwrap();
                        sender.ready().await.expect("connection ready");
                        let response = sender.send_request(request).await.expect("an answer");
                        let status = response.status();
                        let retry_after = response.headers().contains_key("retry-after");
                        response.into_body().collect().await.expect("a body");
                        outcome.requests += 1;
                        *outcome.statuses.entry(status.as_u16()).or_default() += 1;
                        if status == StatusCode::NO_CONTENT {
                            outcome.reports_answered_204 += reports;
                        }
                        if status != StatusCode::SERVICE_UNAVAILABLE {
                            break;
                        }
                        outcome.reports_answered_503 += reports;
                        outcome.unavailable_without_retry_after += usize::from(!retry_after);
                        match on_unavailable {
                            OnUnavailable::Resend { times, after } if resends < times => {
                                resends += 1;
                                tokio::time::sleep(after).await;
                            }
                            _ => break,
                        }
                    }
                    if !pace.is_zero() {
                        tokio::time::sleep(pace).await;
                    }
                }
            })
        })
        .collect();
    let mut total = Outcome::default();
    for task in tasks {
        let outcome = task.await.unwrap();
        total.requests += outcome.requests;
        total.reports_sent += outcome.reports_sent;
        total.reports_answered_204 += outcome.reports_answered_204;
        total.reports_answered_503 += outcome.reports_answered_503;
        total.unavailable_without_retry_after += outcome.unavailable_without_retry_after;
        for (status, n) in outcome.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
    }
    total
}

/// A Reporting API batch of `n` violations for request `i`; every `noise`-th item (if any)
/// comes from a browser extension and every `bad`-th is invalid (a negative line number).
pub fn batch(i: usize, n: usize, noise: Option<usize>, bad: Option<usize>) -> String {
    let items: Vec<String> = (0..n)
        .map(|j| {
            let k = i * n + j;
            let blocked = if noise.is_some_and(|m| k.is_multiple_of(m)) {
                "chrome-extension".to_owned()
            } else {
                format!("https://cdn{}.example/lib.js", k % 97)
            };
            let line: i64 = if bad.is_some_and(|m| k % m == 1) { -1 } else { (k % 500) as i64 };
            format!(
                r#"{{"type":"csp-violation","age":{j},"url":"https://app.example/page/{}","user_agent":"Mozilla/5.0 load","body":{{"documentURL":"https://app.example/page/{}","blockedURL":"{blocked}","effectiveDirective":"script-src-elem","disposition":"enforce","statusCode":200,"sourceFile":"https://app.example/app.js","lineNumber":{line},"columnNumber":{}}}}}"#,
                k % 211,
                k % 211,
                j + 1,
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// The peak resident set size of this process so far, in KiB (Linux).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
