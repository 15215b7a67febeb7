//! CSV and JSON exports of any filtered view, streamed a store page at a time, so an export
//! of millions of reports holds one page in memory.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};

use super::auth::Session;
use super::pages::{reports, violations};
use super::params::Filters;
use super::state::Shared;
use crate::Report;
use crate::store::{ReportCursor, Violation};

/// Rows read from the store at a time.
const PAGE: u32 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// Where a stream is: not started, at a page, or done.
enum Step<C> {
    Start,
    At(C),
    Done,
}

/// `GET /export/{reports,violations}.{csv,json}`.
pub(crate) async fn export(
    State(state): State<Shared>,
    Extension(_session): Extension<Session>,
    Path(name): Path<String>,
    Query(filters): Query<Filters>,
) -> Response {
    let (what, format) = match name.as_str() {
        "reports.csv" => ("reports", Format::Csv),
        "reports.json" => ("reports", Format::Json),
        "violations.csv" => ("violations", Format::Csv),
        "violations.json" => ("violations", Format::Json),
        _ => return (StatusCode::NOT_FOUND, "no such export").into_response(),
    };
    let body = if what == "reports" {
        report_stream(state, filters, format)
    } else {
        violation_stream(state, filters, format)
    };
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json",
    };
    (
        [
            (CONTENT_TYPE, content_type.to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn report_stream(state: Shared, filters: Filters, format: Format) -> Body {
    let query = reports::query(&filters).limit(PAGE);
    let pages = stream::unfold(Step::<Option<ReportCursor>>::Start, move |step| {
        let (state, query) = (state.clone(), query.clone());
        async move {
            let (after, first) = match step {
                Step::Done => return None,
                Step::Start => (None, true),
                Step::At(after) => (after, false),
            };
            let query = match after {
                Some(after) => query.after(after),
                None => query,
            };
            let page = match state.store().reports(&query).await {
                Ok(page) => page,
                Err(error) => return Some((Err(failed(error)), Step::Done)),
            };
            let last = page.next.is_none();
            let chunk = chunk(
                format,
                first,
                last,
                &page.reports,
                report_row,
                REPORT_HEADER,
            );
            let next = if last {
                Step::Done
            } else {
                Step::At(page.next)
            };
            Some((Ok(chunk), next))
        }
    });
    Body::from_stream(pages)
}

fn violation_stream(state: Shared, filters: Filters, format: Format) -> Body {
    let query = violations::query(&filters);
    let pages = stream::unfold(Step::<u64>::Start, move |step| {
        let (state, query) = (state.clone(), query.clone());
        async move {
            let number = match step {
                Step::Done => return None,
                Step::Start => 1,
                Step::At(number) => number,
            };
            let page = match state.store().violations(&query.page(number, PAGE)).await {
                Ok(page) => page,
                Err(error) => return Some((Err(failed(error)), Step::Done)),
            };
            let last =
                number.saturating_mul(u64::from(PAGE)) >= page.total || page.violations.is_empty();
            let rows = &page.violations;
            let chunk = chunk(
                format,
                number == 1,
                last,
                rows,
                violation_row,
                VIOLATION_HEADER,
            );
            let next = if last {
                Step::Done
            } else {
                Step::At(number + 1)
            };
            Some((Ok(chunk), next))
        }
    });
    Body::from_stream(pages)
}

fn failed(error: crate::store::StoreError) -> std::io::Error {
    tracing::error!(target: "csp_reports::dashboard", %error, "an export stopped: the store failed");
    std::io::Error::other(error)
}

/// One page of rows: the CSV header or the JSON `[` first, the `]` last.
fn chunk<T: serde::Serialize>(
    format: Format,
    first: bool,
    last: bool,
    rows: &[T],
    csv_row: fn(&T) -> Vec<String>,
    header: &[&str],
) -> Bytes {
    let mut out = String::new();
    match format {
        Format::Csv => {
            if first {
                push_csv(&mut out, header.iter().map(|h| (*h).to_owned()));
            }
            for row in rows {
                push_csv(&mut out, csv_row(row));
            }
        }
        Format::Json => {
            out.push_str(if first { "[\n" } else { "" });
            for (index, row) in rows.iter().enumerate() {
                if !(first && index == 0) {
                    out.push_str(",\n");
                }
                // Serializing a report or violation cannot fail: no maps with non-string keys.
                out.push_str(&serde_json::to_string(row).unwrap_or_else(|_| "null".to_owned()));
            }
            if last {
                out.push_str("\n]\n");
            }
        }
    }
    Bytes::from(out)
}

const REPORT_HEADER: &[&str] = &[
    "id",
    "received_at",
    "format",
    "type",
    "valid",
    "invalid_reason",
    "document",
    "blocked_uri",
    "effective_directive",
    "violated_directive",
    "disposition",
    "user_agent",
    "fingerprint",
    "raw",
];

fn report_row(report: &Report) -> Vec<String> {
    let text = |value: Option<&str>| value.unwrap_or_default().to_owned();
    vec![
        report.id.to_string(),
        report.received_at.to_string(),
        report.format.as_str().to_owned(),
        report.report_type.to_string(),
        report.is_valid().to_string(),
        text(report.invalid_reason.as_deref()),
        text(report.document()),
        text(report.blocked_uri.as_deref()),
        text(report.effective_directive.as_deref()),
        text(report.violated_directive.as_deref()),
        text(report.disposition.as_deref()),
        text(report.user_agent.as_deref()),
        report.fingerprint.to_string(),
        report.raw.to_string(),
    ]
}

const VIOLATION_HEADER: &[&str] = &[
    "fingerprint",
    "directive",
    "blocked",
    "document",
    "count",
    "in_range",
    "first_seen",
    "last_seen",
    "status",
    "note",
];

fn violation_row(v: &Violation) -> Vec<String> {
    vec![
        v.fingerprint.to_string(),
        v.directive.clone(),
        v.blocked.clone(),
        v.document.clone(),
        v.count.to_string(),
        v.in_range.to_string(),
        v.first_seen.to_string(),
        v.last_seen.to_string(),
        v.status.to_string(),
        v.note.clone().unwrap_or_default(),
    ]
}

/// One CSV line (RFC 4180). A cell that a spreadsheet would read as a formula (`=`, `+`,
/// `-`, `@`, tab, carriage return first) is prefixed with `'`: report fields are written by
/// anyone.
fn push_csv(out: &mut String, cells: impl IntoIterator<Item = String>) {
    for (index, cell) in cells.into_iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let guarded = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{cell}")
        } else {
            cell
        };
        if guarded.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&guarded.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&guarded);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        let mut out = String::new();
        push_csv(
            &mut out,
            [
                "plain",
                "a,b",
                "say \"hi\"",
                "=HYPERLINK(\"x\")",
                "-1",
                "line\nbreak",
            ]
            .map(str::to_owned),
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",'-1,\"line\nbreak\"\r\n"
        );
    }

    #[test]
    fn json_pages_make_one_array() {
        let rows = [1, 2];
        let row = |_: &i32| Vec::new();
        let whole = [
            chunk(Format::Json, true, false, &rows, row, &[]),
            chunk(Format::Json, false, true, &rows, row, &[]),
        ]
        .concat();
        let parsed: Vec<i32> = serde_json::from_slice(&whole).unwrap();
        assert_eq!(parsed, [1, 2, 1, 2]);
        let empty = chunk::<i32>(Format::Json, true, true, &[], row, &[]);
        assert_eq!(
            serde_json::from_slice::<Vec<i32>>(&empty).unwrap(),
            Vec::<i32>::new()
        );
    }
}
