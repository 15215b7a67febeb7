//! The overview: a range's totals, its reports per hour stacked by directive, the violations
//! it brought (new and regressed), and its top documents and blocked hosts.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};

use super::PageError;
use super::layout::{Nav, page, range_fields, range_problem, status, time, with_query};
use crate::dashboard::auth::Session;
use crate::dashboard::chart;
use crate::dashboard::escape::{CELL_CHARS, query_value, shorten, url};
use crate::dashboard::params::Filters;
use crate::dashboard::state::{DashboardState, Shared};
use crate::store::{Count, Seen, SummaryOptions, Violation, ViolationQuery, ViolationSort};

/// How many entries each list of the overview shows.
const TOP: usize = 10;

/// `GET /`.
pub(crate) async fn overview(
    State(state): State<Shared>,
    Extension(session): Extension<Session>,
    Query(filters): Query<Filters>,
) -> Result<Markup, PageError> {
    let range = filters.range();
    let store = state.store();
    let listed = |seen| {
        ViolationQuery::new()
            .range(range.range)
            .seen(seen)
            .sort(ViolationSort::FirstSeen)
            .page(1, TOP as u32)
    };
    let (options, first, back) = (
        SummaryOptions::new().top(TOP),
        listed(Seen::FirstInRange),
        listed(Seen::RegressedInRange),
    );
    let (counts, hourly, summary, new, regressed) = tokio::try_join!(
        store.counts(range.range),
        store.hourly(range.range),
        store.summary(range.range, &options),
        store.violations(&first),
        store.violations(&back),
    )?;
    let card =
        |value: u64, name: &str| html! { div class="card" { b { (value) } span { (name) } } };
    let body = html! {
        form class="filters" method="get" action=(state.link("/")) {
            (range_fields(&range))
            button type="submit" { "Show" }
        }
        (range_problem(&range))
        div class="cards" {
            (card(counts.total, "reports stored"))
            (card(counts.violation_reports, "CSP violation reports"))
            (card(counts.invalid, "invalid reports"))
            (card(summary.ignored, "reports of ignored violations"))
            (card(counts.new_violations, "new violations"))
            (card(counts.regressed_violations, "regressed violations"))
            @if let Some(collector) = state.collector() {
                @let stats = collector.stats();
                (card(stats.received, "received since start"))
                (card(stats.filtered, "filtered since start"))
            }
        }
        h2 { "Reports per hour, by directive" }
        (chart::stacked(range.range, &hourly))
        div class="grid2" {
            section {
                h2 { "New violations (" (new.total) ")" }
                (violation_list(&state, &new.violations, new.total, &filters))
            }
            section {
                h2 { "Regressed violations (" (regressed.total) ")" }
                (violation_list(&state, &regressed.violations, regressed.total, &filters))
            }
            section {
                h2 { "Top documents" }
                (count_table(&state, "Document", &summary.top_sources, Some("document")))
            }
            section {
                h2 { "Top blocked" }
                (count_table(&state, "Blocked", &summary.top_blocked, None))
            }
        }
    };
    Ok(page(
        &state,
        "Overview",
        Some(&session),
        Nav::Overview,
        body,
    ))
}

fn violation_list(
    state: &DashboardState,
    violations: &[Violation],
    total: u64,
    filters: &Filters,
) -> Markup {
    html! {
        @if violations.is_empty() {
            p class="note" { "None in this range." }
        } @else {
            div class="scroll" { table {
                tr { th { "Violation" } th { "Status" } th class="num" { "First seen" } }
                @for v in violations {
                    tr {
                        td {
                            a href=(state.link(&format!("/violations/{}", v.fingerprint))) {
                                (shorten(&v.directive, 40)) " · " (shorten(&v.blocked, 60))
                            }
                            br;
                            span class="note raw" { (shorten(&v.document, CELL_CHARS)) }
                        }
                        td { (status(v.status)) }
                        td class="num" { (time(v.first_seen)) }
                    }
                }
            } }
            @if total > violations.len() as u64 {
                p { a href=(with_query(state, "/violations", filters, "sort=first")) { "All " (total) " …" } }
            }
        }
    }
}

/// A top list; with `filter`, each value links to the reports of that document.
fn count_table(
    state: &DashboardState,
    what: &str,
    counts: &[Count],
    filter: Option<&str>,
) -> Markup {
    html! {
        @if counts.is_empty() {
            p class="note" { "None in this range." }
        } @else {
            div class="scroll" { table {
                tr { th { (what) } th class="num" { "Reports" } }
                @for count in counts {
                    tr {
                        td class="raw" {
                            @if let Some(name) = filter {
                                a href=(format!("{}?{name}={}", state.link("/reports"), query_value(&count.value))) {
                                    (shorten(&count.value, CELL_CHARS))
                                }
                            } @else {
                                (url(&count.value, CELL_CHARS))
                            }
                        }
                        td class="num" { (count.count) }
                    }
                }
            } }
        }
    }
}
