//! Answering a request to a report path: method, type and size checks, a bounded read,
//! parsing, filtering, and admission to the sinks.

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes};
use bytestring::ByteString;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::answer::{answer, method_not_allowed, preflight, rate_limited, too_large, unavailable};
use super::core::{BUDGET_UNIT, Core};
use super::future::ResponseFuture;
use crate::dispatch::Admission;
use crate::filter::RequestFacts;
use crate::metrics::Started;
use crate::parse::{clean, cleaned, parse_bytes};
use crate::report::ContentType;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// After an early answer, how much of the rest of the body is read and thrown away, and for
/// how long, before the connection is closed: a client that writes its whole body before it
/// reads (Python's `http.client`, many scripts) would otherwise meet a reset instead of the
/// answer, as nginx's lingering close also knows.
const DISCARD_BYTES: usize = 8 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

pub(crate) fn receive<F, B>(core: &Arc<Core>, request: Request<B>) -> ResponseFuture<F>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let started = Started::now();
    core.counters().request();
    let (parts, body) = request.into_parts();
    let checked = match check(core, &parts) {
        Ok(checked) => checked,
        Err(mut early) => {
            discard(parts.version, body, &mut early);
            core.counters().answered(started);
            return ResponseFuture::ready(early);
        }
    };
    let core = Arc::clone(core);
    // The future is boxed; it holds only what reading the body needs, so the box stays small.
    ResponseFuture::report(Box::pin(async move {
        let response = read_and_accept(&core, parts, body, checked).await;
        core.counters().answered(started);
        response
    }))
}

/// Reads the body of a request that passed the checks, within the budget and the limits,
/// and accepts its reports; returns the answer.
async fn read_and_accept<B>(
    core: &Arc<Core>,
    parts: http::request::Parts,
    body: B,
    checked: Checked,
) -> Response<Bytes>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let Checked {
        content_type,
        declared,
        client_ip,
    } = checked;
    let config = core.config();
    // Bodies in flight are held to a budget, so many large ones at once cannot exhaust
    // memory: a body of unknown length counts as the largest allowed.
    let size = declared.map_or(config.max_body_size, |len| len as usize);
    let units = u32::try_from(size.div_ceil(BUDGET_UNIT).max(1)).unwrap_or(u32::MAX);
    let Ok(_permit) = core.body_budget().try_acquire_many(units) else {
        core.counters().busy();
        let mut response = unavailable(
            core,
            &parts.headers,
            "too many reports are arriving at once; send them again later",
        );
        discard(parts.version, body, &mut response);
        return response;
    };
    // Pinned in a box so the rest can still be read and thrown away after a `413`.
    let mut body = Box::pin(body);
    let body = match read(&mut body, config.max_body_size, config.body_timeout).await {
        Ok(bytes) => bytes,
        Err(Unread::TooLarge) => {
            let mut response = too_large(core, &parts.headers);
            discard(parts.version, body, &mut response);
            return response;
        }
        Err(Unread::Broken) => {
            return answer(
                core,
                &parts.headers,
                StatusCode::BAD_REQUEST,
                "the body could not be read",
            );
        }
        Err(Unread::TooSlow) => {
            return answer(
                core,
                &parts.headers,
                StatusCode::REQUEST_TIMEOUT,
                "the body took too long to arrive",
            );
        }
    };
    accept(core, &parts, client_ip, content_type, body).await
}

/// What the headers say of a request that passed the checks made before its body is read.
struct Checked {
    content_type: ContentType,
    declared: Option<u64>,
    client_ip: Option<std::net::IpAddr>,
}

/// The checks made before the body is read: method, type, declared size, rate limit. An
/// `Err` is the answer.
fn check(core: &Core, parts: &http::request::Parts) -> Result<Checked, Box<Response<Bytes>>> {
    let headers = &parts.headers;
    if parts.method == Method::OPTIONS {
        return Err(Box::new(preflight(core, headers)));
    }
    if parts.method != Method::POST {
        return Err(Box::new(method_not_allowed(core, headers)));
    }
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| ContentType::from_header(v.as_bytes()))
    else {
        return Err(Box::new(answer(
            core,
            headers,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type application/csp-report, application/reports+json or application/json",
        )));
    };
    let config = core.config();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.max_body_size as u64) {
        return Err(Box::new(too_large(core, headers)));
    }
    let client_ip = (config.client_ip)(parts);
    if let (Some(limiter), Some(ip)) = (core.limiter(), client_ip)
        && let Err(wait) = limiter.check(ip)
    {
        return Err(Box::new(rate_limited(core, headers, wait)));
    }
    Ok(Checked {
        content_type,
        declared,
        client_ip,
    })
}

