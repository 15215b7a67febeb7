//! Summaries, counts and the hourly chart: whole hours from the hourly tables, the rest of an
//! hour at either end of a range from the report rows.

use jiff::Timestamp;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{IsolationLevel, Row};

use super::schema::{HOUR, Tables};
use super::store::{MakeTls, PostgresStore};
use crate::Fingerprint;
use crate::store::group::stored_time;
use crate::store::{
    Counts, DaySplit, DirectiveHour, GroupCount, InvalidReport, RangeSplit, StoreError, Summary,
    SummaryOptions, TimeRange, ViolationStatus,
};

/// The valid CSP violations among report rows.
pub(crate) const GROUPED: &str = "valid AND report_type = 'csp-violation'";

/// A time as a statement parameter: to the microsecond, within what Postgres can hold.
pub(crate) fn bound(at: Timestamp) -> Timestamp {
    const FIRST: Timestamp = Timestamp::constant(-62_135_596_800, 0); // 0001-01-01
    stored_time(at.max(FIRST))
}

/// The six times of a split, as parameters: the whole hours, then the two edges.
pub(crate) fn split_params(split: &RangeSplit) -> [Timestamp; 6] {
    let [(a, b), (c, d)] = split.edges;
    [split.hours.0, split.hours.1, a, b, c, d].map(bound)
}

/// The row predicate of a split's edges, its parameters from `$p`.
pub(crate) fn edges(p: usize) -> String {
    format!(
        "((received_at >= ${} AND received_at < ${}) OR (received_at >= ${} AND received_at < ${}))",
        p,
        p + 1,
        p + 2,
        p + 3
    )
}

/// `(fingerprint, n)`: each violation's reports in a day split whose ten parameters start at
/// `$p` (see [`DaySplit::times`]), with `filter` (`AND fingerprint = $11`, say) applied to
/// every part.
pub(crate) fn counts_sql(t: &Tables, p: usize, filter: &str) -> String {
    format!(
        "SELECT fingerprint, sum(n)::bigint AS n FROM (
             SELECT fingerprint, count AS n FROM {vd} WHERE day >= ${p} AND day < ${p1} {filter}
             UNION ALL
             SELECT fingerprint, count FROM {vh}
             WHERE ((hour >= ${p2} AND hour < ${p3}) OR (hour >= ${p4} AND hour < ${p5})) {filter}
             UNION ALL
             SELECT fingerprint, count(*) FROM {r} WHERE {edges} AND {GROUPED} {filter}
             GROUP BY fingerprint
         ) counted GROUP BY fingerprint",
        vd = t.violation_days,
        vh = t.violation_hours,
        r = t.reports,
        p1 = p + 1,
        p2 = p + 2,
        p3 = p + 3,
        p4 = p + 4,
        p5 = p + 5,
        edges = edges(p + 6),
    )
}

/// The ten times of a day split, as parameters.
pub(crate) fn day_params(split: &DaySplit) -> [Timestamp; 10] {
    split.times().map(bound)
}

pub(crate) type Params<'a> = Vec<(&'a (dyn ToSql + Sync), Type)>;

pub(crate) fn time_params(times: &[Timestamp]) -> Params<'_> {
    times
        .iter()
        .map(|t| (t as &(dyn ToSql + Sync), Type::TIMESTAMPTZ))
        .collect()
}

fn count(row: &Row, i: usize) -> u64 {
    row.get::<_, i64>(i).max(0).unsigned_abs()
}

