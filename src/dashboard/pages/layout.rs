//! The frame of every page: head, navigation, logout, and the bits of forms they share.

use maud::{DOCTYPE, Markup, html};

use crate::dashboard::auth::Session;
use crate::dashboard::csrf::FIELD;
use crate::dashboard::params::{Filters, RANGES, Range};
use crate::dashboard::state::DashboardState;
use crate::store::ViolationStatus;

/// Which entry of the navigation is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Violations,
    Reports,
    Invalid,
    None,
}

/// A whole page.
pub(crate) fn page(
    state: &DashboardState,
    title: &str,
    session: Option<&Session>,
    current: Nav,
    body: Markup,
) -> Markup {
    let item = |nav: Nav, path: &str, name: &str| {
        html! { a href=(state.link(path)) class=[(nav == current).then_some("current")] { (name) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · CSP reports" }
                link rel="stylesheet" href=(state.link("/style.css"));
            }
            body {
                header {
                    span class="brand" { "CSP reports" }
                    @if session.is_some() {
                        (item(Nav::Overview, "/", "Overview"))
                        (item(Nav::Violations, "/violations", "Violations"))
                        (item(Nav::Reports, "/reports", "Reports"))
                        (item(Nav::Invalid, "/invalid", "Invalid"))
                    }
                    @if let (Some(session), Some(_)) = (session, state.auth()) {
                        form method="post" action=(state.link("/logout")) {
                            (csrf_field(session))
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden field that carries the CSRF token.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(session.token); }
}

/// The range fields of a filter form.
pub(crate) fn range_fields(range: &Range) -> Markup {
    let custom = range.choice == "custom";
    let local = |t: jiff::Timestamp| t.strftime("%Y-%m-%dT%H:%M").to_string();
    html! {
        label { "Range"
            select name="range" {
                @for (value, name) in RANGES {
                    option value=(value) selected[range.choice == value] { (name) }
                }
            }
        }
        label { "From (UTC, custom)"
            input type="datetime-local" name="since"
                value=[custom.then(|| local(range.range.since()))];
        }
        label { "To (UTC, custom)"
            input type="datetime-local" name="to"
                value=[custom.then(|| local(range.range.to()))];
        }
    }
}

/// A note when a range was not understood.
pub(crate) fn range_problem(range: &Range) -> Markup {
    html! {
        @if let Some(problem) = &range.problem {
            p class="problem" { "The range was not understood (" (problem) "): showing the last 24 hours." }
        }
    }
}

/// A violation's status, as a badge.
pub(crate) fn status(status: ViolationStatus) -> Markup {
    html! { span class=(format!("status {status}")) { (status) } }
}

/// A time, to the second, UTC.
pub(crate) fn time(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// A link to the same page with other filters kept.
pub(crate) fn with_query(
    state: &DashboardState,
    path: &str,
    filters: &Filters,
    extra: &str,
) -> String {
    let query = filters.query();
    let sep = if query.is_empty() || extra.is_empty() {
        ""
    } else {
        "&"
    };
    format!("{}?{query}{sep}{extra}", state.link(path))
}
