//! [`CspReport`]: the middleware service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::ResponseBody;
use super::core::Core;
use super::future::ResponseFuture;
use super::receive::receive;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service made by [`CspReportLayer`](crate::CspReportLayer): it answers report
/// requests itself and passes everything else to `S`.
#[derive(Clone)]
pub struct CspReport<S> {
    inner: S,
    core: Arc<Core>,
}

impl<S> CspReport<S> {
    pub(crate) fn new(inner: S, core: Arc<Core>) -> Self {
        Self { inner, core }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, taken out.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for CspReport<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CspReport")
            .field("inner", &self.inner)
            .field("layer", &self.core)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CspReport<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self.core.config().is_report_path(request.uri().path()) {
            receive(&self.core, request)
        } else {
            ResponseFuture::inner(self.inner.call(request))
        }
    }
}
