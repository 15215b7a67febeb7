//! The read side people browse: violation lists and details, statuses and notes, report pages;
//! and the small writes beside them (statuses, window claims).

use jiff::Timestamp;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::groups::{VIOLATION_COLUMNS, violation};
use super::store::{MakeTls, PostgresStore};
use super::summary::{Params, bound, counts_sql, day_params};
use crate::report::WireFormat;
use crate::store::group::parse_uuid;
use crate::store::{
    DETAIL_SAMPLE, ReportCursor, ReportPage, ReportQuery, Seen, StoreError, TimeRange, Validity,
    ViolationDetail, ViolationPage, ViolationQuery, ViolationSort, ViolationStatus, hour_floor,
    top_counts,
};
use crate::{Fingerprint, Report, ReportId};

/// Statement parameters gathered while a statement is written.
#[derive(Default)]
pub(crate) struct Args {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
    types: Vec<Type>,
}

impl Args {
    /// Adds a parameter and returns its placeholder (`$3`).
    pub(crate) fn push(&mut self, value: impl ToSql + Sync + Send + 'static, ty: Type) -> String {
        self.values.push(Box::new(value));
        self.types.push(ty);
        format!("${}", self.values.len())
    }

    pub(crate) fn params(&self) -> Params<'_> {
        self.values
            .iter()
            .zip(&self.types)
            .map(|(value, ty)| (&**value as &(dyn ToSql + Sync), ty.clone()))
            .collect()
    }
}

/// The columns of a report row, in the order [`report`] reads them.
const REPORT_COLUMNS: &str = "id::text, received_at, age_ms, format, report_type, \
    invalid_reason, coalesce(raw_text, raw_json::text), user_agent, host(client_ip), url, \
    document_uri, referrer, blocked_uri, effective_directive, violated_directive, \
    original_policy, disposition, status_code, script_sample, source_file, line_number, \
    column_number, fingerprint";

fn report(row: &Row) -> Report {
    let text = |i: usize| row.get::<_, Option<String>>(i).map(Into::into);
    let number = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .and_then(|n| u32::try_from(n).ok())
    };
    Report {
        id: parse_uuid(row.get(0)).unwrap_or(ReportId(0)),
        received_at: row.get(1),
        age_ms: row
            .get::<_, Option<i64>>(2)
            .and_then(|n| u64::try_from(n).ok()),
        format: WireFormat::from_name(row.get(3)).unwrap_or(WireFormat::Unparsed),
        report_type: row.get::<_, String>(4).into(),
        invalid_reason: row.get(5),
        raw: row.get::<_, Option<String>>(6).unwrap_or_default().into(),
        user_agent: text(7),
        client_ip: row
            .get::<_, Option<String>>(8)
            .and_then(|ip| ip.parse().ok()),
        url: text(9),
        document_uri: text(10),
        referrer: text(11),
        blocked_uri: text(12),
        effective_directive: text(13),
        violated_directive: text(14),
        original_policy: text(15),
        disposition: text(16),
        status_code: row
            .get::<_, Option<i32>>(17)
            .and_then(|n| u16::try_from(n).ok()),
        script_sample: text(18),
        source_file: text(19),
        line_number: number(20),
        column_number: number(21),
        fingerprint: Fingerprint(row.get::<_, i64>(22) as u64),
    }
}

