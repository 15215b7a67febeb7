//! Health, readiness and metrics, beside the report paths (and on the metrics listener).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_service::Service;

use super::health::Readiness;

/// Where each answer is, and what it needs.
pub(super) struct Routes {
    pub(super) healthz: String,
    pub(super) readyz: String,
    pub(super) readiness: Arc<Readiness>,
    /// `Some`: `/metrics` is served here.
    pub(super) metrics: Option<PrometheusHandle>,
}

#[derive(Clone)]
pub(super) struct Endpoints {
    routes: Arc<Routes>,
}

impl Endpoints {
    pub(super) fn new(routes: Routes) -> Self {
        Self {
            routes: Arc::new(routes),
        }
    }
}

/// The path Prometheus scrapes.
pub(super) const METRICS_PATH: &str = "/metrics";

type Answer = Response<Full<Bytes>>;

impl Service<Request<Incoming>> for Endpoints {
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        let routes = Arc::clone(&self.routes);
        let path = request.uri().path();
        if path == routes.readyz {
            return Box::pin(async move {
                Ok(if routes.readiness.ready().await {
                    text(StatusCode::OK, "ready\n")
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the store does not answer\n",
                    )
                })
            });
        }
        let answer = if path == routes.healthz {
            text(StatusCode::OK, "ok\n")
        } else if let (METRICS_PATH, Some(metrics)) = (path, &routes.metrics) {
            let mut answer = text(StatusCode::OK, metrics.render());
            answer.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            answer
        } else {
            text(StatusCode::NOT_FOUND, "not found\n")
        };
        Box::pin(std::future::ready(Ok(answer)))
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
