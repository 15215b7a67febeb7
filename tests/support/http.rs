//! A small HTTP/1.1 client over a real socket, for the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An answer, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// Sends one request on a new connection and reads the whole answer.
pub async fn send<B>(addr: SocketAddr, request: Request<B>) -> Answer
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("send request");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("read body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A `POST` with a content type and a body.
pub fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", content_type)
        .header("user-agent", "integration-test/1.0")
        .body(Full::new(body.into()))
        .expect("request")
}

/// A body-less request.
pub fn request(method: &str, path: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// A legacy `report-uri` body.
pub fn legacy(document: &str, directive: &str, blocked: &str) -> String {
    format!(
        r#"{{"csp-report":{{"document-uri":"{document}","violated-directive":"{directive}","effective-directive":"{directive}","blocked-uri":"{blocked}","disposition":"enforce"}}}}"#
    )
}

/// A Reporting API body of `n` violations on one document.
pub fn reporting_api(document: &str, n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"csp-violation","age":{i},"url":"{document}","user_agent":"Mozilla/5.0 test","body":{{"documentURL":"{document}","blockedURL":"https://img{i}.example/x.png","effectiveDirective":"img-src","disposition":"enforce","statusCode":200}}}}"#
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}