impl<Tls: MakeTls> PostgresStore<Tls> {
    pub(crate) async fn list_violations(
        &self,
        query: &ViolationQuery,
    ) -> Result<ViolationPage, StoreError> {
        let t = &self.inner.tables;
        let mut args = Args::default();
        let mut filters = Vec::new();
        let (from, in_range) = match query.range {
            Some(range) => {
                for time in day_params(&range.split_days()) {
                    args.push(time, Type::TIMESTAMPTZ);
                }
                let counts = counts_sql(t, 1, "");
                let column = match query.seen {
                    Seen::InRange => None,
                    Seen::FirstInRange => Some("first_seen"),
                    Seen::RegressedInRange => Some("regressed_at"),
                };
                let join = match column {
                    None => {
                        filters.push("c.n > 0".to_owned());
                        "JOIN"
                    }
                    Some(column) => {
                        let since = args.push(bound(range.since()), Type::TIMESTAMPTZ);
                        let to = args.push(bound(range.to()), Type::TIMESTAMPTZ);
                        filters.push(format!("{column} >= {since} AND {column} < {to}"));
                        "LEFT JOIN"
                    }
                };
                (
                    format!("{} v {join} ({counts}) c USING (fingerprint)", t.violations),
                    "coalesce(c.n, 0)",
                )
            }
            None => {
                filters.push("count > 0".to_owned());
                (format!("{} v", t.violations), "count")
            }
        };
        if let Some(text) = &query.text {
            let p = args.push(text.to_ascii_lowercase(), Type::TEXT);
            filters.push(format!(
                "(strpos(lower(directive), {p}) > 0 OR strpos(lower(blocked), {p}) > 0 \
                 OR strpos(lower(document), {p}) > 0 OR strpos(lower(coalesce(note, '')), {p}) > 0)"
            ));
        }
        if let Some(directive) = &query.directive {
            let p = args.push(directive.clone(), Type::TEXT);
            filters.push(format!("directive = {p}"));
        }
        if !query.statuses.is_empty() {
            let statuses: Vec<String> = query
                .statuses
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            let p = args.push(statuses, Type::TEXT_ARRAY);
            filters.push(format!("status = ANY({p})"));
        }
        if let Some(host) = &query.document_host {
            let p = args.push(host.clone(), Type::TEXT);
            filters.push(format!("document_host = {p}"));
        }
        if let Some(prefix) = &query.document_prefix {
            let p = args.push(prefix.clone(), Type::TEXT);
            filters.push(format!("starts_with(document, {p})"));
        }
        if !query.fingerprints.is_empty() {
            let fps: Vec<i64> = query.fingerprints.iter().map(|f| f.0 as i64).collect();
            let p = args.push(fps, Type::INT8_ARRAY);
            filters.push(format!("fingerprint = ANY({p})"));
        }
        let order = match query.sort {
            ViolationSort::Count => "in_range DESC, fingerprint",
            ViolationSort::LastSeen => "last_seen DESC, fingerprint",
            ViolationSort::FirstSeen => "first_seen DESC, fingerprint",
        };
        let limit = args.push(i64::from(query.limit), Type::INT8);
        let offset = args.push(i64::try_from(query.offset).unwrap_or(i64::MAX), Type::INT8);
        let sql = format!(
            "SELECT {VIOLATION_COLUMNS}, {in_range} AS in_range, count(*) OVER () FROM {from}
             WHERE {} ORDER BY {order} LIMIT {limit} OFFSET {offset}",
            filters.join(" AND "),
        );
        let conn = self.conn().await?;
        let rows = conn.query_typed(&sql, &args.params()).await?;
        let total = match rows.first() {
            Some(row) => row.get::<_, i64>(21).max(0).unsigned_abs(),
            // Past the last page: count on its own.
            None if query.offset > 0 => {
                let count = format!(
                    "SELECT count(*) FROM (SELECT {in_range} AS in_range FROM {from} WHERE {}) m",
                    filters.join(" AND ")
                );
                let params = args.params();
                let row = conn
                    .query_typed_one(&count, &params[..params.len() - 2])
                    .await?;
                row.get::<_, i64>(0).max(0).unsigned_abs()
            }
            None => 0,
        };
        Ok(ViolationPage {
            violations: rows
                .iter()
                .map(|row| violation(row, Some(row.get::<_, i64>(20).max(0).unsigned_abs())))
                .collect(),
            total,
        })
    }

