//! The pages, rendered on the server with maud (which escapes every value it is given).

pub(crate) mod detail;
pub(crate) mod layout;
pub(crate) mod login;
pub(crate) mod overview;
pub(crate) mod reports;
pub(crate) mod violations;

use axum::response::{IntoResponse, Response};
use http::StatusCode;

use crate::store::StoreError;

/// A page the store could not answer for: a 500 that says so, and the error in the log.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) StoreError);

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        tracing::error!(target: "csp_reports::dashboard", error = %self.0, "the store failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The store could not answer; see the server's log.",
        )
            .into_response()
    }
}
