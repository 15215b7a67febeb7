//! The login page.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::html;

use super::layout::{self, Nav};
use crate::dashboard::state::DashboardState;

/// The login form, with `status` (401 when a page was asked for without a session) and an
/// error line when an attempt failed. It shows nothing from the store.
pub(crate) fn page(state: &DashboardState, status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        form class="login" method="post" action=(state.link("/login")) {
            @if let Some(error) = error { p class="problem" { (error) } }
            label for="password" { "Password" }
            input id="password" type="password" name="password" autocomplete="current-password" required autofocus;
            button class="primary" type="submit" { "Log in" }
        }
    };
    (status, layout::page(state, "Log in", None, Nav::None, body)).into_response()
}
