//! The write side of the violation tables: one upsert per table for a whole batch.

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Row, Transaction};

use super::schema::Tables;
use super::value::Value;
use crate::store::group::{BatchGroups, BatchViolation, parse_uuid};
use crate::store::{
    StoreError, Violation, ViolationEvent, ViolationEventKind, ViolationExample, ViolationStatus,
};
use crate::{Fingerprint, ReportId};

/// The columns of a violation row, in the order [`violation`] reads them.
pub(crate) const VIOLATION_COLUMNS: &str = "fingerprint, directive, blocked, document, \
    document_host, first_seen, last_seen, count, status, note, status_changed_at, regressed_at, \
    example_id::text, example_blocked_uri, example_policy, example_disposition, example_sample, \
    example_source_file, example_line, example_column";

/// A violation from a row that starts with [`VIOLATION_COLUMNS`]; `in_range` when the query
/// counted a range, else its count.
pub(crate) fn violation(row: &Row, in_range: Option<u64>) -> Violation {
    let count = row.get::<_, i64>(7).max(0).unsigned_abs();
    let number = |i: usize| {
        row.get::<_, Option<i64>>(i)
            .and_then(|n| u32::try_from(n).ok())
    };
    Violation {
        fingerprint: Fingerprint(row.get::<_, i64>(0) as u64),
        directive: row.get(1),
        blocked: row.get(2),
        document: row.get(3),
        document_host: row.get(4),
        first_seen: row.get(5),
        last_seen: row.get(6),
        count,
        in_range: in_range.unwrap_or(count),
        status: ViolationStatus::from_name(row.get(8)).unwrap_or(ViolationStatus::New),
        note: row.get(9),
        status_changed_at: row.get(10),
        regressed_at: row.get(11),
        example: ViolationExample {
            report_id: parse_uuid(row.get(12)).unwrap_or(ReportId(0)),
            blocked_uri: row.get(13),
            original_policy: row.get(14),
            disposition: row.get(15),
            script_sample: row.get(16),
            source_file: row.get(17),
            line_number: number(18),
            column_number: number(19),
        },
    }
}

fn opt_text(s: Option<&str>) -> Value<'_> {
    s.map_or(Value::Null, Value::Text)
}

