use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::broadcast;

use super::schema;
use super::store::{MakeTls, PostgresStore};
use crate::store::{
    Counts, DirectiveHour, EvidenceQuery, PolicyEvidence, ReportPage, ReportQuery, ReportStore,
    StoreError, Summary, SummaryOptions, TimeRange, ViolationDetail, ViolationEvent, ViolationPage,
    ViolationQuery, ViolationStatus, WriteOutcome,
};
use crate::{Fingerprint, ReportBatch, ReportSink};

#[async_trait]
impl<Tls: MakeTls> ReportStore for PostgresStore<Tls> {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        PostgresStore::migrate(self).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        conn.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn write(&self, batch: &ReportBatch) -> Result<WriteOutcome, StoreError> {
        self.write_batch(batch).await
    }

    fn sink(&self) -> Arc<dyn ReportSink> {
        Arc::new(PostgresStore::sink(self))
    }

    fn subscribe(&self) -> broadcast::Receiver<ViolationEvent> {
        self.inner.events.subscribe()
    }

    async fn claim_window(&self, name: &str, start: Timestamp) -> Result<bool, StoreError> {
        self.claim(name, start).await
    }

    async fn summary(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        self.summary_split(range, false, options).await
    }

    async fn summary_from_reports(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        self.summary_split(range, true, options).await
    }

    async fn counts(&self, range: TimeRange) -> Result<Counts, StoreError> {
        self.range_counts(range).await
    }

    async fn hourly(&self, range: TimeRange) -> Result<Vec<DirectiveHour>, StoreError> {
        self.directive_hours(range).await
    }

    async fn violations(&self, query: &ViolationQuery) -> Result<ViolationPage, StoreError> {
        self.list_violations(query).await
    }

    async fn policy_evidence(&self, query: &EvidenceQuery) -> Result<PolicyEvidence, StoreError> {
        self.evidence(query).await
    }

    async fn violation(
        &self,
        fingerprint: Fingerprint,
        range: TimeRange,
        recent: usize,
    ) -> Result<Option<ViolationDetail>, StoreError> {
        self.violation_detail(fingerprint, range, recent).await
    }

    async fn set_status(
        &self,
        fingerprints: &[Fingerprint],
        status: ViolationStatus,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.update_status(fingerprints, status, note).await
    }

    async fn set_note(
        &self,
        fingerprint: Fingerprint,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.update_note(fingerprint, note).await
    }

    async fn reports(&self, query: &ReportQuery) -> Result<ReportPage, StoreError> {
        self.report_page(query).await
    }

    /// On a partitioned table, the days entirely before `before` are dropped whole, and only
    /// the rows of the day it falls in are deleted one by one.
    async fn delete_older_than(&self, before: Timestamp, dry_run: bool) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let deleted = super::retention::delete_older_than(
            &mut conn,
            &self.inner.tables,
            self.inner.partitioned,
            before,
            dry_run,
        )
        .await?;
        if self.inner.partitioned && !dry_run {
            let first_kept = schema::day_of(before);
            self.known_days().retain(|day| *day >= first_kept);
        }
        Ok(deleted)
    }
}
