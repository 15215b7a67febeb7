//! A batch into SQLite: the report rows, then the violation tables, inside the writer's
//! transaction. The writer is the only one that writes while it holds the file's write lock,
//! so reading a violation's status before its upsert tells whether the write creates or
//! reopens it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::sqlite_error;
use super::schema::Tables;
use crate::report::WireFormat;
use crate::store::group::group;
use crate::store::{
    StoreError, Violation, ViolationEvent, ViolationEventKind, ViolationExample, ViolationStatus,
    WriteOutcome, from_micros, micros,
};
use crate::{Fingerprint, Report, ReportBatch, ReportId};

/// The columns of a violation row, in the order [`violation`] reads them.
pub(crate) const VIOLATION_COLUMNS: &str = "fingerprint, directive, blocked, document, \
    document_host, first_seen, last_seen, count, status, note, status_changed_at, regressed_at, \
    example_id, example_blocked_uri, example_policy, example_disposition, example_sample, \
    example_source_file, example_line, example_column";

/// A violation from a row that starts with [`VIOLATION_COLUMNS`].
pub(crate) fn violation(row: &Row<'_>, in_range: Option<u64>) -> rusqlite::Result<Violation> {
    let count = row.get::<_, i64>(7)?.max(0).unsigned_abs();
    let time = |i: usize| row.get::<_, Option<i64>>(i).map(|t| t.map(from_micros));
    let number = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .map(|n| n.and_then(|n| u32::try_from(n).ok()))
    };
    let status: String = row.get(8)?;
    Ok(Violation {
        fingerprint: Fingerprint(row.get::<_, i64>(0)? as u64),
        directive: row.get(1)?,
        blocked: row.get(2)?,
        document: row.get(3)?,
        document_host: row.get(4)?,
        first_seen: from_micros(row.get(5)?),
        last_seen: from_micros(row.get(6)?),
        count,
        in_range: in_range.unwrap_or(count),
        status: ViolationStatus::from_name(&status).unwrap_or(ViolationStatus::New),
        note: row.get(9)?,
        status_changed_at: time(10)?,
        regressed_at: time(11)?,
        example: ViolationExample {
            report_id: report_id(&row.get::<_, Vec<u8>>(12)?),
            blocked_uri: row.get(13)?,
            original_policy: row.get(14)?,
            disposition: row.get(15)?,
            script_sample: row.get(16)?,
            source_file: row.get(17)?,
            line_number: number(18)?,
            column_number: number(19)?,
        },
    })
}

/// A report id from its sixteen stored bytes.
pub(crate) fn report_id(bytes: &[u8]) -> ReportId {
    ReportId(<[u8; 16]>::try_from(bytes).map_or(0, u128::from_be_bytes))
}

/// The columns of a report row, in the order [`report`] reads them.
pub(crate) const REPORT_COLUMNS: &str = "id, received_at, age_ms, format, report_type, \
    invalid_reason, coalesce(raw_text, raw_json), user_agent, client_ip, url, document_uri, \
    referrer, blocked_uri, effective_directive, violated_directive, original_policy, \
    disposition, status_code, script_sample, source_file, line_number, column_number, \
    fingerprint";

pub(crate) fn report(row: &Row<'_>) -> rusqlite::Result<Report> {
    let text = |i: usize| row.get::<_, Option<String>>(i).map(|t| t.map(Into::into));
    let number = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .map(|n| n.and_then(|n| u32::try_from(n).ok()))
    };
    let format: String = row.get(3)?;
    Ok(Report {
        id: report_id(&row.get::<_, Vec<u8>>(0)?),
        received_at: from_micros(row.get(1)?),
        age_ms: row
            .get::<_, Option<i64>>(2)?
            .and_then(|n| u64::try_from(n).ok()),
        format: WireFormat::from_name(&format).unwrap_or(WireFormat::Unparsed),
        report_type: row.get::<_, String>(4)?.into(),
        invalid_reason: row.get(5)?,
        raw: row.get::<_, Option<String>>(6)?.unwrap_or_default().into(),
        user_agent: text(7)?,
        client_ip: row
            .get::<_, Option<String>>(8)?
            .and_then(|ip| ip.parse().ok()),
        url: text(9)?,
        document_uri: text(10)?,
        referrer: text(11)?,
        blocked_uri: text(12)?,
        effective_directive: text(13)?,
        violated_directive: text(14)?,
        original_policy: text(15)?,
        disposition: text(16)?,
        status_code: row
            .get::<_, Option<i64>>(17)?
            .and_then(|n| u16::try_from(n).ok()),
        script_sample: text(18)?,
        source_file: text(19)?,
        line_number: number(20)?,
        column_number: number(21)?,
        fingerprint: Fingerprint(row.get::<_, i64>(22)? as u64),
    })
}

