//! One accepted connection served by a tower service over hyper, for the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::error::Error;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;

/// Serves `stream` with `service` in HTTP/1 or HTTP/2, whichever the peer speaks, with
/// hyper's default settings, until the connection ends.
pub async fn serve<S, B>(stream: TcpStream, service: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    // A connection the peer breaks off (as the hostile tests do on purpose) ends in an error
    // that says nothing about the layer; the tests check the answers, not how it ended.
    let _ = Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
        .await;
}