impl<Tls: MakeTls> PostgresStore<Tls> {
    /// A summary of `range`, read from the violation tables, or from the rows alone.
    pub(crate) async fn summary_split(
        &self,
        range: TimeRange,
        from_rows: bool,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        let t = &self.inner.tables;
        let (split, days) = if from_rows {
            (range.scan(), range.scan_days())
        } else {
            (range.split_hours(), range.split_days())
        };
        let times = split_params(&split);
        let day_times = day_params(&days);
        let totals_sql = format!(
            "SELECT (SELECT coalesce(sum(total), 0)::bigint FROM {h} WHERE hour >= $1 AND hour < $2)
                  + (SELECT count(*) FROM {r} WHERE {edges}),
                    (SELECT coalesce(sum(invalid), 0)::bigint FROM {h} WHERE hour >= $1 AND hour < $2)
                  + (SELECT count(*) FROM {r} WHERE {edges} AND NOT valid)",
            h = t.hours,
            r = t.reports,
            edges = edges(3),
        );
        let groups_sql = format!(
            "SELECT v.fingerprint, c.n, v.directive, v.blocked, v.document, v.status
             FROM ({counts}) c JOIN {v} v USING (fingerprint)",
            counts = counts_sql(t, 1, ""),
            v = t.violations,
        );
        let invalid_sql = format!(
            "SELECT id::text, received_at, invalid_reason, coalesce(raw_text, raw_json::text),
                    user_agent
             FROM {r} WHERE NOT valid AND received_at >= $1 AND received_at < $2
             ORDER BY received_at, id LIMIT $3",
            r = t.reports,
        );
        let limit = i64::try_from(options.top).unwrap_or(i64::MAX);
        let range_times = [bound(range.since()), bound(range.to())];
        let mut invalid_params = time_params(&range_times);
        invalid_params.push((&limit, Type::INT8));
        let params = time_params(&times);
        let group_params = time_params(&day_times);

        let mut conn = self.conn().await?;
        // One snapshot for every figure, and every query sent before the first answer is read.
        let tx = conn
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // Read from the violation tables, the figures come from some thousands of rows: JIT
        // compilation, which the planner may pick on its estimates, would cost more than the
        // query. From the rows, the server does as it would by default.
        let settings = if from_rows { "" } else { "SET LOCAL jit = off" };
        let (_, totals, groups, invalid) = tokio::try_join!(
            tx.batch_execute(settings),
            tx.query_typed(&totals_sql, &params),
            tx.query_typed(&groups_sql, &group_params),
            tx.query_typed(&invalid_sql, &invalid_params),
        )?;
        tx.commit().await?;
        let groups = groups
            .iter()
            .map(|row| GroupCount {
                fingerprint: Fingerprint(row.get::<_, i64>(0) as u64),
                count: count(row, 1),
                directive: row.get(2),
                blocked: row.get(3),
                document: row.get(4),
                status: ViolationStatus::from_name(row.get(5)).unwrap_or(ViolationStatus::New),
            })
            .collect();
        let invalid_reports = invalid
            .iter()
            .map(|row| InvalidReport {
                id: row.get(0),
                received_at: row.get(1),
                reason: row.get(2),
                raw: row.get::<_, Option<String>>(3).unwrap_or_default(),
                user_agent: row.get(4),
            })
            .collect();
        let (total, invalid) = totals
            .first()
            .map_or((0, 0), |row| (count(row, 0), count(row, 1)));
        Ok(Summary::assemble(
            range,
            total,
            invalid,
            groups,
            invalid_reports,
            options,
        ))
    }

    pub(crate) async fn range_counts(&self, range: TimeRange) -> Result<Counts, StoreError> {
        let t = &self.inner.tables;
        let times = split_params(&range.split_hours());
        let range_times = [bound(range.since()), bound(range.to())];
        let all: Vec<Timestamp> = times.iter().chain(&range_times).copied().collect();
        let sql = format!(
            "SELECT (SELECT coalesce(sum(total), 0)::bigint FROM {h} WHERE hour >= $1 AND hour < $2)
                  + (SELECT count(*) FROM {r} WHERE {edges}),
                    (SELECT coalesce(sum(invalid), 0)::bigint FROM {h} WHERE hour >= $1 AND hour < $2)
                  + (SELECT count(*) FROM {r} WHERE {edges} AND NOT valid),
                    (SELECT coalesce(sum(violations), 0)::bigint FROM {h} WHERE hour >= $1 AND hour < $2)
                  + (SELECT count(*) FROM {r} WHERE {edges} AND {GROUPED}),
                    (SELECT count(*) FROM {v} WHERE first_seen >= $7 AND first_seen < $8),
                    (SELECT count(*) FROM {v} WHERE regressed_at >= $7 AND regressed_at < $8)",
            h = t.hours,
            r = t.reports,
            v = t.violations,
            edges = edges(3),
        );
        let conn = self.conn().await?;
        let row = conn.query_typed_one(&sql, &time_params(&all)).await?;
        let (total, invalid) = (count(&row, 0), count(&row, 1));
        Ok(Counts {
            total,
            valid: total.saturating_sub(invalid),
            invalid,
            violation_reports: count(&row, 2),
            new_violations: count(&row, 3),
            regressed_violations: count(&row, 4),
        })
    }

    pub(crate) async fn directive_hours(
        &self,
        range: TimeRange,
    ) -> Result<Vec<DirectiveHour>, StoreError> {
        let t = &self.inner.tables;
        let times = split_params(&range.split_hours());
        let sql = format!(
            "SELECT c.hour, v.directive, sum(c.n)::bigint FROM (
                 SELECT hour, fingerprint, count AS n FROM {vh} WHERE hour >= $1 AND hour < $2
                 UNION ALL
                 SELECT {HOUR}, fingerprint, count(*) FROM {r} WHERE {edges} AND {GROUPED}
                 GROUP BY 1, 2
             ) c JOIN {v} v USING (fingerprint)
             GROUP BY 1, 2 ORDER BY 1, 2",
            vh = t.violation_hours,
            r = t.reports,
            v = t.violations,
            edges = edges(3),
        );
        let conn = self.conn().await?;
        let rows = conn.query_typed(&sql, &time_params(&times)).await?;
        Ok(rows
            .iter()
            .map(|row| DirectiveHour {
                hour: row.get(0),
                directive: row.get(1),
                count: count(row, 2),
            })
            .collect())
    }
}