/// Why a body was not read whole.
enum Unread {
    TooLarge,
    Broken,
    TooSlow,
}

/// Reads a body whole, within `max` bytes and `timeout`.
async fn read<B>(body: &mut Pin<Box<B>>, max: usize, timeout: Duration) -> Result<Bytes, Unread>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut collect = std::pin::pin!(Limited::new(body, max).collect());
    // A report body nearly always arrives with its headers: read what is there first, and
    // start the timer only when the rest has yet to come.
    let read = match std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await {
        Poll::Ready(read) => read,
        Poll::Pending => tokio::time::timeout(timeout, collect)
            .await
            .map_err(|_| Unread::TooSlow)?,
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(Unread::TooLarge),
        Err(_) => Err(Unread::Broken),
    }
}

/// Sends an early answer while what is left of the body is read and thrown away, within
/// bounds, over HTTP/1: the connection is then closed. HTTP/2 streams need no such care.
fn discard<B>(version: Version, body: B, response: &mut Response<Bytes>)
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    if body.is_end_stream() || version > Version::HTTP_11 {
        return;
    }
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut body = std::pin::pin!(body);
            let mut left = DISCARD_BYTES;
            let _ = tokio::time::timeout(DISCARD_TIME, async {
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    match left.checked_sub(data.remaining()) {
                        Some(rest) => left = rest,
                        None => return,
                    }
                }
            })
            .await;
        });
    }
}

/// Parses, filters and hands on a body's reports; returns the answer.
async fn accept(
    core: &Core,
    parts: &http::request::Parts,
    client_ip: Option<std::net::IpAddr>,
    content_type: ContentType,
    body: Bytes,
) -> Response<Bytes> {
    let config = core.config();
    let counters = core.counters();
    let mut parsed = parse_bytes(body, content_type, &config.limits);
    // The filter sees the address as it will be kept.
    let client_ip = config.privacy.ip(client_ip);
    {
        let max_field = config.limits.max_field_length;
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
        let mut invalid = 0;
        for report in &mut parsed.reports {
            invalid += usize::from(!report.is_valid());
            if report.user_agent.is_none() {
                report.user_agent = facts.user_agent.as_deref().map(ByteString::from);
            }
            report.client_ip = facts.client_ip;
            config.privacy.apply_to_urls(report);
        }
        counters.received(parsed.reports.len(), invalid, parsed.truncated);
        let received = parsed.reports.len();
        parsed
            .reports
            .retain(|report| config.filter.keep(report, &facts));
        counters.filtered(received - parsed.reports.len());
    }
    if let Some(sampler) = core.sampler() {
        let kept = parsed.reports.len();
        parsed
            .reports
            .retain(|report| sampler.keep(report.fingerprint));
        counters.sampled(kept - parsed.reports.len());
    }
    let n = parsed.reports.len();
    let stored = match core
        .dispatcher()
        .admit(parsed.reports, config.admission_wait)
        .await
    {
        Admission::Queued => true,
        // Boxed: only this mode waits here, and the common future stays small.
        Admission::Inline(chunk) => Box::pin(core.dispatcher().deliver_inline(chunk)).await,
        Admission::Refused => {
            counters.rejected_overload(n);
            return unavailable(
                core,
                &parts.headers,
                "the reports cannot be stored now; send them again later",
            );
        }
    };
    counters.accepted(n);
    if !stored {
        return unavailable(core, &parts.headers, "the reports could not be stored");
    }
    match parsed.rejection {
        Some(reason) => answer(core, &parts.headers, StatusCode::BAD_REQUEST, reason),
        None => answer(core, &parts.headers, StatusCode::NO_CONTENT, ""),
    }
}
