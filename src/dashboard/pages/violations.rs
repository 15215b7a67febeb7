//! The violations: filtered, sorted, a page at a time, with a form that sets the status (and
//! note) of the selected ones.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use http::{StatusCode, Uri};
use maud::{Markup, html};

use super::PageError;
use super::layout::{Nav, csrf_field, page, range_fields, range_problem, status, time, with_query};
use crate::dashboard::auth::Session;
use crate::dashboard::csrf::FIELD;
use crate::dashboard::escape::{CELL_CHARS, shorten, url};
use crate::dashboard::params::{Filters, parse_fingerprint};
use crate::dashboard::state::Shared;
use crate::store::{ViolationQuery, ViolationStatus};

/// Violations a page shows.
const PAGE: u32 = 50;
/// The most violations one request may change.
const MAX_SELECTED: usize = 1_000;
/// The longest note kept, in characters.
pub(crate) const MAX_NOTE: usize = 4_000;

/// The store's query for a page's filters.
pub(crate) fn query(filters: &Filters) -> ViolationQuery {
    let mut query = ViolationQuery::new()
        .range(filters.range().range)
        .text(filters.text())
        .sort(filters.sort());
    if !filters.directive().is_empty() {
        query = query.directive(filters.directive());
    }
    if !filters.host().is_empty() {
        query = query.document_host(filters.host());
    }
    if !filters.document().is_empty() {
        query = query.document_prefix(filters.document());
    }
    if let Some(status) = filters.status() {
        query = query.statuses([status]);
    }
    query
}

/// `GET /violations`.
pub(crate) async fn list(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Query(filters): Query<Filters>,
) -> Result<Markup, PageError> {
    let range = filters.range();
    let number = filters.page();
    let found = state
        .store()
        .violations(&query(&filters).page(number, PAGE))
        .await?;
    let pages = found.total.div_ceil(u64::from(PAGE)).max(1);
    let sort_link = |sort: &str, name: &str| {
        let mut f = filters.clone();
        f.sort = Some(sort.to_owned());
        html! {
            @if filters.sort_name() == sort { b { (name) } } @else {
                a href=(with_query(&state, "/violations", &f, "")) { (name) }
            }
        }
    };
    let body = html! {
        form class="filters" method="get" action=(state.link("/violations")) {
            label { "Text" input type="search" name="text" value=(filters.text()); }
            label { "Directive" input name="directive" value=(filters.directive()) placeholder="script-src-elem"; }
            label { "Document host" input name="host" value=(filters.host()); }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in ViolationStatus::ALL {
                        option value=(s) selected[filters.status() == Some(s)] { (s) }
                    }
                }
            }
            (range_fields(&range))
            input type="hidden" name="sort" value=(filters.sort_name());
            button type="submit" { "Filter" }
        }
        (range_problem(&range))
        p {
            (found.total) " violations · sort by "
            (sort_link("count", "reports")) " · " (sort_link("last", "last seen")) " · " (sort_link("first", "first seen"))
            " · export "
            a href=(with_query(&state, "/export/violations.csv", &filters, "")) { "CSV" } " "
            a href=(with_query(&state, "/export/violations.json", &filters, "")) { "JSON" }
        }
        form method="post" action=(state.link("/violations/status")) {
            (csrf_field(&session))
            input type="hidden" name="q" value=(filters.query());
            div class="actions" {
                button type="submit" name="status" value="acknowledged" { "Acknowledge" }
                button type="submit" name="status" value="ignored" { "Ignore" }
                button type="submit" name="status" value="fixed" { "Mark fixed" }
                button type="submit" name="status" value="new" { "Reopen" }
                input name="note" placeholder="note for the selected (optional)" maxlength=(MAX_NOTE);
            }
            div class="scroll" { table {
                tr {
                    th { "" } th { "Directive" } th { "Blocked" } th { "Document" }
                    th class="num" { "Reports" } th class="num wide" { "First seen" } th class="num" { "Last seen" } th { "Status" }
                }
                @for v in &found.violations {
                    tr {
                        td { input type="checkbox" name="fp" value=(v.fingerprint) aria-label="select"; }
                        td class="raw" {
                            a href=(state.link(&format!("/violations/{}", v.fingerprint))) {
                                @if v.directive.is_empty() { "(none)" } @else { (shorten(&v.directive, 60)) }
                            }
                        }
                        td class="raw" { (url(&v.blocked, CELL_CHARS)) }
                        td class="raw" { (shorten(&v.document, CELL_CHARS)) }
                        td class="num" { (v.in_range) }
                        td class="num wide" { (time(v.first_seen)) }
                        td class="num" { (time(v.last_seen)) }
                        td {
                            (status(v.status))
                            @if let Some(note) = &v.note { br; span class="note" { (shorten(note, 80)) } }
                        }
                    }
                }
            } }
        }
        div class="pager" {
            @if number > 1 {
                a href=(with_query(&state, "/violations", &filters, &format!("page={}", number - 1))) { "← previous" }
            }
            span { "page " (number) " of " (pages) }
            @if number < pages {
                a href=(with_query(&state, "/violations", &filters, &format!("page={}", number + 1))) { "next →" }
            }
        }
    };
    Ok(page(
        &state,
        "Violations",
        Some(&session),
        Nav::Violations,
        body,
    ))
}

/// `POST /violations/status`: sets the status (and the note, when one is written) of the
/// selected violations, then back to the list with its filters, or to the one violation.
pub(crate) async fn set_status(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !state
        .csrf()
        .verify(&session.secret, field(FIELD).unwrap_or_default())
    {
        return Ok((StatusCode::FORBIDDEN, "invalid CSRF token").into_response());
    }
    let Some(new_status) = field("status").and_then(ViolationStatus::from_name) else {
        return Ok((StatusCode::BAD_REQUEST, "unknown status").into_response());
    };
    let selected: Vec<_> = fields
        .iter()
        .filter(|(k, _)| k == "fp")
        .filter_map(|(_, v)| parse_fingerprint(v))
        .take(MAX_SELECTED)
        .collect();
    let note = field("note")
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| shorten(n, MAX_NOTE));
    if !selected.is_empty() {
        state
            .store()
            .set_status(&selected, new_status, note.as_deref())
            .await?;
    }
    if let Some(one) = field("back").and_then(parse_fingerprint) {
        return Ok(Redirect::to(&state.link(&format!("/violations/{one}"))).into_response());
    }
    // The filters go back through the parser, so the redirect is always one of our paths.
    let filters = field("q")
        .and_then(|q| format!("/?{q}").parse::<Uri>().ok())
        .and_then(|uri| Query::<Filters>::try_from_uri(&uri).ok())
        .map(|Query(f)| f)
        .unwrap_or_default();
    Ok(Redirect::to(&with_query(&state, "/violations", &filters, "")).into_response())
}
