use jiff::Timestamp;

use super::StoreError;
use super::schema::{self, quote};

pub(crate) async fn delete_older_than(
    client: &mut tokio_postgres::Client,
    table: &str,
    partitioned: bool,
    before: Timestamp,
    dry_run: bool,
) -> Result<u64, StoreError> {
    let quoted = quote(table);
    let tx = client.transaction().await?;
    if partitioned && !dry_run {
        // Partitions are created and dropped under the same lock, by the sink and by us.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&schema::LOCK_KEY])
            .await?;
    }
    let count: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {quoted} WHERE received_at < $1"),
            &[&before],
        )
        .await?
        .get(0);
    if !dry_run {
        if partitioned {
            // Whole days before the limit go at once: no row-by-row delete, no bloat.
            let first_kept = schema::day_of(before);
            let old: Vec<String> = schema::partitions(&tx, table)
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
        tx.execute(
            &format!("DELETE FROM {quoted} WHERE received_at < $1"),
            &[&before],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(count.unsigned_abs())
}
