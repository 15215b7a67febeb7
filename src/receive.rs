//! Answering a request to a report path: method, type and size checks, a bounded read,
//! parsing, filtering, and handing the reports to the dispatcher.

use std::borrow::Cow;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use bytestring::ByteString;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::cors::ALLOW;
use crate::filter::RequestFacts;
use crate::future::ResponseFuture;
use crate::handle::Counters;
use crate::layer::Shared;
use crate::parse::{clean, cleaned, parse_body};
use crate::report::{ContentType, Report};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) fn receive<F, B>(shared: &Arc<Shared>, request: Request<B>) -> ResponseFuture<F>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let counters = &shared.counters;
    Counters::add(&counters.requests, 1);
    let headers = request.headers();
    if request.method() == Method::OPTIONS {
        return ResponseFuture::ready(preflight(shared, headers));
    }
    if request.method() != Method::POST {
        let mut response = answer(
            shared,
            headers,
            StatusCode::METHOD_NOT_ALLOWED,
            "reports are sent with POST",
        );
        response.headers_mut().insert(header::ALLOW, ALLOW);
        return ResponseFuture::ready(response);
    }
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| ContentType::from_header(v.as_bytes()))
    else {
        return ResponseFuture::ready(answer(
            shared,
            headers,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type application/csp-report, application/reports+json or application/json",
        ));
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > shared.max_body_size as u64) {
        return ResponseFuture::ready(too_large(shared, headers));
    }
    let (parts, body) = request.into_parts();
    let client_ip = (shared.client_ip)(&parts);
    if let (Some(limiter), Some(ip)) = (&shared.rate_limiter, client_ip) {
        if let Err(wait) = limiter.check(ip) {
            Counters::add(&shared.counters.rate_limited, 1);
            let mut response = answer(
                shared,
                &parts.headers,
                StatusCode::TOO_MANY_REQUESTS,
                "too many reports from this client",
            );
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return ResponseFuture::ready(response);
        }
    }
    let shared = Arc::clone(shared);
    // The future is boxed; it holds only what reading the body needs, so the box stays small.
    ResponseFuture::report(Box::pin(async move {
        // A report body nearly always arrives with its headers: read what is there first,
        // and start the timer only when the rest has yet to come.
        let mut collect = std::pin::pin!(Limited::new(body, shared.max_body_size).collect());
        let read = match std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await {
            Poll::Ready(read) => Ok(read),
            Poll::Pending => tokio::time::timeout(shared.body_timeout, collect).await,
        };
        let body = match read {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
                return too_large(&shared, &parts.headers);
            }
            Ok(Err(_)) => {
                return answer(
                    &shared,
                    &parts.headers,
                    StatusCode::BAD_REQUEST,
                    "the body could not be read",
                );
            }
            Err(_) => {
                return answer(
                    &shared,
                    &parts.headers,
                    StatusCode::REQUEST_TIMEOUT,
                    "the body took too long to arrive",
                );
            }
        };
        let (response, inline) = accept(&shared, &parts, client_ip, content_type, &body);
        if let Some(reports) = inline {
            // Boxed: only this mode waits here, and the common future stays small.
            Box::pin(shared.dispatcher().deliver_inline(reports)).await;
        }
        response
    }))
}

/// Parses, filters and hands on a body's reports; returns the answer, and the reports when
/// they are to be delivered before it.
fn accept(
    shared: &Shared,
    parts: &http::request::Parts,
    client_ip: Option<std::net::IpAddr>,
    content_type: ContentType,
    body: &[u8],
) -> (Response<Bytes>, Option<Arc<Vec<Report>>>) {
    let max_field = shared.limits.max_field_length;
    let header_text = |name| {
        parts.headers.get(name).map(|v: &HeaderValue| {
            let bytes = v.as_bytes();
            match std::str::from_utf8(bytes) {
                Ok(text) => cleaned(text, max_field),
                Err(_) => Cow::Owned(clean(&String::from_utf8_lossy(bytes), max_field)),
            }
        })
    };
    let facts = RequestFacts {
        user_agent: header_text(header::USER_AGENT),
        client_ip,
        origin: header_text(header::ORIGIN),
        path: parts.uri.path(),
        content_type: Some(content_type),
    };
    let mut parsed = parse_body(body, content_type, &shared.limits);
    let counters = &shared.counters;
    Counters::add(&counters.received, parsed.reports.len());
    Counters::add(&counters.truncated, parsed.truncated);
    let mut invalid = 0;
    for report in &mut parsed.reports {
        invalid += usize::from(!report.is_valid());
        if report.user_agent.is_none() {
            report.user_agent = facts.user_agent.as_deref().map(ByteString::from);
        }
        report.client_ip = facts.client_ip;
    }
    Counters::add(&counters.invalid, invalid);
    let received = parsed.reports.len();
    parsed
        .reports
        .retain(|report| shared.filter.keep(report, &facts));
    Counters::add(&counters.filtered, received - parsed.reports.len());
    if let Some(sampler) = &shared.sampler {
        let kept = parsed.reports.len();
        parsed
            .reports
            .retain(|report| sampler.keep(report.fingerprint));
        Counters::add(&counters.sampled, kept - parsed.reports.len());
    }
    Counters::add(&counters.accepted, parsed.reports.len());
    let inline = shared.dispatcher().dispatch(parsed.reports);
    let response = match parsed.rejection {
        Some(reason) => answer(shared, &parts.headers, StatusCode::BAD_REQUEST, reason),
        None => answer(shared, &parts.headers, StatusCode::NO_CONTENT, ""),
    };
    (response, inline)
}

fn too_large(shared: &Shared, headers: &HeaderMap) -> Response<Bytes> {
    let reason = format!("the body is larger than {} bytes", shared.max_body_size);
    answer(shared, headers, StatusCode::PAYLOAD_TOO_LARGE, &reason)
}

/// The layer's own answer, with `Access-Control-Allow-Origin` for allowed origins: Firefox
/// treats a report upload answered without it as failed and sends it again.
fn answer(
    shared: &Shared,
    request: &HeaderMap,
    status: StatusCode,
    reason: &str,
) -> Response<Bytes> {
    if status.is_client_error() {
        Counters::add(&shared.counters.rejected, 1);
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
    if let (Some(cors), Some(origin)) = (&shared.cors, request.get(header::ORIGIN)) {
        if cors.allows(origin.as_bytes()) {
            cors.allow_origin(origin, headers);
        }
    }
    response
}

fn preflight(shared: &Shared, request: &HeaderMap) -> Response<Bytes> {
    let origin = request.get(header::ORIGIN);
    let is_preflight =
        origin.is_some() && request.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !is_preflight {
        let mut response = answer(shared, request, StatusCode::NO_CONTENT, "");
        response.headers_mut().insert(header::ALLOW, ALLOW);
        return response;
    }
    let origin = origin.expect("checked above");
    match &shared.cors {
        Some(cors) if cors.allows(origin.as_bytes()) => {
            let mut response = answer(shared, request, StatusCode::NO_CONTENT, "");
            cors.preflight(origin, response.headers_mut());
            response
        }
        Some(_) => answer(
            shared,
            request,
            StatusCode::FORBIDDEN,
            "this origin may not send reports here",
        ),
        None => answer(
            shared,
            request,
            StatusCode::FORBIDDEN,
            "cross-origin reports are not accepted here",
        ),
    }
}
