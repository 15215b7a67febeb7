//! The table's shape and its versioned migrations.

use jiff::{SignedDuration, Timestamp};
use tokio_postgres::GenericClient;

pub(crate) use crate::store::Tables;
use crate::store::{StoreError, StoreErrorKind};

/// Every migration and partition change runs under this advisory lock, so two processes that
/// migrate at once take turns instead of racing on the catalog.
pub(crate) const LOCK_KEY: i64 = 0x6373_705f_7265_7073;

/// Where applied migration versions are recorded, one row per table and version.
pub(crate) const MIGRATIONS_TABLE: &str = "tower_csp_reports_migrations";

/// Room left after the table name for the suffixes of partition and index names
/// (`_p20261123`, and `_p20261123_pkey` for a partition's key) within Postgres' 63-byte
/// identifier limit.
pub(crate) const MAX_TABLE_LEN: usize = 46;

/// The built-in columns written for every report, in write order.
pub(crate) const COLUMNS: &[(&str, &str)] = &[
    ("id", "uuid"),
    ("received_at", "timestamptz"),
    ("age_ms", "bigint"),
    ("format", "text"),
    ("report_type", "text"),
    ("invalid_reason", "text"),
    ("raw_json", "json"),
    ("raw_text", "text"),
    ("user_agent", "text"),
    ("client_ip", "inet"),
    ("url", "text"),
    ("document_uri", "text"),
    ("referrer", "text"),
    ("blocked_uri", "text"),
    ("effective_directive", "text"),
    ("violated_directive", "text"),
    ("original_policy", "text"),
    ("disposition", "text"),
    ("status_code", "integer"),
    ("script_sample", "text"),
    ("source_file", "text"),
    ("line_number", "bigint"),
    ("column_number", "bigint"),
    ("fingerprint", "bigint"),
];

/// Column names a custom column may not take.
pub(crate) fn is_reserved(name: &str) -> bool {
    name == "valid" || COLUMNS.iter().any(|(column, _)| *column == name)
}

pub(crate) use crate::store::identifier;

/// A validated identifier, quoted so that its case is kept.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// The effective directive of a row, as grouped (see `store::group`).
const DIRECTIVE: &str = "coalesce(effective_directive, violated_directive, '')";
/// The document without query and fragment, like `report::strip_query`.
const DOCUMENT: &str = "split_part(split_part(coalesce(document_uri, url, ''), '#', 1), '?', 1)";
/// The start of the UTC hour of `received_at`.
pub(crate) const HOUR: &str = "to_timestamp(floor(extract(epoch FROM received_at) / 3600) * 3600)";
/// The start of the UTC day of `received_at`.
const DAY_START: &str = "to_timestamp(floor(extract(epoch FROM received_at) / 86400) * 86400)";

