use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::params;
use tokio::sync::broadcast;

use super::error::sqlite_error;
use super::store::SqliteStore;
use super::{evidence, read, retention, schema, write};
use crate::store::{
    Counts, DirectiveHour, EvidenceQuery, PolicyEvidence, ReportPage, ReportQuery, ReportStore,
    StoreError, StoreSink, Summary, SummaryOptions, TimeRange, ViolationDetail, ViolationEvent,
    ViolationPage, ViolationQuery, ViolationStatus, WriteOutcome, micros,
};
use crate::{Fingerprint, ReportBatch, ReportSink};

impl SqliteStore {
    /// Runs a read whose errors are SQLite's own.
    async fn query<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &schema::Tables) -> rusqlite::Result<T> + Send + 'static,
    {
        let path = self.inner.path.clone();
        self.read(move |conn, t| op(conn, t).map_err(|e| sqlite_error(&path, e)))
            .await
    }

    /// Runs a write whose errors are SQLite's own.
    async fn change<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &schema::Tables) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        self.write_job(move |conn| {
            op(conn, &inner.tables).map_err(|e| sqlite_error(&inner.path, e))
        })
        .await
    }
}

#[async_trait]
impl ReportStore for SqliteStore {
    fn name(&self) -> &str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        self.write_job(move |conn| schema::migrate(conn, &inner.path, &inner.tables))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query(|conn, _| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn write(&self, batch: &ReportBatch) -> Result<WriteOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let inner = self.inner.clone();
        let batch = batch.clone();
        let outcome = self
            .write_job(move |conn| write::write(conn, &inner.path, &inner.tables, &batch))
            .await?;
        self.inner.events.publish(&outcome.events);
        Ok(outcome)
    }

    fn sink(&self) -> Arc<dyn ReportSink> {
        Arc::new(StoreSink::new(self.clone()))
    }

    fn subscribe(&self) -> broadcast::Receiver<ViolationEvent> {
        self.inner.events.subscribe()
    }

    async fn claim_window(&self, name: &str, start: Timestamp) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.change(move |conn, t| {
            let claimed = conn.execute(
                &format!(
                    "INSERT INTO {} (name, window_start, claimed_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT DO NOTHING",
                    t.claims
                ),
                params![name, micros(start), micros(Timestamp::now())],
            )?;
            Ok(claimed == 1)
        })
        .await
    }

    async fn summary(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        let options = *options;
        self.query(move |conn, t| read::summary(conn, t, range, false, &options))
            .await
    }

    async fn summary_from_reports(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        let options = *options;
        self.query(move |conn, t| read::summary(conn, t, range, true, &options))
            .await
    }

    async fn counts(&self, range: TimeRange) -> Result<Counts, StoreError> {
        self.query(move |conn, t| read::counts(conn, t, range))
            .await
    }

    async fn hourly(&self, range: TimeRange) -> Result<Vec<DirectiveHour>, StoreError> {
        self.query(move |conn, t| read::hourly(conn, t, range))
            .await
    }

    async fn violations(&self, query: &ViolationQuery) -> Result<ViolationPage, StoreError> {
        let query = query.clone();
        self.query(move |conn, t| read::violations(conn, t, &query))
            .await
    }

    async fn policy_evidence(&self, query: &EvidenceQuery) -> Result<PolicyEvidence, StoreError> {
        let query = query.clone();
        self.query(move |conn, t| evidence::policy_evidence(conn, t, &query))
            .await
    }

    async fn violation(
        &self,
        fingerprint: Fingerprint,
        range: TimeRange,
        recent: usize,
    ) -> Result<Option<ViolationDetail>, StoreError> {
        self.query(move |conn, t| read::detail(conn, t, fingerprint, range, recent))
            .await
    }

    async fn set_status(
        &self,
        fingerprints: &[Fingerprint],
        status: ViolationStatus,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        let fingerprints: Vec<i64> = fingerprints.iter().map(|f| f.0 as i64).collect();
        let note = note.map(str::to_owned);
        self.change(move |conn, t| {
            let mut update = conn.prepare(&format!(
                "UPDATE {} SET status = ?1, status_changed_at = ?2, \
                 note = CASE WHEN ?3 THEN nullif(?4, '') ELSE note END WHERE fingerprint = ?5",
                t.violations
            ))?;
            let now = micros(Timestamp::now());
            let mut updated = 0;
            for fingerprint in fingerprints {
                updated += update.execute(params![
                    status.as_str(),
                    now,
                    note.is_some(),
                    note.as_deref().unwrap_or_default(),
                    fingerprint
                ])?;
            }
            Ok(updated as u64)
        })
        .await
    }

    async fn set_note(
        &self,
        fingerprint: Fingerprint,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        let note = note.filter(|n| !n.is_empty()).map(str::to_owned);
        self.change(move |conn, t| {
            let updated = conn.execute(
                &format!(
                    "UPDATE {} SET note = ?1 WHERE fingerprint = ?2",
                    t.violations
                ),
                params![note, fingerprint.0 as i64],
            )?;
            Ok(updated > 0)
        })
        .await
    }

    async fn reports(&self, query: &ReportQuery) -> Result<ReportPage, StoreError> {
        let query = query.clone();
        self.query(move |conn, t| read::reports(conn, t, &query))
            .await
    }

    async fn delete_older_than(&self, before: Timestamp, dry_run: bool) -> Result<u64, StoreError> {
        if dry_run {
            return self
                .query(move |conn, t| retention::count_older(conn, t, before))
                .await;
        }
        self.change(move |conn, t| retention::delete_older(conn, t, before))
            .await
    }
}
