//! Reads: summaries, counts, the hourly chart, violation lists and details, report pages.
//! Whole hours come from the hourly tables, the rest of an hour at either end of a range
//! from the report rows.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use super::schema::Tables;
use super::write::{REPORT_COLUMNS, VIOLATION_COLUMNS, report, violation};
use crate::Fingerprint;
use crate::store::{
    Counts, DETAIL_SAMPLE, DaySplit, DirectiveHour, GroupCount, HourCount, InvalidReport,
    RangeSplit, ReportCursor, ReportPage, ReportQuery, Seen, Summary, SummaryOptions, TimeRange,
    Validity, ViolationDetail, ViolationPage, ViolationQuery, ViolationSort, ViolationStatus,
    from_micros, hour_floor, micros, top_counts,
};

type Result<T> = rusqlite::Result<T>;

/// The valid CSP violations among report rows.
const GROUPED: &str = "invalid_reason IS NULL AND report_type = 'csp-violation'";
/// The start of the UTC hour of `received_at`.
const HOUR: &str = "(received_at / 3600000000 * 3600000000)";
/// The row predicate of a split's edges, parameters `?3` to `?6`.
const EDGES: &str =
    "((received_at >= ?3 AND received_at < ?4) OR (received_at >= ?5 AND received_at < ?6))";

fn split_values(split: &RangeSplit) -> Vec<Value> {
    let [(a, b), (c, d)] = split.edges;
    [split.hours.0, split.hours.1, a, b, c, d]
        .into_iter()
        .map(|t| Value::Integer(micros(t)))
        .collect()
}

pub(super) fn day_values(split: &DaySplit) -> Vec<Value> {
    split
        .times()
        .into_iter()
        .map(|t| Value::Integer(micros(t)))
        .collect()
}

/// `(fingerprint, n)`: each violation's reports in a day split (parameters `?1` to `?10`,
/// see `DaySplit::times`), with `filter` applied to every part.
pub(super) fn counts_sql(t: &Tables, filter: &str) -> String {
    format!(
        "SELECT fingerprint, sum(n) AS n FROM (
             SELECT fingerprint, count AS n FROM {vd} WHERE day >= ?1 AND day < ?2 {filter}
             UNION ALL
             SELECT fingerprint, count FROM {vh}
             WHERE ((hour >= ?3 AND hour < ?4) OR (hour >= ?5 AND hour < ?6)) {filter}
             UNION ALL
             SELECT fingerprint, count(*) FROM {r}
             WHERE ((received_at >= ?7 AND received_at < ?8) OR (received_at >= ?9 AND received_at < ?10))
                 AND {GROUPED} {filter}
             GROUP BY fingerprint
         ) GROUP BY fingerprint",
        vd = t.violation_days,
        vh = t.violation_hours,
        r = t.reports,
    )
}

pub(super) fn unsigned(n: i64) -> u64 {
    n.max(0).unsigned_abs()
}

/// The totals of a split: (all, invalid, violation reports).
fn totals(conn: &Connection, t: &Tables, values: &[Value]) -> Result<(u64, u64, u64)> {
    let sql = format!(
        "SELECT (SELECT coalesce(sum(total), 0) FROM {h} WHERE hour >= ?1 AND hour < ?2)
              + (SELECT count(*) FROM {r} WHERE {EDGES}),
                (SELECT coalesce(sum(invalid), 0) FROM {h} WHERE hour >= ?1 AND hour < ?2)
              + (SELECT count(*) FROM {r} WHERE {EDGES} AND invalid_reason IS NOT NULL),
                (SELECT coalesce(sum(violations), 0) FROM {h} WHERE hour >= ?1 AND hour < ?2)
              + (SELECT count(*) FROM {r} WHERE {EDGES} AND {GROUPED})",
        h = t.hours,
        r = t.reports,
    );
    conn.query_row(&sql, params_from_iter(values), |row| {
        Ok((
            unsigned(row.get(0)?),
            unsigned(row.get(1)?),
            unsigned(row.get(2)?),
        ))
    })
}