    pub(crate) async fn violation_detail(
        &self,
        fingerprint: Fingerprint,
        range: TimeRange,
        recent: usize,
    ) -> Result<Option<ViolationDetail>, StoreError> {
        let t = &self.inner.tables;
        let fp = fingerprint.0 as i64;
        let conn = self.conn().await?;
        let row = conn
            .query_typed_opt(
                &format!(
                    "SELECT {VIOLATION_COLUMNS} FROM {} WHERE fingerprint = $1",
                    t.violations
                ),
                &[(&fp, Type::INT8)],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let times = day_params(&range.split_days());
        let mut params = super::summary::time_params(&times);
        params.push((&fp, Type::INT8));
        let in_range = conn
            .query_typed_opt(&counts_sql(t, 1, "AND fingerprint = $11"), &params)
            .await?
            .map_or(0, |row| row.get::<_, i64>(1).max(0).unsigned_abs());
        let (since, to) = (bound(hour_floor(range.since())), bound(range.to()));
        let hourly = conn
            .query_typed(
                &format!(
                    "SELECT hour, count FROM {} WHERE fingerprint = $1 AND hour >= $2 AND hour < $3 \
                     ORDER BY hour",
                    t.violation_hours
                ),
                &[
                    (&fp, Type::INT8),
                    (&since, Type::TIMESTAMPTZ),
                    (&to, Type::TIMESTAMPTZ),
                ],
            )
            .await?
            .iter()
            .map(|row| crate::store::HourCount {
                hour: row.get(0),
                count: row.get::<_, i64>(1).max(0).unsigned_abs(),
            })
            .collect();
        let sample_limit = DETAIL_SAMPLE as i64;
        let sample = conn
            .query_typed(
                &format!(
                    "SELECT coalesce(document_uri, url, ''), coalesce(user_agent, ''), \
                     coalesce(disposition, '') FROM {} WHERE fingerprint = $1 \
                     ORDER BY received_at DESC LIMIT $2",
                    t.reports
                ),
                &[(&fp, Type::INT8), (&sample_limit, Type::INT8)],
            )
            .await?;
        drop(conn);
        let column = |i: usize| sample.iter().map(move |row| row.get::<_, &str>(i));
        let (documents, user_agents, dispositions) = (
            top_counts(column(0), 20),
            top_counts(column(1), 20),
            top_counts(column(2), 5),
        );
        let recent = if recent == 0 {
            Vec::new()
        } else {
            let limit = u32::try_from(recent).unwrap_or(u32::MAX);
            let query = ReportQuery::new().fingerprint(fingerprint).limit(limit);
            self.report_page(&query).await?.reports
        };
        Ok(Some(ViolationDetail {
            violation: violation(&row, Some(in_range)),
            hourly,
            recent,
            documents,
            user_agents,
            dispositions,
        }))
    }

    pub(crate) async fn update_status(
        &self,
        fingerprints: &[Fingerprint],
        status: ViolationStatus,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut fps: Vec<i64> = fingerprints.iter().map(|f| f.0 as i64).collect();
        // In key order, as the sink locks them.
        fps.sort_unstable();
        fps.dedup();
        // Postgres text cannot hold NUL.
        let (set_note, note) = (
            note.is_some(),
            note.unwrap_or_default().replace('\0', "\u{fffd}"),
        );
        let conn = self.conn().await?;
        Ok(conn
            .execute_typed(
                &format!(
                    "UPDATE {} SET status = $1, status_changed_at = now(), \
                     note = CASE WHEN $2 THEN nullif($3, '') ELSE note END \
                     WHERE fingerprint = ANY($4)",
                    self.inner.tables.violations
                ),
                &[
                    (&status.as_str(), Type::TEXT),
                    (&set_note, Type::BOOL),
                    (&note, Type::TEXT),
                    (&fps, Type::INT8_ARRAY),
                ],
            )
            .await?)
    }

    pub(crate) async fn update_note(
        &self,
        fingerprint: Fingerprint,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let fp = fingerprint.0 as i64;
        let note = note
            .filter(|n| !n.is_empty())
            .map(|n| n.replace('\0', "\u{fffd}"));
        let conn = self.conn().await?;
        let updated = conn
            .execute_typed(
                &format!(
                    "UPDATE {} SET note = $1 WHERE fingerprint = $2",
                    self.inner.tables.violations
                ),
                &[(&note, Type::TEXT), (&fp, Type::INT8)],
            )
            .await?;
        Ok(updated > 0)
    }

    pub(crate) async fn report_page(&self, query: &ReportQuery) -> Result<ReportPage, StoreError> {
        let t = &self.inner.tables;
        let mut args = Args::default();
        let since = args.push(bound(query.range.since()), Type::TIMESTAMPTZ);
        let to = args.push(bound(query.range.to()), Type::TIMESTAMPTZ);
        let mut filters = vec![format!("received_at >= {since} AND received_at < {to}")];
        if let Some(fingerprint) = query.fingerprint {
            let p = args.push(fingerprint.0 as i64, Type::INT8);
            filters.push(format!("fingerprint = {p}"));
        }
        match query.validity {
            Validity::Valid => filters.push("valid".to_owned()),
            Validity::Invalid => filters.push("NOT valid".to_owned()),
            _ => {}
        }
        if let Some(directive) = &query.directive {
            let p = args.push(directive.clone(), Type::TEXT);
            filters.push(format!(
                "coalesce(effective_directive, violated_directive) = {p}"
            ));
        }
        if let Some(prefix) = &query.document_prefix {
            let p = args.push(prefix.clone(), Type::TEXT);
            filters.push(format!("starts_with(coalesce(document_uri, url), {p})"));
        }
        if let Some(text) = &query.text {
            let p = args.push(text.replace('\0', "\u{fffd}"), Type::TEXT);
            filters.push(format!(
                "strpos(coalesce(raw_text, raw_json::text), {p}) > 0"
            ));
        }
        if let Some(after) = query.after {
            let at = args.push(bound(after.received_at), Type::TIMESTAMPTZ);
            let id = args.push(after.id.to_string(), Type::TEXT);
            filters.push(format!("(received_at, id) < ({at}, {id}::uuid)"));
        }
        let limit = args.push(i64::from(query.limit), Type::INT8);
        let sql = format!(
            "SELECT {REPORT_COLUMNS} FROM {} WHERE {} \
             ORDER BY received_at DESC, id DESC LIMIT {limit}",
            t.reports,
            filters.join(" AND "),
        );
        let conn = self.conn().await?;
        let rows = conn.query_typed(&sql, &args.params()).await?;
        let reports: Vec<Report> = rows.iter().map(report).collect();
        let next = (reports.len() == query.limit as usize)
            .then(|| reports.last().map(ReportCursor::of))
            .flatten();
        Ok(ReportPage { reports, next })
    }

    pub(crate) async fn claim(&self, name: &str, start: Timestamp) -> Result<bool, StoreError> {
        let start = bound(start);
        let conn = self.conn().await?;
        let claimed = conn
            .execute_typed(
                &format!(
                    "INSERT INTO {} (name, window_start) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    self.inner.tables.claims
                ),
                &[(&name, Type::TEXT), (&start, Type::TIMESTAMPTZ)],
            )
            .await?;
        Ok(claimed == 1)
    }
}
