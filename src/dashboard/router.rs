//! The routes, the login in front of them, and the headers every answer carries.

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use http::StatusCode;
use http::header::{self, HeaderValue};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use super::auth::{login_form, login_submit, logout, require_login};
use super::export::export;
use super::pages::{detail, overview, reports, violations};
use super::state::Shared;
use super::style::stylesheet;

/// The dashboard's routes under its base path.
pub(crate) fn router(state: Shared) -> Router {
    let pages = Router::new()
        .route("/", get(overview::overview))
        .route("/violations", get(violations::list))
        .route("/violations/status", post(violations::set_status))
        .route("/violations/{fingerprint}", get(detail::detail))
        .route("/violations/{fingerprint}/note", post(detail::set_note))
        .route("/reports", get(reports::reports))
        .route("/invalid", get(reports::invalid))
        .route("/logout", post(logout))
        // Exports are compressed; pages are not: a page carries a CSRF token next to values
        // an attacker chose, which compression would let them guess (BREACH).
        .merge(
            Router::new()
                .route("/export/{name}", get(export))
                .layer(CompressionLayer::new()),
        )
        .route_layer(from_fn_with_state(state.clone(), require_login));
    let open = Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/style.css", get(stylesheet));
    let routes = pages
        .merge(open)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") });
    let csp = HeaderValue::try_from(policy(state.report_uri()))
        .expect("the report URI was checked at build time");
    let routes = routes
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            http::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            http::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state.clone());
    let base = state.link("");
    if base.is_empty() {
        routes
    } else {
        Router::new().nest(&base, routes)
    }
}

/// The pages' own policy: nothing but the dashboard's stylesheet, forms to itself, no
/// framing, and its violations reported to `report_uri`.
pub(crate) fn policy(report_uri: Option<&str>) -> String {
    let mut policy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                      frame-ancestors 'none'; base-uri 'none'"
        .to_owned();
    if let Some(uri) = report_uri {
        policy.push_str("; report-uri ");
        policy.push_str(uri);
    }
    policy
}
