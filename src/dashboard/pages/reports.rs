//! The raw reports of a filter, newest first, and the invalid reports with their raw text.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};

use super::PageError;
use super::layout::{Nav, page, range_fields, range_problem, time, with_query};
use crate::dashboard::auth::Session;
use crate::dashboard::escape::{CELL_CHARS, shorten, url};
use crate::dashboard::params::Filters;
use crate::dashboard::state::Shared;
use crate::store::{ReportQuery, Validity};

/// Reports a page shows.
const PAGE: u32 = 50;

/// The store's query for a page's filters (without the page).
pub(crate) fn query(filters: &Filters) -> ReportQuery {
    let mut query = ReportQuery::new()
        .range(filters.range().range)
        .validity(filters.validity())
        .text(filters.text());
    if let Some(fingerprint) = filters.fingerprint() {
        query = query.fingerprint(fingerprint);
    }
    if !filters.directive().is_empty() {
        query = query.directive(filters.directive());
    }
    if !filters.document().is_empty() {
        query = query.document_prefix(filters.document());
    }
    query
}

/// `GET /reports`.
pub(crate) async fn reports(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Query(filters): Query<Filters>,
) -> Result<Markup, PageError> {
    page_of(state, session, filters, false).await
}

/// `GET /invalid`.
pub(crate) async fn invalid(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Query(mut filters): Query<Filters>,
) -> Result<Markup, PageError> {
    filters.validity = Some("invalid".to_owned());
    page_of(state, session, filters, true).await
}

async fn page_of(
    state: Shared,
    session: Session,
    filters: Filters,
    invalid_only: bool,
) -> Result<Markup, PageError> {
    let range = filters.range();
    let mut store_query = query(&filters).limit(PAGE);
    if let Some(after) = filters.after() {
        store_query = store_query.after(after);
    }
    let found = state.store().reports(&store_query).await?;
    let path = if invalid_only { "/invalid" } else { "/reports" };
    let validity = filters.validity();
    let body = html! {
        form class="filters" method="get" action=(state.link(path)) {
            label { "Raw text contains" input type="search" name="text" value=(filters.text()); }
            @if !invalid_only {
                label { "Directive" input name="directive" value=(filters.directive()); }
                label { "Document starts with" input name="document" value=(filters.document()); }
                label { "Validity"
                    select name="validity" {
                        option value="" { "any" }
                        option value="valid" selected[validity == Validity::Valid] { "valid" }
                        option value="invalid" selected[validity == Validity::Invalid] { "invalid" }
                    }
                }
                @if let Some(fingerprint) = filters.fingerprint() {
                    input type="hidden" name="fingerprint" value=(fingerprint);
                }
            }
            (range_fields(&range))
            button type="submit" { "Filter" }
        }
        (range_problem(&range))
        p {
            @if let Some(fingerprint) = filters.fingerprint() {
                "Reports of "
                a href=(state.link(&format!("/violations/{fingerprint}"))) { "one violation" }
                " · "
            }
            "export "
            a href=(with_query(&state, "/export/reports.csv", &filters, "")) { "CSV" } " "
            a href=(with_query(&state, "/export/reports.json", &filters, "")) { "JSON" }
        }
        @if found.reports.is_empty() { p class="note" { "No reports." } }
        @if invalid_only {
            @for report in &found.reports {
                section {
                    p class="note" {
                        (time(report.received_at)) " · "
                        (report.invalid_reason.as_deref().unwrap_or("invalid"))
                        @if let Some(agent) = &report.user_agent { " · " (shorten(agent, CELL_CHARS)) }
                    }
                    pre class="raw" { (shorten(&report.raw, 20_000)) }
                }
            }
        } @else {
            div class="scroll" { table {
                tr {
                    th class="num" { "Received" } th { "Directive" } th { "Blocked" } th { "Document" }
                    th class="wide" { "Browser" } th { "" }
                }
                @for report in &found.reports {
                    tr {
                        td class="num" { (time(report.received_at)) }
                        td class="raw" {
                            (report.effective_directive.as_deref().or(report.violated_directive.as_deref()).unwrap_or(&report.report_type))
                        }
                        td class="raw" { (url(report.blocked_uri.as_deref().unwrap_or_default(), CELL_CHARS)) }
                        td class="raw" { (shorten(report.document().unwrap_or_default(), CELL_CHARS)) }
                        td class="wide raw" { (shorten(report.user_agent.as_deref().unwrap_or_default(), 60)) }
                        td {
                            @if report.is_valid() && report.is_csp_violation() {
                                a href=(state.link(&format!("/violations/{}", report.fingerprint))) { "violation" }
                            } @else if !report.is_valid() {
                                "invalid"
                            }
                        }
                    }
                }
            } }
        }
        div class="pager" {
            @if filters.after().is_some() {
                a href=(with_query(&state, path, &filters, "")) { "← newest" }
            }
            @if let Some(next) = found.next {
                a href=(with_query(&state, path, &filters, &format!("after={next}"))) { "older →" }
            }
        }
    };
    let (title, nav) = if invalid_only {
        ("Invalid reports", Nav::Invalid)
    } else {
        ("Reports", Nav::Reports)
    };
    Ok(page(&state, title, Some(&session), nav, body))
}