pub(crate) fn summary(
    conn: &Connection,
    t: &Tables,
    range: TimeRange,
    from_rows: bool,
    options: &SummaryOptions,
) -> Result<Summary> {
    let (split, days) = if from_rows {
        (range.scan(), range.scan_days())
    } else {
        (range.split_hours(), range.split_days())
    };
    let (total, invalid, _) = totals(conn, t, &split_values(&split))?;
    let values = day_values(&days);
    let sql = format!(
        "SELECT v.fingerprint, c.n, v.directive, v.blocked, v.document, v.status
         FROM ({counts}) c JOIN {v} v ON v.fingerprint = c.fingerprint",
        counts = counts_sql(t, ""),
        v = t.violations,
    );
    let mut statement = conn.prepare(&sql)?;
    let groups = statement
        .query_map(params_from_iter(&values), |row| {
            let status: String = row.get(5)?;
            Ok(GroupCount {
                fingerprint: Fingerprint(row.get::<_, i64>(0)? as u64),
                count: unsigned(row.get(1)?),
                directive: row.get(2)?,
                blocked: row.get(3)?,
                document: row.get(4)?,
                status: ViolationStatus::from_name(&status).unwrap_or(ViolationStatus::New),
            })
        })?
        .collect::<Result<Vec<_>>>()?;
    let mut invalid_statement = conn.prepare(&format!(
        "SELECT id, received_at, invalid_reason, coalesce(raw_text, raw_json), user_agent
         FROM {} WHERE invalid_reason IS NOT NULL AND received_at >= ?1 AND received_at < ?2
         ORDER BY received_at, id LIMIT ?3",
        t.reports
    ))?;
    let limit = i64::try_from(options.top).unwrap_or(i64::MAX);
    let invalid_reports = invalid_statement
        .query_map(
            rusqlite::params![micros(range.since()), micros(range.to()), limit],
            |row| {
                Ok(InvalidReport {
                    id: super::write::report_id(&row.get::<_, Vec<u8>>(0)?).to_string(),
                    received_at: from_micros(row.get(1)?),
                    reason: row.get(2)?,
                    raw: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    user_agent: row.get(4)?,
                })
            },
        )?
        .collect::<Result<Vec<_>>>()?;
    Ok(Summary::assemble(
        range,
        total,
        invalid,
        groups,
        invalid_reports,
        options,
    ))
}

pub(crate) fn counts(conn: &Connection, t: &Tables, range: TimeRange) -> Result<Counts> {
    let values = split_values(&range.split_hours());
    let (total, invalid, violation_reports) = totals(conn, t, &values)?;
    let (since, to) = (micros(range.since()), micros(range.to()));
    let (new_violations, regressed_violations) = conn.query_row(
        &format!(
            "SELECT count(*) FILTER (WHERE first_seen >= ?1 AND first_seen < ?2),
                    count(*) FILTER (WHERE regressed_at >= ?1 AND regressed_at < ?2)
             FROM {}",
            t.violations
        ),
        [since, to],
        |row| Ok((unsigned(row.get(0)?), unsigned(row.get(1)?))),
    )?;
    Ok(Counts {
        total,
        valid: total.saturating_sub(invalid),
        invalid,
        violation_reports,
        new_violations,
        regressed_violations,
    })
}

pub(crate) fn hourly(
    conn: &Connection,
    t: &Tables,
    range: TimeRange,
) -> Result<Vec<DirectiveHour>> {
    let values = split_values(&range.split_hours());
    let sql = format!(
        "SELECT c.hour, v.directive, sum(c.n) FROM (
             SELECT hour, fingerprint, count AS n FROM {vh} WHERE hour >= ?1 AND hour < ?2
             UNION ALL
             SELECT {HOUR}, fingerprint, count(*) FROM {r} WHERE {EDGES} AND {GROUPED}
             GROUP BY 1, 2
         ) c JOIN {v} v ON v.fingerprint = c.fingerprint
         GROUP BY 1, 2 ORDER BY 1, 2",
        vh = t.violation_hours,
        r = t.reports,
        v = t.violations,
    );
    let mut statement = conn.prepare(&sql)?;
    let rows = statement.query_map(params_from_iter(&values), |row| {
        Ok(DirectiveHour {
            hour: from_micros(row.get(0)?),
            directive: row.get(1)?,
            count: unsigned(row.get(2)?),
        })
    })?;
    rows.collect()
}

/// Statement parameters gathered while a statement is written.
#[derive(Default)]
struct Args(Vec<Value>);

