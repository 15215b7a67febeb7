//! Health and metrics, beside the report paths.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tower_csp_reports::CspReportHandle;
use tower_service::Service;

use crate::metrics;
use tower_csp_reports::sink::SmtpSink;

#[derive(Clone)]
pub(super) struct Endpoints {
    pub(super) handle: CspReportHandle,
    /// The mail sink, whose own counters say what reached the mail server.
    pub(super) mail: Option<SmtpSink>,
}

impl Service<Request<Incoming>> for Endpoints {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let (status, content_type, body) = match request.uri().path() {
            "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            "/metrics" => (
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics::render(
                    &self.handle.stats(),
                    self.mail.as_ref().map(SmtpSink::stats),
                ),
            ),
            _ => (
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found\n".to_owned(),
            ),
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(content_type),
        );
        std::future::ready(Ok(response))
    }
}
