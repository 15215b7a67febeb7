//! The layer's own answers: `204`, the `4xx` refusals with their one-line reason, `503` when
//! a required sink has no room, and CORS preflights.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::core::Core;
use crate::cors::ALLOW;

/// What `Retry-After` says when a required sink's queue is full: long enough for a store to
/// catch up with a burst, short enough that a browser that honours it comes back soon.
const OVERLOAD_RETRY_AFTER: u64 = 2;

/// An answer with `Access-Control-Allow-Origin` for allowed origins: Firefox treats a report
/// upload answered without it as failed and sends it again.
pub(crate) fn answer(
    core: &Core,
    request: &HeaderMap,
    status: StatusCode,
    reason: &str,
) -> Response<Bytes> {
    if status.is_client_error() {
        core.counters().rejected();
    }
    let mut response = Response::new(if reason.is_empty() {
        Bytes::new()
    } else {
        Bytes::from(format!("{reason}\n"))
    });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !reason.is_empty() {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    if let (Some(cors), Some(origin)) = (&core.config().cors, request.get(header::ORIGIN))
        && cors.allows(origin.as_bytes())
    {
        cors.allow_origin(origin, headers);
    }
    response
}

pub(crate) fn too_large(core: &Core, request: &HeaderMap) -> Response<Bytes> {
    let reason = format!(
        "the body is larger than {} bytes",
        core.config().max_body_size
    );
    answer(core, request, StatusCode::PAYLOAD_TOO_LARGE, &reason)
}

/// `429` with how long until the client's next request is allowed.
pub(crate) fn rate_limited(
    core: &Core,
    request: &HeaderMap,
    wait: std::time::Duration,
) -> Response<Bytes> {
    core.counters().rate_limited();
    let mut response = answer(
        core,
        request,
        StatusCode::TOO_MANY_REQUESTS,
        "too many reports from this client",
    );
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// `503` with `Retry-After`: the reports were not taken, and may be sent again.
pub(crate) fn unavailable(core: &Core, request: &HeaderMap, reason: &str) -> Response<Bytes> {
    let mut response = answer(core, request, StatusCode::SERVICE_UNAVAILABLE, reason);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(OVERLOAD_RETRY_AFTER));
    response
}

pub(crate) fn method_not_allowed(core: &Core, request: &HeaderMap) -> Response<Bytes> {
    let mut response = answer(
        core,
        request,
        StatusCode::METHOD_NOT_ALLOWED,
        "reports are sent with POST",
    );
    response.headers_mut().insert(header::ALLOW, ALLOW);
    response
}

pub(crate) fn preflight(core: &Core, request: &HeaderMap) -> Response<Bytes> {
    let origin = request.get(header::ORIGIN);
    let Some(origin) =
        origin.filter(|_| request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD))
    else {
        let mut response = answer(core, request, StatusCode::NO_CONTENT, "");
        response.headers_mut().insert(header::ALLOW, ALLOW);
        return response;
    };
    match &core.config().cors {
        Some(cors) if cors.allows(origin.as_bytes()) => {
            let mut response = answer(core, request, StatusCode::NO_CONTENT, "");
            cors.preflight(origin, response.headers_mut());
            response
        }
        Some(_) => answer(
            core,
            request,
            StatusCode::FORBIDDEN,
            "this origin may not send reports here",
        ),
        None => answer(
            core,
            request,
            StatusCode::FORBIDDEN,
            "cross-origin reports are not accepted here",
        ),
    }
}
