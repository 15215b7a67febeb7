//! The SQLite schema, its versioned migrations, and opening a file the right way.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::error::sqlite_error;
pub(crate) use crate::store::Tables;
use crate::store::{StoreError, StoreErrorKind};

/// Where applied migration versions are recorded, one row per table and version.
const MIGRATIONS_TABLE: &str = "tower_csp_reports_migrations";

/// The migrations, oldest first; the version of each is its position plus one.
fn migrations(t: &Tables) -> Vec<String> {
    let name = &t.name;
    vec![format!(
        "CREATE TABLE {r} (
             seq INTEGER PRIMARY KEY,
             id BLOB NOT NULL UNIQUE,
             received_at INTEGER NOT NULL,
             age_ms INTEGER,
             format TEXT NOT NULL,
             report_type TEXT NOT NULL,
             invalid_reason TEXT,
             raw_json TEXT,
             raw_text TEXT,
             user_agent TEXT,
             client_ip TEXT,
             url TEXT,
             document_uri TEXT,
             referrer TEXT,
             blocked_uri TEXT,
             effective_directive TEXT,
             violated_directive TEXT,
             original_policy TEXT,
             disposition TEXT,
             status_code INTEGER,
             script_sample TEXT,
             source_file TEXT,
             line_number INTEGER,
             column_number INTEGER,
             fingerprint INTEGER NOT NULL
         );
         CREATE INDEX \"{name}_time\" ON {r} (received_at, id);
         CREATE INDEX \"{name}_fp\" ON {r} (fingerprint, received_at);
         CREATE INDEX \"{name}_invalid\" ON {r} (received_at, id) WHERE invalid_reason IS NOT NULL;
         CREATE TABLE {v} (
             fingerprint INTEGER PRIMARY KEY,
             directive TEXT NOT NULL,
             blocked TEXT NOT NULL,
             document TEXT NOT NULL,
             document_host TEXT NOT NULL,
             first_seen INTEGER NOT NULL,
             last_seen INTEGER NOT NULL,
             count INTEGER NOT NULL,
             status TEXT NOT NULL DEFAULT 'new'
                 CHECK (status IN ('new', 'acknowledged', 'ignored', 'fixed')),
             note TEXT,
             status_changed_at INTEGER,
             regressed_at INTEGER,
             example_id BLOB NOT NULL,
             example_blocked_uri TEXT,
             example_policy TEXT,
             example_disposition TEXT,
             example_sample TEXT,
             example_source_file TEXT,
             example_line INTEGER,
             example_column INTEGER
         );
         CREATE TABLE {vh} (
             hour INTEGER NOT NULL,
             fingerprint INTEGER NOT NULL,
             count INTEGER NOT NULL,
             PRIMARY KEY (hour, fingerprint)
         ) WITHOUT ROWID;
         CREATE INDEX \"{name}_vh_fp\" ON {vh} (fingerprint, hour);
         CREATE TABLE {vd} (
             day INTEGER NOT NULL,
             fingerprint INTEGER NOT NULL,
             count INTEGER NOT NULL,
             PRIMARY KEY (day, fingerprint)
         ) WITHOUT ROWID;
         CREATE TABLE {h} (
             hour INTEGER PRIMARY KEY,
             total INTEGER NOT NULL,
             invalid INTEGER NOT NULL,
             violations INTEGER NOT NULL
         );
         CREATE TABLE {c} (
             name TEXT NOT NULL,
             window_start INTEGER NOT NULL,
             claimed_at INTEGER NOT NULL,
             PRIMARY KEY (name, window_start)
         ) WITHOUT ROWID;",
        r = t.reports,
        v = t.violations,
        vh = t.violation_hours,
        vd = t.violation_days,
        h = t.hours,
        c = t.claims,
    )]
}

/// The newest schema version this build knows.
pub(crate) fn known_version(t: &Tables) -> i64 {
    migrations(t).len() as i64
}

/// The schema version recorded for the tables (0: none).
fn applied_version(conn: &Connection, t: &Tables) -> rusqlite::Result<i64> {
    let has_table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [MIGRATIONS_TABLE],
            |row| row.get(0),
        )
        .optional()?;
    if has_table.is_none() {
        return Ok(0);
    }
    conn.query_row(
        &format!("SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE} WHERE table_name = ?1"),
        [&t.name],
        |row| row.get(0),
    )
}

fn newer(path: &Path, t: &Tables, applied: i64) -> StoreError {
    StoreError::new(
        StoreErrorKind::NewerSchema,
        format!(
            "{}: table {} has schema version {applied}, written by a newer version of \
             tower-csp-reports; this one knows versions up to {}: upgrade it",
            path.display(),
            t.name,
            known_version(t)
        ),
    )
}

/// Creates or upgrades the tables, on the writer's connection, inside its transaction.
pub(crate) fn migrate(conn: &Connection, path: &Path, t: &Tables) -> Result<(), StoreError> {
    let fail = |e| sqlite_error(path, e);
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
             table_name TEXT NOT NULL,
             version INTEGER NOT NULL,
             applied_at INTEGER NOT NULL,
             PRIMARY KEY (table_name, version)
         )"
    ))
    .map_err(fail)?;
    let applied = applied_version(conn, t).map_err(fail)?;
    if applied > known_version(t) {
        return Err(newer(path, t, applied));
    }
    let now = jiff::Timestamp::now().as_microsecond();
    for (version, sql) in (1..).zip(migrations(t)).skip(applied.max(0) as usize) {
        conn.execute_batch(&sql).map_err(fail)?;
        conn.execute(
            &format!(
                "INSERT INTO {MIGRATIONS_TABLE} (table_name, version, applied_at) VALUES (?1, ?2, ?3)"
            ),
            rusqlite::params![t.name, version, now],
        )
        .map_err(fail)?;
    }
    Ok(())
}

/// Checks that a reader finds the schema this build reads.
pub(crate) fn check(conn: &Connection, path: &Path, t: &Tables) -> Result<(), StoreError> {
    let applied = applied_version(conn, t).map_err(|e| sqlite_error(path, e))?;
    if applied == 0 {
        return Err(StoreError::schema(format!(
            "{} has no csp-reports tables {}: run `csp-reports migrate` (or the store's migrate) first",
            path.display(),
            t.name
        )));
    }
    if applied > known_version(t) {
        return Err(newer(path, t, applied));
    }
    Ok(())
}

/// Opens a connection: the writer's creates the file, readers only open it.
pub(crate) fn open(path: &Path, create: bool, busy: Duration) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        if !create && !path.exists() {
            StoreError::new(
                StoreErrorKind::Open,
                format!("no SQLite database at {}", path.display()),
            )
            .with_source(e)
        } else {
            sqlite_error(path, e)
        }
    })?;
    conn.busy_timeout(busy).map_err(|e| sqlite_error(path, e))?;
    // The first statement that reads the file: a file that is not a database fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| sqlite_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::schema(format!(
            "{}: cannot use write-ahead logging (journal mode is {mode})",
            path.display()
        )));
    }
    // A larger page cache keeps the indexes by violation, whose keys come in no order, in
    // memory (64 MiB at most per connection).
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536;",
    )
    .map_err(|e| sqlite_error(path, e))?;
    Ok(conn)
}
