//! Retention: old reports deleted, the violation tables kept coherent with what is left (the
//! hourly counts of deleted reports go, each violation's count loses them; the violations
//! stay, with their status, note and times).

use rusqlite::Connection;

use super::schema::Tables;
use crate::store::{day_floor, hour_floor, micros};

const GROUPED: &str = "invalid_reason IS NULL AND report_type = 'csp-violation'";

/// How many reports were received before `before`.
pub(crate) fn count_older(
    conn: &Connection,
    t: &Tables,
    before: jiff::Timestamp,
) -> rusqlite::Result<u64> {
    let count: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {} WHERE received_at < ?1", t.reports),
        [micros(before)],
        |row| row.get(0),
    )?;
    Ok(count.max(0).unsigned_abs())
}

/// Deletes the reports received before `before`, on the writer's connection.
pub(crate) fn delete_older(
    conn: &Connection,
    t: &Tables,
    before: jiff::Timestamp,
) -> rusqlite::Result<u64> {
    let count = count_older(conn, t, before)?;
    let params = [micros(hour_floor(before)), micros(before)];
    if count > 0 {
        let r = &t.reports;
        let partial = format!(
            "SELECT fingerprint, count(*) AS n FROM {r} \
             WHERE received_at >= ?1 AND received_at < ?2 AND {GROUPED} GROUP BY fingerprint"
        );
        conn.execute(
            &format!(
                "UPDATE {v} AS v SET count = v.count - d.n FROM (
                     SELECT fingerprint, sum(n) AS n FROM (
                         SELECT fingerprint, count AS n FROM {vh} WHERE hour < ?1
                         UNION ALL {partial}
                     ) GROUP BY fingerprint
                 ) AS d WHERE v.fingerprint = d.fingerprint",
                v = t.violations,
                vh = t.violation_hours,
            ),
            params,
        )?;
        // The day `before` falls in loses its deleted reports; the days before it go.
        let day = micros(day_floor(before));
        conn.execute(
            &format!(
                "UPDATE {vd} AS v SET count = v.count - d.n FROM (
                     SELECT fingerprint, sum(n) AS n FROM (
                         SELECT fingerprint, count AS n FROM {vh} WHERE hour >= ?3 AND hour < ?1
                         UNION ALL {partial}
                     ) GROUP BY fingerprint
                 ) AS d WHERE v.day = ?3 AND v.fingerprint = d.fingerprint",
                vd = t.violation_days,
                vh = t.violation_hours,
            ),
            [params[0], params[1], day],
        )?;
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE day < ?1 OR (day = ?1 AND count <= 0)",
                t.violation_days
            ),
            [day],
        )?;
        conn.execute(
            &format!(
                "UPDATE {vh} AS h SET count = h.count - d.n FROM ({partial}) AS d \
                 WHERE h.hour = ?1 AND h.fingerprint = d.fingerprint",
                vh = t.violation_hours,
            ),
            params,
        )?;
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE hour < ?1 OR (hour = ?1 AND count <= 0)",
                t.violation_hours
            ),
            [params[0]],
        )?;
        conn.execute(
            &format!(
                "UPDATE {h} AS h SET total = h.total - d.total, invalid = h.invalid - d.invalid,
                     violations = h.violations - d.violations
                 FROM (SELECT count(*) AS total,
                              count(*) FILTER (WHERE invalid_reason IS NOT NULL) AS invalid,
                              count(*) FILTER (WHERE {GROUPED}) AS violations
                       FROM {r} WHERE received_at >= ?1 AND received_at < ?2) AS d
                 WHERE h.hour = ?1",
                h = t.hours,
            ),
            params,
        )?;
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE hour < ?1 OR (hour = ?1 AND total <= 0)",
                t.hours
            ),
            [params[0]],
        )?;
        conn.execute(
            &format!("DELETE FROM {r} WHERE received_at < ?1"),
            [params[1]],
        )?;
    }
    conn.execute(
        &format!("DELETE FROM {} WHERE window_start < ?1", t.claims),
        [params[1]],
    )?;
    Ok(count)
}
