//! One violation: what it is, its status and note, its reports per hour, the documents,
//! browsers and dispositions among its reports, the policy with the violated directive
//! marked, and its latest reports as sent.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::PageError;
use super::layout::{Nav, csrf_field, page, range_fields, range_problem, status, time};
use super::violations::MAX_NOTE;
use crate::dashboard::auth::Session;
use crate::dashboard::escape::{CELL_CHARS, highlight_directive, pretty_json, shorten, url};
use crate::dashboard::params::{Filters, parse_fingerprint};
use crate::dashboard::state::Shared;
use crate::store::{Count, ViolationStatus};

/// How many of its latest reports the page shows in full.
const RECENT: usize = 5;

/// `GET /violations/{fingerprint}`.
pub(crate) async fn detail(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Path(fingerprint): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let Some(fingerprint) = parse_fingerprint(&fingerprint) else {
        return Ok((StatusCode::NOT_FOUND, "no such violation").into_response());
    };
    let range = filters.range();
    let Some(detail) = state
        .store()
        .violation(fingerprint, range.range, RECENT)
        .await?
    else {
        return Ok((StatusCode::NOT_FOUND, "no such violation").into_response());
    };
    let v = &detail.violation;
    let policy = v.example.original_policy.clone().or_else(|| {
        detail
            .recent
            .iter()
            .find_map(|r| r.original_policy.as_deref().map(str::to_owned))
    });
    let browsers = browsers(&detail.user_agents);
    let this = state.link(&format!("/violations/{fingerprint}"));
    let body = html! {
        div class="scroll" { table {
            tr { th { "Directive" } td class="raw" { (v.directive) } }
            tr { th { "Blocked" } td class="raw" { (url(&v.blocked, 2_000)) } }
            @if let Some(blocked) = &v.example.blocked_uri {
                tr { th { "Blocked URI (first report)" } td class="raw" { (url(blocked, 2_000)) } }
            }
            tr { th { "Document" } td class="raw" { (url(&v.document, 2_000)) } }
            tr { th { "Status" } td { (status(v.status))
                @if let Some(at) = v.status_changed_at { " since " (time(at)) }
                @if let Some(at) = v.regressed_at { " · regressed " (time(at)) } } }
            tr { th { "Reports" } td { (v.in_range) " in the range · " (v.count) " stored" } }
            tr { th { "First / last seen" } td { (time(v.first_seen)) " · " (time(v.last_seen)) } }
            @if let Some(sample) = &v.example.script_sample {
                tr { th { "Sample" } td class="raw" { (sample) } }
            }
            @if let Some(file) = &v.example.source_file {
                tr { th { "Source" } td class="raw" {
                    (url(file, 2_000))
                    @if let Some(line) = v.example.line_number { ":" (line) }
                    @if let Some(column) = v.example.column_number { ":" (column) }
                } }
            }
        } }
        form method="post" action=(state.link("/violations/status")) {
            (csrf_field(&session))
            input type="hidden" name="fp" value=(fingerprint);
            input type="hidden" name="back" value=(fingerprint);
            div class="actions" {
                @for s in ViolationStatus::ALL {
                    button type="submit" name="status" value=(s) disabled[s == v.status] { "Set " (s) }
                }
            }
        }
        form method="post" action=(format!("{this}/note")) {
            (csrf_field(&session))
            label for="note" { "Note" }
            textarea id="note" name="note" maxlength=(MAX_NOTE) { (v.note.as_deref().unwrap_or_default()) }
            button type="submit" { "Save note" }
        }
        form class="filters" method="get" action=(this) {
            (range_fields(&range))
            button type="submit" { "Show" }
        }
        (range_problem(&range))
        h2 { "Reports per hour" }
        (crate::dashboard::chart::single(range.range, &detail.hourly))
        div class="grid2" {
            section { h2 { "Documents" } (counts("Document", &detail.documents)) }
            section { h2 { "Browsers" } (counts("Browser", &browsers)) }
            section { h2 { "Dispositions" } (counts("Disposition", &detail.dispositions)) }
            section { h2 { "User agents" } (counts("User agent", &detail.user_agents)) }
        }
        h2 { "Policy" }
        @if let Some(policy) = &policy {
            pre class="raw" { (highlight_directive(policy, &v.directive)) }
        } @else {
            p class="note" { "The reports carried no policy." }
        }
        h2 { "Latest reports" }
        p { a href=(format!("{}?range=30d&fingerprint={fingerprint}", state.link("/reports"))) { "All its reports" } }
        @for report in &detail.recent {
            p class="note" { (time(report.received_at)) " · " (report.format.as_str()) }
            pre class="raw" { (pretty_json(&report.raw)) }
        }
    };
    let title = format!(
        "{} · {}",
        shorten(&v.directive, 40),
        shorten(&v.blocked, 60)
    );
    Ok(page(&state, &title, Some(&session), Nav::Violations, body).into_response())
}

/// The note form.
#[derive(Debug, Deserialize)]
pub(crate) struct NoteForm {
    csrf: String,
    note: String,
}

/// `POST /violations/{fingerprint}/note`.
pub(crate) async fn set_note(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Path(fingerprint): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, PageError> {
    if !state.csrf().verify(&session.secret, &form.csrf) {
        return Ok((StatusCode::FORBIDDEN, "invalid CSRF token").into_response());
    }
    let Some(fingerprint) = parse_fingerprint(&fingerprint) else {
        return Ok((StatusCode::NOT_FOUND, "no such violation").into_response());
    };
    let note = shorten(form.note.trim(), MAX_NOTE);
    if !state.store().set_note(fingerprint, Some(&note)).await? {
        return Ok((StatusCode::NOT_FOUND, "no such violation").into_response());
    }
    Ok(Redirect::to(&state.link(&format!("/violations/{fingerprint}"))).into_response())
}

fn counts(what: &str, counts: &[Count]) -> Markup {
    html! {
        @if counts.is_empty() { p class="note" { "None." } } @else {
            div class="scroll" { table {
                tr { th { (what) } th class="num" { "Reports" } }
                @for count in counts {
                    tr { td class="raw" { (shorten(&count.value, CELL_CHARS)) } td class="num" { (count.count) } }
                }
            } }
        }
    }
}

/// The browsers among user agents: name and major version.
fn browsers(user_agents: &[Count]) -> Vec<Count> {
    let mut totals: Vec<Count> = Vec::new();
    for agent in user_agents {
        let name = browser(&agent.value);
        match totals.iter_mut().find(|c| c.value == name) {
            Some(total) => total.count += agent.count,
            None => totals.push(Count {
                value: name,
                count: agent.count,
            }),
        }
    }
    totals.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    totals
}

/// `Firefox 133`, `Chrome 131`, `Edge 131`, `Safari 18`, or `other`.
fn browser(agent: &str) -> String {
    let version = |marker: &str| {
        agent.split(marker).nth(1).map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
    };
    for (marker, name) in [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
    ] {
        if let Some(major) = version(marker).filter(|v| !v.is_empty()) {
            return format!("{name} {major}");
        }
    }
    if agent.contains("Safari/")
        && let Some(major) = version("Version/").filter(|v| !v.is_empty())
    {
        return format!("Safari {major}");
    }
    "other".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_by_name_and_major_version() {
        for (agent, name) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox 133",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome 131",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge 131",
            ),
            (
                "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                "Safari 18",
            ),
            ("<script>", "other"),
            ("", "other"),
        ] {
            assert_eq!(browser(agent), name, "{agent}");
        }
    }
}