/// The migrations, oldest first; the version of each is its position plus one.
fn migrations(t: &Tables, partitioned: bool) -> Vec<String> {
    let columns: String = COLUMNS
        .iter()
        .map(|(name, ty)| {
            let not_null = matches!(*name, "id" | "received_at" | "format" | "report_type");
            format!(
                "    {name} {ty}{},\n",
                if not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    let partition = if partitioned {
        " PARTITION BY RANGE (received_at)"
    } else {
        ""
    };
    let Tables {
        name,
        reports,
        violations,
        violation_hours,
        violation_days,
        hours,
        claims,
    } = t;
    let index = |suffix: &str| quote(&format!("{name}_{suffix}"));
    // The blocked origin or keyword of a row, like `report::blocked_origin`.
    let b = "coalesce(blocked_uri, '')";
    let blocked = format!(
        "CASE WHEN strpos({b}, '://') > 0 THEN left({b}, strpos({b}, '://') + 2) || \
         split_part(split_part(split_part(substr({b}, strpos({b}, '://') + 3), '/', 1), '?', 1), '#', 1) \
         ELSE split_part({b}, ':', 1) END"
    );
    // The host of the document, like `store::violation::url_host`.
    let authority = "regexp_replace(split_part(CASE WHEN strpos(d, '://') > 0 \
        THEN substr(d, strpos(d, '://') + 3) ELSE '' END, '/', 1), '^.*@', '')";
    let host = format!(
        "lower(CASE WHEN left({authority}, 1) = '[' THEN split_part({authority}, ']', 1) || ']' \
         ELSE split_part({authority}, ':', 1) END)"
    );
    let grouped = "valid AND report_type = 'csp-violation'";
    vec![
        format!(
            "CREATE TABLE {reports} (\n{columns}    \
             valid boolean GENERATED ALWAYS AS (invalid_reason IS NULL) STORED,\n    \
             PRIMARY KEY (received_at, id)\n){partition};",
        ),
        // The violation tables, filled from the reports already stored.
        format!(
            "CREATE TABLE {violations} (
                 fingerprint bigint NOT NULL,
                 directive text NOT NULL,
                 blocked text NOT NULL,
                 document text NOT NULL,
                 document_host text NOT NULL,
                 first_seen timestamptz NOT NULL,
                 last_seen timestamptz NOT NULL,
                 count bigint NOT NULL,
                 status text NOT NULL DEFAULT 'new'
                     CHECK (status IN ('new', 'acknowledged', 'ignored', 'fixed')),
                 note text,
                 status_changed_at timestamptz,
                 regressed_at timestamptz,
                 regressed_by uuid,
                 example_id uuid NOT NULL,
                 example_blocked_uri text,
                 example_policy text,
                 example_disposition text,
                 example_sample text,
                 example_source_file text,
                 example_line bigint,
                 example_column bigint,
                 CONSTRAINT {v_pk} PRIMARY KEY (fingerprint)
             ) WITH (fillfactor = 70);
             CREATE TABLE {violation_hours} (
                 hour timestamptz NOT NULL,
                 fingerprint bigint NOT NULL,
                 count bigint NOT NULL,
                 CONSTRAINT {vh_pk} PRIMARY KEY (hour, fingerprint)
             ) WITH (fillfactor = 70);
             CREATE INDEX {vh_fp} ON {violation_hours} (fingerprint, hour);
             CREATE TABLE {violation_days} (
                 day timestamptz NOT NULL,
                 fingerprint bigint NOT NULL,
                 count bigint NOT NULL,
                 CONSTRAINT {vd_pk} PRIMARY KEY (day, fingerprint)
             ) WITH (fillfactor = 70);
             CREATE TABLE {hours} (
                 hour timestamptz NOT NULL,
                 total bigint NOT NULL,
                 invalid bigint NOT NULL,
                 violations bigint NOT NULL,
                 CONSTRAINT {h_pk} PRIMARY KEY (hour)
             ) WITH (fillfactor = 70);
             CREATE TABLE {claims} (
                 name text NOT NULL,
                 window_start timestamptz NOT NULL,
                 claimed_at timestamptz NOT NULL DEFAULT now(),
                 CONSTRAINT {c_pk} PRIMARY KEY (name, window_start)
             );
             CREATE INDEX {fp} ON {reports} (fingerprint, received_at);
             CREATE INDEX {invalid} ON {reports} (received_at, id) WHERE NOT valid;
             INSERT INTO {hours}
                 SELECT {HOUR}, count(*), count(*) FILTER (WHERE NOT valid),
                        count(*) FILTER (WHERE {grouped})
                 FROM {reports} GROUP BY 1;
             INSERT INTO {violation_hours}
                 SELECT {HOUR}, fingerprint, count(*) FROM {reports} WHERE {grouped} GROUP BY 1, 2;
             INSERT INTO {violation_days}
                 SELECT {DAY_START}, fingerprint, count(*) FROM {reports} WHERE {grouped} GROUP BY 1, 2;
             INSERT INTO {violations} (fingerprint, directive, blocked, document, document_host,
                     first_seen, last_seen, count, example_id, example_blocked_uri, example_policy,
                     example_disposition, example_sample, example_source_file, example_line,
                     example_column)
                 SELECT DISTINCT ON (fingerprint) fingerprint, {DIRECTIVE}, {blocked}, d,
                        {host}, min(received_at) OVER w, max(received_at) OVER w,
                        count(*) OVER w, id, blocked_uri, original_policy, disposition,
                        script_sample, source_file, line_number, column_number
                 FROM (SELECT *, {DOCUMENT} AS d FROM {reports} WHERE {grouped}) r
                 WINDOW w AS (PARTITION BY fingerprint)
                 ORDER BY fingerprint, received_at, id;",
            v_pk = index("v_pk"),
            vh_pk = index("vh_pk"),
            vh_fp = index("vh_fp"),
            vd_pk = index("vd_pk"),
            h_pk = index("h_pk"),
            c_pk = index("c_pk"),
            fp = index("fp"),
            invalid = index("invalid"),
        ),
    ]
}

/// Creates or upgrades the tables, under the advisory lock, in one transaction.
pub(crate) async fn migrate(
    client: &mut tokio_postgres::Client,
    tables: &Tables,
    partitioned: bool,
    custom: &[super::CustomColumn],
) -> Result<(), StoreError> {
    let table = tables.name.as_str();
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
             table_name text NOT NULL,
             version integer NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (table_name, version)
         )"
    ))
    .await?;
    let row = tx
        .query_one(
            &format!(
                "SELECT coalesce(max(version), 0), to_regclass($2) IS NOT NULL \
                 FROM {MIGRATIONS_TABLE} WHERE table_name = $1"
            ),
            &[&table, &quote(table)],
        )
        .await?;
    let (mut applied, exists): (i32, bool) = (row.get(0), row.get(1));
    if applied > 0 && !exists {
        // Dropped by hand since it was made: its versions no longer describe anything.
        tx.execute(
            &format!("DELETE FROM {MIGRATIONS_TABLE} WHERE table_name = $1"),
            &[&table],
        )
        .await?;
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS {}, {}, {}, {}, {}",
            tables.violations,
            tables.violation_hours,
            tables.violation_days,
            tables.hours,
            tables.claims
        ))
        .await?;
        applied = 0;
    }
    let pending = migrations(tables, partitioned);
    let known = i32::try_from(pending.len()).unwrap_or(i32::MAX);
    if applied > known {
        return Err(StoreError::new(
            StoreErrorKind::NewerSchema,
            format!(
                "table {table} has schema version {applied}, written by a newer version of \
                 tower-csp-reports; this one knows versions up to {known}: upgrade it"
            ),
        ));
    }
    for (version, sql) in (1..)
        .zip(&pending)
        .skip(usize::try_from(applied).unwrap_or(0))
    {
        tx.batch_execute(sql).await?;
        tx.execute(
            &format!("INSERT INTO {MIGRATIONS_TABLE} (table_name, version) VALUES ($1, $2)"),
            &[&table, &version],
        )
        .await?;
    }

    let kind: Option<i8> = tx
        .query_one(
            "SELECT (SELECT relkind::\"char\" FROM pg_class WHERE oid = to_regclass($1))",
            &[&quote(table)],
        )
        .await?
        .get(0);
    let is_partitioned = kind == Some(b'p' as i8);
    if is_partitioned != partitioned {
        return Err(StoreError::schema(format!(
            "table {table} is {}partitioned, but the store is configured {}",
            if is_partitioned { "" } else { "not " },
            if partitioned {
                "with daily partitions"
            } else {
                "without partitions"
            },
        )));
    }

    for column in custom {
        tx.batch_execute(&format!(
            "ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}",
            quote(table),
            quote(column.name()),
            column.sql_type()
        ))
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

const DAY: i64 = 86_400;

/// The UTC day a timestamp falls in, as days since the Unix epoch.
pub(crate) fn day_of(ts: Timestamp) -> i64 {
    ts.as_second().div_euclid(DAY)
}

/// Midnight UTC at the start of a day.
pub(crate) fn day_start(day: i64) -> Timestamp {
    Timestamp::from_second(day.saturating_mul(DAY)).unwrap_or(Timestamp::MAX)
}

/// The name of a table's partition for one day: `{table}_pYYYYMMDD`.
pub(crate) fn partition_name(table: &str, day: i64) -> String {
    format!("{table}_p{}", day_start(day).strftime("%Y%m%d"))
}

/// The day a partition covers, from its name.
pub(crate) fn partition_day(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let date = jiff::civil::Date::strptime("%Y%m%d", digits).ok()?;
    let ts = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
    Some(day_of(ts))
}

/// Creates the partitions for the given days that do not exist yet, under the advisory lock.
pub(crate) async fn create_partitions(
    client: &mut tokio_postgres::Client,
    table: &str,
    days: impl IntoIterator<Item = i64>,
) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    let mut sql = String::new();
    for day in days {
        let from = day_start(day);
        let to = from
            .saturating_add(SignedDuration::from_secs(DAY))
            .unwrap_or(Timestamp::MAX);
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ('{from}') TO ('{to}');\n",
            quote(&partition_name(table, day)),
            quote(table),
        ));
    }
    if !sql.is_empty() {
        tx.batch_execute(&sql).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The days of the existing partitions of a table.
pub(crate) async fn partitions(
    client: &impl GenericClient,
    table: &str,
) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = to_regclass($1)",
            &[&quote(table)],
        )
        .await?;
    let mut days: Vec<(i64, String)> = rows
        .iter()
        .filter_map(|row| {
            let name: String = row.get(0);
            partition_day(table, &name).map(|day| (day, name))
        })
        .collect();
    days.sort();
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let ts: Timestamp = "2026-11-23T23:59:59.999Z".parse().unwrap();
        let day = day_of(ts);
        assert_eq!(partition_name("csp", day), "csp_p20261123");
        assert_eq!(partition_day("csp", "csp_p20261123"), Some(day));
        assert_eq!(day_start(day).to_string(), "2026-11-23T00:00:00Z");
        let before: Timestamp = "1969-12-31T23:00:00Z".parse().unwrap();
        assert_eq!(partition_name("t", day_of(before)), "t_p19691231");
        for other in [
            "csp_p2026112",
            "csp_x20261123",
            "other_p20261123",
            "csp_p2026112x",
        ] {
            assert_eq!(partition_day("csp", other), None, "{other}");
        }
    }
}
