//! The collector's service: tower-http's panic catching and response headers around the
//! report layer, in front of health and metrics.

use http::HeaderValue;
use http::header::X_CONTENT_TYPE_OPTIONS;
use tower_csp_reports::{CspReport, CspReportLayer};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer, DefaultResponseForPanic};
use tower_http::set_header::{SetResponseHeader, SetResponseHeaderLayer};
use tower_layer::Layer;

use super::endpoints::Endpoints;

/// What every connection calls.
pub(super) type Collector =
    CatchPanic<SetResponseHeader<CspReport<Endpoints>, HeaderValue>, DefaultResponseForPanic>;

/// The report layer in front of `endpoints`, inside the shared middleware.
pub(super) fn collector(layer: &CspReportLayer, endpoints: Endpoints) -> Collector {
    // A panic anywhere below answers 500 rather than cutting the connection.
    CatchPanicLayer::new().layer(nosniff(layer.layer(endpoints)))
}

/// Every answer is plain text or empty: no browser should guess otherwise.
pub(super) fn nosniff<S>(service: S) -> SetResponseHeader<S, HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
    .layer(service)
}
