//! Retention: old reports deleted (whole days dropped with partitions), the violation tables
//! kept coherent with what is left.

use jiff::Timestamp;
use tokio_postgres::types::Type;

use super::schema::{self, Tables, quote};
use super::summary::{GROUPED, bound};
use crate::store::{StoreError, day_floor, hour_floor};

pub(crate) async fn delete_older_than(
    client: &mut tokio_postgres::Client,
    t: &Tables,
    partitioned: bool,
    before: Timestamp,
    dry_run: bool,
) -> Result<u64, StoreError> {
    let r = &t.reports;
    let before = bound(before);
    let hour = bound(hour_floor(before));
    let day = bound(day_floor(before));
    let tx = client.transaction().await?;
    if partitioned && !dry_run {
        // Partitions are created and dropped under the same lock, by the sink and by us.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::LOCK_KEY])
            .await?;
    }
    let count: i64 = tx
        .query_typed_one(
            &format!("SELECT count(*) FROM {r} WHERE received_at < $1"),
            &[(&before, Type::TIMESTAMPTZ)],
        )
        .await?
        .get(0);
    if !dry_run && count > 0 {
        let params = [
            (
                &hour as &(dyn tokio_postgres::types::ToSql + Sync),
                Type::TIMESTAMPTZ,
            ),
            (&before, Type::TIMESTAMPTZ),
        ];
        // The reports deleted per violation: whole hours from the hourly counts, the hour
        // `before` falls in from the rows; taken off each violation's count.
        let partial = format!(
            "SELECT fingerprint, count(*) AS n FROM {r} \
             WHERE received_at >= $1 AND received_at < $2 AND {GROUPED} GROUP BY fingerprint"
        );
        tx.execute_typed(
            &format!(
                "UPDATE {v} v SET count = v.count - d.n FROM (
                     SELECT fingerprint, sum(n)::bigint AS n FROM (
                         SELECT fingerprint, count AS n FROM {vh} WHERE hour < $1
                         UNION ALL {partial}
                     ) p GROUP BY fingerprint
                 ) d WHERE v.fingerprint = d.fingerprint",
                v = t.violations,
                vh = t.violation_hours,
            ),
            &params,
        )
        .await?;
        // The day `before` falls in loses its deleted reports: whole hours from the hourly
        // counts, the last hour from the rows; the days before it go.
        tx.execute_typed(
            &format!(
                "UPDATE {vd} v SET count = v.count - d.n FROM (
                     SELECT fingerprint, sum(n)::bigint AS n FROM (
                         SELECT fingerprint, count AS n FROM {vh} WHERE hour >= $3 AND hour < $1
                         UNION ALL {partial}
                     ) p GROUP BY fingerprint
                 ) d WHERE v.day = $3 AND v.fingerprint = d.fingerprint",
                vd = t.violation_days,
                vh = t.violation_hours,
            ),
            &[
                params[0].clone(),
                params[1].clone(),
                (&day, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
        tx.execute_typed(
            &format!(
                "DELETE FROM {} WHERE day < $1 OR (day = $1 AND count <= 0)",
                t.violation_days
            ),
            &[(&day, Type::TIMESTAMPTZ)],
        )
        .await?;
        tx.execute_typed(
            &format!(
                "UPDATE {vh} h SET count = h.count - d.n FROM ({partial}) d \
                 WHERE h.hour = $1 AND h.fingerprint = d.fingerprint",
                vh = t.violation_hours,
            ),
            &params,
        )
        .await?;
        tx.execute_typed(
            &format!(
                "DELETE FROM {vh} WHERE hour < $1 OR (hour = $1 AND count <= 0)",
                vh = t.violation_hours
            ),
            &[(&hour, Type::TIMESTAMPTZ)],
        )
        .await?;
        tx.execute_typed(
            &format!(
                "UPDATE {h} h SET total = h.total - d.total, invalid = h.invalid - d.invalid,
                     violations = h.violations - d.violations
                 FROM (SELECT count(*) AS total, count(*) FILTER (WHERE NOT valid) AS invalid,
                              count(*) FILTER (WHERE {GROUPED}) AS violations
                       FROM {r} WHERE received_at >= $1 AND received_at < $2) d
                 WHERE h.hour = $1",
                h = t.hours,
            ),
            &params,
        )
        .await?;
        tx.execute_typed(
            &format!(
                "DELETE FROM {h} WHERE hour < $1 OR (hour = $1 AND total <= 0)",
                h = t.hours
            ),
            &[(&hour, Type::TIMESTAMPTZ)],
        )
        .await?;
    }
    if !dry_run {
        if partitioned {
            // Whole days before the limit go at once: no row-by-row delete, no bloat.
            let first_kept = schema::day_of(before);
            let old: Vec<String> = schema::partitions(&tx, &t.name)
                .await?
                .into_iter()
                .filter(|(day, _)| *day < first_kept)
                .map(|(_, name)| quote(&name))
                .collect();
            if !old.is_empty() {
                tx.batch_execute(&format!("DROP TABLE {}", old.join(", ")))
                    .await?;
            }
        }
        // Without partitions, every old row; with them, the rows of the day `before` falls in.
        tx.execute_typed(
            &format!("DELETE FROM {r} WHERE received_at < $1"),
            &[(&before, Type::TIMESTAMPTZ)],
        )
        .await?;
        tx.execute_typed(
            &format!("DELETE FROM {} WHERE window_start < $1", t.claims),
            &[(&before, Type::TIMESTAMPTZ)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(count.unsigned_abs())
}
