//! The policy builder's read: each violation with reports in a range, counted from the daily
//! and hourly tables (the rest of an hour at either end from the rows), with what its first
//! report said.

use tokio_postgres::types::Type;

use super::browse::Args;
use super::store::{MakeTls, PostgresStore};
use super::summary::{counts_sql, day_params};
use crate::store::{EvidenceQuery, EvidenceRow, PolicyEvidence, StoreError};

impl<Tls: MakeTls> PostgresStore<Tls> {
    pub(crate) async fn evidence(
        &self,
        query: &EvidenceQuery,
    ) -> Result<PolicyEvidence, StoreError> {
        let t = &self.inner.tables;
        let mut args = Args::default();
        for time in day_params(&query.range.split_days()) {
            args.push(time, Type::TIMESTAMPTZ);
        }
        let mut filters = vec!["c.n > 0".to_owned()];
        if !query.include_ignored {
            filters.push("v.status <> 'ignored'".to_owned());
        }
        if let Some(prefix) = &query.document_prefix {
            let p = args.push(prefix.clone(), Type::TEXT);
            filters.push(format!("starts_with(v.document, {p})"));
        }
        let sql = format!(
            "SELECT v.directive, v.blocked, v.document, c.n, v.example_policy, v.example_sample,
                    v.example_source_file, v.example_line, v.example_column
             FROM {v} v JOIN ({counts}) c USING (fingerprint)
             WHERE {filters}",
            v = t.violations,
            counts = counts_sql(t, 1, ""),
            filters = filters.join(" AND "),
        );
        let conn = self.conn().await?;
        let rows = conn.query_typed(&sql, &args.params()).await?;
        let number = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
        let rows = rows
            .iter()
            .map(|row| EvidenceRow {
                directive: row.get(0),
                blocked: row.get(1),
                document: row.get(2),
                reports: row.get::<_, i64>(3).max(0).unsigned_abs(),
                policy: row.get(4),
                sample: row.get(5),
                source_file: row.get(6),
                line: number(row.get(7)),
                column: number(row.get(8)),
            })
            .collect();
        Ok(PolicyEvidence::assemble(query.range, rows))
    }
}