/// Upserts a batch's groups, violations first, each table's rows in key order so that two
/// writers lock them in the same order; returns the violations the write created or reopened.
///
/// A violation is created by exactly one of two concurrent writers (the other's upsert waits
/// for it and updates); it is reopened by the write whose first report of it set
/// `regressed_by`, a report id no other write carries.
pub(crate) async fn upsert<'a>(
    tx: &Transaction<'_>,
    tables: &Tables,
    groups: &'a BatchGroups<'a>,
) -> Result<Vec<ViolationEvent>, StoreError> {
    if groups.totals.is_empty() {
        return Ok(Vec::new());
    }
    let v = &groups.violations;
    fn column<'a>(
        v: &'a [BatchViolation<'a>],
        f: impl Fn(&'a BatchViolation<'a>) -> Value<'a>,
    ) -> Vec<Value<'a>> {
        v.iter().map(f).collect()
    }
    let col = |f: fn(&'a BatchViolation<'a>) -> Value<'a>| column(v, f);
    let fingerprints: Vec<Value<'_>> = col(|g| Value::Int8(g.fingerprint));
    let directives = col(|g| Value::Text(g.directive));
    let blocked = col(|g| Value::Text(g.blocked));
    let documents = col(|g| Value::Text(g.document));
    let hosts = col(|g| Value::Text(&g.document_host));
    let first = col(|g| Value::Time(g.first_seen));
    let last = col(|g| Value::Time(g.last_seen));
    let counts = col(|g| Value::Int8(g.count));
    let ids = col(|g| Value::Uuid(g.example.id.to_bytes()));
    let blocked_uris = col(|g| opt_text(g.example.blocked_uri.as_deref()));
    let policies = col(|g| opt_text(g.example.original_policy.as_deref()));
    let dispositions = col(|g| opt_text(g.example.disposition.as_deref()));
    let samples = col(|g| opt_text(g.example.script_sample.as_deref()));
    let files = col(|g| opt_text(g.example.source_file.as_deref()));
    let lines = col(|g| {
        g.example
            .line_number
            .map_or(Value::Null, |n| Value::Int8(n.into()))
    });
    let columns = col(|g| {
        g.example
            .column_number
            .map_or(Value::Null, |n| Value::Int8(n.into()))
    });
    let violations_sql = format!(
        "WITH up AS (
             INSERT INTO {t} AS v (fingerprint, directive, blocked, document, document_host,
                 first_seen, last_seen, count, example_id, example_blocked_uri, example_policy,
                 example_disposition, example_sample, example_source_file, example_line,
                 example_column)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::timestamptz[], $7::timestamptz[], $8::bigint[], $9::uuid[], $10::text[],
                 $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[], $16::bigint[])
             ORDER BY 1
             ON CONFLICT (fingerprint) DO UPDATE SET
                 count = v.count + excluded.count,
                 first_seen = least(v.first_seen, excluded.first_seen),
                 last_seen = greatest(v.last_seen, excluded.last_seen),
                 status = CASE WHEN v.status = 'fixed' THEN 'new' ELSE v.status END,
                 status_changed_at = CASE WHEN v.status = 'fixed' THEN excluded.first_seen
                     ELSE v.status_changed_at END,
                 regressed_at = CASE WHEN v.status = 'fixed' THEN excluded.first_seen
                     ELSE v.regressed_at END,
                 regressed_by = CASE WHEN v.status = 'fixed' THEN excluded.example_id
                     ELSE v.regressed_by END
             RETURNING {VIOLATION_COLUMNS}, xmax = 0 AS created, regressed_by = ANY($9) AS reopened
         )
         SELECT * FROM up WHERE created OR reopened",
        t = tables.violations,
    );
    let hour_fps: Vec<Value<'_>> = groups.hours.iter().map(|h| Value::Int8(h.0)).collect();
    let hour_times: Vec<Value<'_>> = groups.hours.iter().map(|h| Value::Time(h.1)).collect();
    let hour_counts: Vec<Value<'_>> = groups.hours.iter().map(|h| Value::Int8(h.2)).collect();
    let hours_sql = format!(
        "INSERT INTO {t} AS h (fingerprint, hour, count)
         SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) ORDER BY 1, 2
         ON CONFLICT (hour, fingerprint) DO UPDATE SET count = h.count + excluded.count",
        t = tables.violation_hours,
    );
    let day_fps: Vec<Value<'_>> = groups.days.iter().map(|d| Value::Int8(d.0)).collect();
    let day_times: Vec<Value<'_>> = groups.days.iter().map(|d| Value::Time(d.1)).collect();
    let day_counts: Vec<Value<'_>> = groups.days.iter().map(|d| Value::Int8(d.2)).collect();
    let days_sql = format!(
        "INSERT INTO {t} AS d (fingerprint, day, count)
         SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::bigint[]) ORDER BY 1, 2
         ON CONFLICT (day, fingerprint) DO UPDATE SET count = d.count + excluded.count",
        t = tables.violation_days,
    );
    let totals = &groups.totals;
    let total_hours: Vec<Value<'_>> = totals.iter().map(|h| Value::Time(h.hour)).collect();
    let total_all: Vec<Value<'_>> = totals.iter().map(|h| Value::Int8(h.total)).collect();
    let total_invalid: Vec<Value<'_>> = totals.iter().map(|h| Value::Int8(h.invalid)).collect();
    let total_violations: Vec<Value<'_>> =
        totals.iter().map(|h| Value::Int8(h.violations)).collect();
    let totals_sql = format!(
        "INSERT INTO {t} AS h (hour, total, invalid, violations)
         SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[], $4::bigint[])
         ORDER BY 1
         ON CONFLICT (hour) DO UPDATE SET total = h.total + excluded.total,
             invalid = h.invalid + excluded.invalid,
             violations = h.violations + excluded.violations",
        t = tables.hours,
    );
    let (bigints, texts, times, uuids) = (
        Type::INT8_ARRAY,
        Type::TEXT_ARRAY,
        Type::TIMESTAMPTZ_ARRAY,
        Type::UUID_ARRAY,
    );
    let totals_params: [(&(dyn ToSql + Sync), Type); 4] = [
        (&total_hours, times.clone()),
        (&total_all, bigints.clone()),
        (&total_invalid, bigints.clone()),
        (&total_violations, bigints.clone()),
    ];
    if v.is_empty() {
        tx.execute_typed(&totals_sql, &totals_params).await?;
        return Ok(Vec::new());
    }
    let violation_params: [(&(dyn ToSql + Sync), Type); 16] = [
        (&fingerprints, bigints.clone()),
        (&directives, texts.clone()),
        (&blocked, texts.clone()),
        (&documents, texts.clone()),
        (&hosts, texts.clone()),
        (&first, times.clone()),
        (&last, times.clone()),
        (&counts, bigints.clone()),
        (&ids, uuids),
        (&blocked_uris, texts.clone()),
        (&policies, texts.clone()),
        (&dispositions, texts.clone()),
        (&samples, texts.clone()),
        (&files, texts.clone()),
        (&lines, bigints.clone()),
        (&columns, bigints.clone()),
    ];
    let hours_params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&hour_fps, bigints.clone()),
        (&hour_times, times.clone()),
        (&hour_counts, bigints.clone()),
    ];
    let days_params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&day_fps, bigints.clone()),
        (&day_times, times),
        (&day_counts, bigints),
    ];
    // The statements go out together and run one after the other, in this order.
    let (rows, _, _, _) = tokio::try_join!(
        tx.query_typed(&violations_sql, &violation_params),
        tx.execute_typed(&hours_sql, &hours_params),
        tx.execute_typed(&days_sql, &days_params),
        tx.execute_typed(&totals_sql, &totals_params),
    )?;
    let mut events: Vec<ViolationEvent> = rows
        .iter()
        .map(|row| ViolationEvent {
            kind: if row.get::<_, bool>(20) {
                ViolationEventKind::New
            } else {
                ViolationEventKind::Regressed
            },
            violation: violation(row, None),
        })
        .collect();
    events.sort_by_key(|e| e.violation.fingerprint.0 as i64);
    Ok(events)
}