impl Args {
    fn push(&mut self, value: impl Into<Value>) -> String {
        self.0.push(value.into());
        format!("?{}", self.0.len())
    }
}

pub(crate) fn violations(
    conn: &Connection,
    t: &Tables,
    query: &ViolationQuery,
) -> Result<ViolationPage> {
    let mut args = Args::default();
    let mut filters = Vec::new();
    let (from, in_range) = match query.range {
        Some(range) => {
            args.0 = day_values(&range.split_days());
            let column = match query.seen {
                Seen::InRange => None,
                Seen::FirstInRange => Some("v.first_seen"),
                Seen::RegressedInRange => Some("v.regressed_at"),
            };
            let join = match column {
                None => {
                    filters.push("c.n > 0".to_owned());
                    "JOIN"
                }
                Some(column) => {
                    let since = args.push(micros(range.since()));
                    let to = args.push(micros(range.to()));
                    filters.push(format!("{column} >= {since} AND {column} < {to}"));
                    "LEFT JOIN"
                }
            };
            (
                format!(
                    "{} v {join} ({}) c ON c.fingerprint = v.fingerprint",
                    t.violations,
                    counts_sql(t, "")
                ),
                "coalesce(c.n, 0)",
            )
        }
        None => {
            filters.push("v.count > 0".to_owned());
            (format!("{} v", t.violations), "v.count")
        }
    };
    if let Some(text) = &query.text {
        let p = args.push(text.to_ascii_lowercase());
        filters.push(format!(
            "(instr(lower(v.directive), {p}) > 0 OR instr(lower(v.blocked), {p}) > 0 \
             OR instr(lower(v.document), {p}) > 0 OR instr(lower(coalesce(v.note, '')), {p}) > 0)"
        ));
    }
    if let Some(directive) = &query.directive {
        let p = args.push(directive.clone());
        filters.push(format!("v.directive = {p}"));
    }
    if !query.statuses.is_empty() {
        let list: Vec<String> = query
            .statuses
            .iter()
            .map(|s| args.push(s.as_str().to_owned()))
            .collect();
        filters.push(format!("v.status IN ({})", list.join(", ")));
    }
    if let Some(host) = &query.document_host {
        let p = args.push(host.clone());
        filters.push(format!("v.document_host = {p}"));
    }
    if let Some(prefix) = &query.document_prefix {
        let p = args.push(prefix.clone());
        filters.push(format!("substr(v.document, 1, length({p})) = {p}"));
    }
    if !query.fingerprints.is_empty() {
        let list: Vec<String> = query
            .fingerprints
            .iter()
            .map(|f| args.push(f.0 as i64))
            .collect();
        filters.push(format!("v.fingerprint IN ({})", list.join(", ")));
    }
    let order = match query.sort {
        ViolationSort::Count => "in_range DESC, v.fingerprint",
        ViolationSort::LastSeen => "v.last_seen DESC, v.fingerprint",
        ViolationSort::FirstSeen => "v.first_seen DESC, v.fingerprint",
    };
    let columns: String = VIOLATION_COLUMNS
        .split(", ")
        .map(|c| format!("v.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let filters = filters.join(" AND ");
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {from} WHERE {filters}"),
        params_from_iter(&args.0),
        |row| row.get(0),
    )?;
    let limit = args.push(i64::from(query.limit));
    let offset = args.push(i64::try_from(query.offset).unwrap_or(i64::MAX));
    let sql = format!(
        "SELECT {columns}, {in_range} AS in_range FROM {from} WHERE {filters}
         ORDER BY {order} LIMIT {limit} OFFSET {offset}"
    );
    let mut statement = conn.prepare(&sql)?;
    let violations = statement
        .query_map(params_from_iter(&args.0), |row| {
            let n = unsigned(row.get(20)?);
            violation(row, Some(n))
        })?
        .collect::<Result<Vec<_>>>()?;
    Ok(ViolationPage {
        violations,
        total: unsigned(total),
    })
}

pub(crate) fn detail(
    conn: &Connection,
    t: &Tables,
    fingerprint: Fingerprint,
    range: TimeRange,
    recent: usize,
) -> Result<Option<ViolationDetail>> {
    let fp = fingerprint.0 as i64;
    let mut args = day_values(&range.split_days());
    args.push(Value::Integer(fp));
    let in_range: i64 = conn
        .query_row(
            &counts_sql(t, "AND fingerprint = ?11"),
            params_from_iter(&args),
            |row| row.get(1),
        )
        .optional()?
        .unwrap_or(0);
    let found = conn
        .query_row(
            &format!(
                "SELECT {VIOLATION_COLUMNS} FROM {} WHERE fingerprint = ?1",
                t.violations
            ),
            [fp],
            |row| violation(row, Some(unsigned(in_range))),
        )
        .optional()?;
    let Some(violation) = found else {
        return Ok(None);
    };
    let mut statement = conn.prepare(&format!(
        "SELECT hour, count FROM {} WHERE fingerprint = ?1 AND hour >= ?2 AND hour < ?3 \
         ORDER BY hour",
        t.violation_hours
    ))?;
    let hourly = statement
        .query_map(
            [fp, micros(hour_floor(range.since())), micros(range.to())],
            |row| {
                Ok(HourCount {
                    hour: from_micros(row.get(0)?),
                    count: unsigned(row.get(1)?),
                })
            },
        )?
        .collect::<Result<Vec<_>>>()?;
    let mut statement = conn.prepare(&format!(
        "SELECT coalesce(document_uri, url, ''), coalesce(user_agent, ''), \
         coalesce(disposition, '') FROM {} WHERE fingerprint = ?1 \
         ORDER BY received_at DESC LIMIT ?2",
        t.reports
    ))?;
    let sample = statement
        .query_map([fp, DETAIL_SAMPLE as i64], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>>>()?;
    let recent = if recent == 0 {
        Vec::new()
    } else {
        let limit = u32::try_from(recent).unwrap_or(u32::MAX);
        reports(
            conn,
            t,
            &ReportQuery::new().fingerprint(fingerprint).limit(limit),
        )?
        .reports
    };
    Ok(Some(ViolationDetail {
        violation,
        hourly,
        recent,
        documents: top_counts(sample.iter().map(|s| s.0.as_str()), 20),
        user_agents: top_counts(sample.iter().map(|s| s.1.as_str()), 20),
        dispositions: top_counts(sample.iter().map(|s| s.2.as_str()), 5),
    }))
}

pub(crate) fn reports(conn: &Connection, t: &Tables, query: &ReportQuery) -> Result<ReportPage> {
    let mut args = Args::default();
    let since = args.push(micros(query.range.since()));
    let to = args.push(micros(query.range.to()));
    let mut filters = vec![format!("received_at >= {since} AND received_at < {to}")];
    if let Some(fingerprint) = query.fingerprint {
        let p = args.push(fingerprint.0 as i64);
        filters.push(format!("fingerprint = {p}"));
    }
    match query.validity {
        Validity::Valid => filters.push("invalid_reason IS NULL".to_owned()),
        Validity::Invalid => filters.push("invalid_reason IS NOT NULL".to_owned()),
        _ => {}
    }
    if let Some(directive) = &query.directive {
        let p = args.push(directive.clone());
        filters.push(format!(
            "coalesce(effective_directive, violated_directive) = {p}"
        ));
    }
    if let Some(prefix) = &query.document_prefix {
        let p = args.push(prefix.clone());
        filters.push(format!(
            "substr(coalesce(document_uri, url), 1, length({p})) = {p}"
        ));
    }
    if let Some(text) = &query.text {
        let p = args.push(text.clone());
        filters.push(format!("instr(coalesce(raw_text, raw_json), {p}) > 0"));
    }
    if let Some(after) = query.after {
        let at = args.push(micros(after.received_at));
        let id = args.push(after.id.to_bytes().to_vec());
        filters.push(format!("(received_at, id) < ({at}, {id})"));
    }
    let limit = args.push(i64::from(query.limit));
    let sql = format!(
        "SELECT {REPORT_COLUMNS} FROM {} WHERE {} ORDER BY received_at DESC, id DESC LIMIT {limit}",
        t.reports,
        filters.join(" AND "),
    );
    let mut statement = conn.prepare(&sql)?;
    let reports = statement
        .query_map(params_from_iter(&args.0), report)?
        .collect::<Result<Vec<_>>>()?;
    let next = (reports.len() == query.limit as usize)
        .then(|| reports.last().map(ReportCursor::of))
        .flatten();
    Ok(ReportPage { reports, next })
}
