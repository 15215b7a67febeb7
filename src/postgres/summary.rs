use jiff::Timestamp;
use serde::Serialize;
use tokio_postgres::{IsolationLevel, Row};

use super::StoreError;
use crate::Fingerprint;

/// What happened in a time range: the figures of
/// [`PostgresStore::summary`](super::PostgresStore::summary).
///
/// The top lists count valid CSP violations only, most frequent first, ties in alphabetical
/// order (fingerprints: in numeric order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// The start of the range, included.
    pub since: Timestamp,
    /// The end of the range, excluded.
    pub to: Timestamp,
    /// Every report received in the range.
    pub total: u64,
    /// The valid ones.
    pub valid: u64,
    /// The invalid ones.
    pub invalid: u64,
    /// Violation sources: the documents (URI without query and fragment).
    pub top_sources: Vec<Count>,
    /// Blocked URIs, as reported.
    pub top_blocked: Vec<Count>,
    /// Effective directives (the violated directive when there is none).
    pub top_directives: Vec<Count>,
    /// Fingerprints, each with an example of what it stands for.
    pub top_fingerprints: Vec<FingerprintCount>,
    /// The first invalid reports of the range, oldest first, with their raw text.
    pub invalid_reports: Vec<InvalidReport>,
}

/// A value and how many reports had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Count {
    /// The value (a URI, a directive).
    pub value: String,
    /// How many reports.
    pub count: u64,
}

/// A fingerprint, how many reports had it, and what it groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FingerprintCount {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// How many reports.
    pub count: u64,
    /// The directive of one of its reports.
    pub directive: Option<String>,
    /// The blocked URI of one of its reports.
    pub blocked_uri: Option<String>,
    /// The source (document without query) of one of its reports.
    pub source: Option<String>,
}

/// An invalid report, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct InvalidReport {
    /// Its identifier (a UUID).
    pub id: String,
    /// When it was received.
    pub received_at: Timestamp,
    /// Why it is invalid.
    pub reason: Option<String>,
    /// The body or item exactly as received.
    pub raw: String,
    /// The browser that sent it.
    pub user_agent: Option<String>,
}

/// A document URI without query and fragment, computed by the server like
/// [`strip_query`](crate::report::strip_query).
const SOURCE: &str = "split_part(split_part(coalesce(document_uri, url), '#', 1), '?', 1)";
const DIRECTIVE: &str = "coalesce(effective_directive, violated_directive)";

pub(crate) async fn summary(
    client: &mut tokio_postgres::Client,
    table: &str,
    since: Timestamp,
    to: Timestamp,
    top: usize,
) -> Result<Summary, StoreError> {
    let limit = i64::try_from(top).unwrap_or(i64::MAX);
    let range = "received_at >= $1 AND received_at < $2";
    let violations = format!("{range} AND valid AND report_type = 'csp-violation'");
    let counts = |expr: &str| {
        format!(
            "SELECT {expr} AS v, count(*) FROM {table} WHERE {violations} AND {expr} IS NOT NULL \
             GROUP BY v ORDER BY count(*) DESC, v LIMIT $3"
        )
    };
    let totals_sql =
        format!("SELECT count(*), count(*) FILTER (WHERE valid) FROM {table} WHERE {range}");
    let sources_sql = counts(SOURCE);
    let blocked_sql = counts("blocked_uri");
    let directives_sql = counts(DIRECTIVE);
    // `# i64::MIN` flips the sign bit, so ties sort in unsigned (hexadecimal) order.
    let fingerprints_sql = format!(
        "SELECT fingerprint, count(*), min({DIRECTIVE}), min(blocked_uri), min({SOURCE}) \
         FROM {table} WHERE {violations} GROUP BY fingerprint \
         ORDER BY count(*) DESC, fingerprint # (-9223372036854775807 - 1) LIMIT $3"
    );
    let invalid_sql = format!(
        "SELECT id::text, received_at, invalid_reason, coalesce(raw_text, raw_json::text), \
         user_agent FROM {table} WHERE {range} AND NOT valid ORDER BY received_at, id LIMIT $3"
    );

    // One snapshot for every figure, and every query sent before the first answer is read.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let p2: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&since, &to];
    let p3: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&since, &to, &limit];
    let (totals, sources, blocked, directives, fingerprints, invalid) = tokio::try_join!(
        tx.query_one(&totals_sql, &p2),
        tx.query(&sources_sql, &p3),
        tx.query(&blocked_sql, &p3),
        tx.query(&directives_sql, &p3),
        tx.query(&fingerprints_sql, &p3),
        tx.query(&invalid_sql, &p3),
    )?;
    tx.commit().await?;

    let count = |row: &Row, i: usize| row.get::<_, i64>(i).unsigned_abs();
    let to_counts = |rows: Vec<Row>| -> Vec<Count> {
        rows.iter()
            .map(|row| Count {
                value: row.get(0),
                count: count(row, 1),
            })
            .collect()
    };
    let total = count(&totals, 0);
    let valid = count(&totals, 1);
    Ok(Summary {
        since,
        to,
        total,
        valid,
        invalid: total - valid,
        top_sources: to_counts(sources),
        top_blocked: to_counts(blocked),
        top_directives: to_counts(directives),
        top_fingerprints: fingerprints
            .iter()
            .map(|row| FingerprintCount {
                fingerprint: Fingerprint(row.get::<_, i64>(0) as u64),
                count: count(row, 1),
                directive: row.get(2),
                blocked_uri: row.get(3),
                source: row.get(4),
            })
            .collect(),
        invalid_reports: invalid
            .iter()
            .map(|row| InvalidReport {
                id: row.get(0),
                received_at: row.get(1),
                reason: row.get(2),
                raw: row.get::<_, Option<String>>(3).unwrap_or_default(),
                user_agent: row.get(4),
            })
            .collect(),
    })
}