/// Stores a batch and upserts its groups, on the writer's connection.
pub(crate) fn write(
    conn: &Connection,
    path: &Path,
    t: &Tables,
    batch: &ReportBatch,
) -> Result<WriteOutcome, StoreError> {
    let fail = |e| sqlite_error(path, e);
    let mut insert = conn
        .prepare_cached(&format!(
            "INSERT INTO {} (id, received_at, age_ms, format, report_type, invalid_reason,
                 raw_json, raw_text, user_agent, client_ip, url, document_uri, referrer,
                 blocked_uri, effective_directive, violated_directive, original_policy,
                 disposition, status_code, script_sample, source_file, line_number,
                 column_number, fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22, ?23, ?24)
             ON CONFLICT (id) DO NOTHING",
            t.reports
        ))
        .map_err(fail)?;
    let mut stored = Vec::with_capacity(batch.len());
    for r in batch.iter() {
        let (json, text) = if r.raw_is_json() {
            (Some(&*r.raw), None)
        } else {
            (None, Some(&*r.raw))
        };
        let inserted = insert
            .execute(params![
                r.id.to_bytes(),
                micros(r.received_at),
                r.age_ms.map(|a| i64::try_from(a).unwrap_or(i64::MAX)),
                r.format.as_str(),
                &*r.report_type,
                r.invalid_reason,
                json,
                text,
                r.user_agent.as_deref(),
                r.client_ip.map(|ip| ip.to_string()),
                r.url.as_deref(),
                r.document_uri.as_deref(),
                r.referrer.as_deref(),
                r.blocked_uri.as_deref(),
                r.effective_directive.as_deref(),
                r.violated_directive.as_deref(),
                r.original_policy.as_deref(),
                r.disposition.as_deref(),
                r.status_code,
                r.script_sample.as_deref(),
                r.source_file.as_deref(),
                r.line_number,
                r.column_number,
                r.fingerprint.0 as i64,
            ])
            .map_err(fail)?;
        if inserted == 1 {
            stored.push(r);
        }
    }
    let groups = group(stored.iter().copied());
    let mut status = conn
        .prepare_cached(&format!(
            "SELECT status FROM {} WHERE fingerprint = ?1",
            t.violations
        ))
        .map_err(fail)?;
    let mut upsert = conn
        .prepare_cached(&format!(
            "INSERT INTO {} AS v (fingerprint, directive, blocked, document, document_host,
                 first_seen, last_seen, count, example_id, example_blocked_uri, example_policy,
                 example_disposition, example_sample, example_source_file, example_line,
                 example_column)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (fingerprint) DO UPDATE SET
                 count = v.count + excluded.count,
                 first_seen = min(v.first_seen, excluded.first_seen),
                 last_seen = max(v.last_seen, excluded.last_seen),
                 status = CASE WHEN v.status = 'fixed' THEN 'new' ELSE v.status END,
                 status_changed_at = CASE WHEN v.status = 'fixed' THEN excluded.first_seen
                     ELSE v.status_changed_at END,
                 regressed_at = CASE WHEN v.status = 'fixed' THEN excluded.first_seen
                     ELSE v.regressed_at END",
            t.violations
        ))
        .map_err(fail)?;
    let mut read = conn
        .prepare_cached(&format!(
            "SELECT {VIOLATION_COLUMNS} FROM {} WHERE fingerprint = ?1",
            t.violations
        ))
        .map_err(fail)?;
    let mut events = Vec::new();
    for g in &groups.violations {
        let before: Option<String> = status
            .query_row([g.fingerprint], |row| row.get(0))
            .optional()
            .map_err(fail)?;
        let e = g.example;
        upsert
            .execute(params![
                g.fingerprint,
                g.directive,
                g.blocked,
                g.document,
                g.document_host,
                micros(g.first_seen),
                micros(g.last_seen),
                g.count,
                e.id.to_bytes(),
                e.blocked_uri.as_deref(),
                e.original_policy.as_deref(),
                e.disposition.as_deref(),
                e.script_sample.as_deref(),
                e.source_file.as_deref(),
                e.line_number,
                e.column_number,
            ])
            .map_err(fail)?;
        let kind = match before.as_deref() {
            None => ViolationEventKind::New,
            Some("fixed") => ViolationEventKind::Regressed,
            Some(_) => continue,
        };
        let violation = read
            .query_row([g.fingerprint], |row| violation(row, None))
            .map_err(fail)?;
        events.push(ViolationEvent { kind, violation });
    }
    let mut hours = conn
        .prepare_cached(&format!(
            "INSERT INTO {} AS h (hour, fingerprint, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (hour, fingerprint) DO UPDATE SET count = h.count + excluded.count",
            t.violation_hours
        ))
        .map_err(fail)?;
    for (fingerprint, hour, count) in &groups.hours {
        hours
            .execute(params![micros(*hour), fingerprint, count])
            .map_err(fail)?;
    }
    let mut days = conn
        .prepare_cached(&format!(
            "INSERT INTO {} AS d (day, fingerprint, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (day, fingerprint) DO UPDATE SET count = d.count + excluded.count",
            t.violation_days
        ))
        .map_err(fail)?;
    for (fingerprint, day, count) in &groups.days {
        days.execute(params![micros(*day), fingerprint, count])
            .map_err(fail)?;
    }
    let mut totals = conn
        .prepare_cached(&format!(
            "INSERT INTO {} AS h (hour, total, invalid, violations) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (hour) DO UPDATE SET total = h.total + excluded.total,
                 invalid = h.invalid + excluded.invalid,
                 violations = h.violations + excluded.violations",
            t.hours
        ))
        .map_err(fail)?;
    for h in &groups.totals {
        totals
            .execute(params![micros(h.hour), h.total, h.invalid, h.violations])
            .map_err(fail)?;
    }
    Ok(WriteOutcome {
        inserted: stored.len() as u64,
        events,
    })
}
