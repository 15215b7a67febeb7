//! The policy builder's read: each violation with reports in a range, counted from the daily
//! and hourly tables (the rest of an hour at either end from the rows), with what its first
//! report said.

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use super::read::{counts_sql, day_values, unsigned};
use super::schema::Tables;
use crate::store::{EvidenceQuery, EvidenceRow, PolicyEvidence};

pub(crate) fn policy_evidence(
    conn: &Connection,
    t: &Tables,
    query: &EvidenceQuery,
) -> rusqlite::Result<PolicyEvidence> {
    let mut values = day_values(&query.range.split_days());
    let mut filters = vec!["c.n > 0".to_owned()];
    if !query.include_ignored {
        filters.push("v.status <> 'ignored'".to_owned());
    }
    if let Some(prefix) = &query.document_prefix {
        values.push(Value::Text(prefix.clone()));
        let p = values.len();
        filters.push(format!("substr(v.document, 1, length(?{p})) = ?{p}"));
    }
    let sql = format!(
        "SELECT v.directive, v.blocked, v.document, c.n, v.example_policy, v.example_sample,
                v.example_source_file, v.example_line, v.example_column
         FROM {v} v JOIN ({counts}) c ON c.fingerprint = v.fingerprint
         WHERE {filters}",
        v = t.violations,
        counts = counts_sql(t, ""),
        filters = filters.join(" AND "),
    );
    let number = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
    let mut statement = conn.prepare(&sql)?;
    let rows = statement
        .query_map(params_from_iter(&values), |row| {
            Ok(EvidenceRow {
                directive: row.get(0)?,
                blocked: row.get(1)?,
                document: row.get(2)?,
                reports: unsigned(row.get(3)?),
                policy: row.get(4)?,
                sample: row.get(5)?,
                source_file: row.get(6)?,
                line: number(row.get(7)?),
                column: number(row.get(8)?),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(PolicyEvidence::assemble(query.range, rows))
}
