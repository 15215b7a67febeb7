use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::broadcast;

use super::{
    Counts, DirectiveHour, EvidenceQuery, PolicyEvidence, ReportCursor, ReportPage, ReportQuery,
    StoreError, Summary, SummaryOptions, TimeRange, Validity, ViolationDetail, ViolationEvent,
    ViolationPage, ViolationQuery, ViolationStatus, WriteOutcome,
};
use crate::{Fingerprint, ReportBatch, ReportSink};

/// A database of reports and violations: the write side (a sink, violation events, window
/// claims) and the read side (summaries, lists, details, exports, retention) of one store.
///
/// Object safe: the command line and the dashboard hold an `Arc<dyn ReportStore>` and use
/// nothing else, so every store ([`SqliteStore`](crate::sqlite::SqliteStore),
/// [`PostgresStore`](crate::postgres::PostgresStore), your own) serves them alike. Every
/// store passes the conformance suite in `tests/support/store_conformance.rs`.
///
/// Times are stored to the microsecond; ranges are half-open ([`TimeRange`]); hours are UTC.
#[async_trait]
pub trait ReportStore: Send + Sync + std::fmt::Debug + 'static {
    /// A short name for logs and counters (`"sqlite"`, `"postgres"`).
    fn name(&self) -> &str;

    /// Creates the schema or brings it up to date: versioned, idempotent, safe when several
    /// processes run it at once. A schema written by a newer version is refused with
    /// [`StoreErrorKind::NewerSchema`](super::StoreErrorKind::NewerSchema).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Whether the database answers, cheaply (for a readiness check).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a batch, valid and invalid reports alike, and updates the violation tables in
    /// the same transaction. Reports already stored (a retried batch) are skipped and counted
    /// nowhere. The violations the write created or reopened are returned and sent to the
    /// [subscribers](Self::subscribe) once the transaction has committed.
    async fn write(&self, batch: &ReportBatch) -> Result<WriteOutcome, StoreError>;

    /// A sink that [writes](Self::write) every batch it is given: hand it to the layer.
    /// Its errors say whether a retry may help, so the dispatcher retries what it should.
    fn sink(&self) -> Arc<dyn ReportSink>;

    /// The violation events of every write through this handle (and its clones and sinks),
    /// from now on.
    ///
    /// Events are decided by the database, so with several collectors on one database each
    /// new violation is announced by exactly one of them. A subscriber that falls more than
    /// 4,096 events behind gets [`RecvError::Lagged`](broadcast::error::RecvError::Lagged)
    /// with the number it missed, then the newer ones. A batch whose transaction committed
    /// but whose answer was lost is retried without effect, so its events are not repeated
    /// (nor, in that case, told at all).
    fn subscribe(&self) -> broadcast::Receiver<ViolationEvent>;

    /// Claims the job `name` (a digest, say) for the window starting at `start`: `true` for
    /// exactly one caller per `(name, start)` across every process on this database, `false`
    /// for the others. Claims are kept until retention deletes what is older.
    async fn claim_window(&self, name: &str, start: Timestamp) -> Result<bool, StoreError>;

    /// Claims the digest of `range` (a window of `range`'s length starting at its start)
    /// and, for the one caller across every process on this database that wins it, reads
    /// its [`summary`](Self::summary): the reports of every collector. `None` for the
    /// others. A summary that fails after the claim is lost, not taken by another.
    async fn claim_digest(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Option<Summary>, StoreError> {
        let length = range.to().duration_since(range.since()).as_secs();
        let name = format!("digest_{length}s");
        if !self.claim_window(&name, range.since()).await? {
            return Ok(None);
        }
        self.summary(range, options).await.map(Some)
    }

    /// Totals and top lists for a range, read from the violation tables (their cost grows
    /// with the number of violations, not of reports). Exact for any range: whole UTC days
    /// come from the daily counts, whole hours from the hourly counts, the rest of an hour at
    /// either end from the rows.
    async fn summary(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError>;

    /// The same summary computed from the report rows alone (`GROUP BY` over the range): its
    /// cost grows with the reports. For checking the violation tables, and benchmarks.
    async fn summary_from_reports(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError>;

    /// Report totals and violation counts for a range.
    async fn counts(&self, range: TimeRange) -> Result<Counts, StoreError>;

    /// Violation reports per UTC hour and directive in a range, oldest hour first, then by
    /// directive: a chart stacked by directive. Hours without reports are left out.
    async fn hourly(&self, range: TimeRange) -> Result<Vec<DirectiveHour>, StoreError>;

    /// One page of violations.
    async fn violations(&self, query: &ViolationQuery) -> Result<ViolationPage, StoreError>;

    /// What the violations with reports in a range say a policy must allow, for the
    /// [policy builder](crate::policy): per directive, each blocked value with its reports
    /// and pages in the range, and the policies the browsers applied. Read from the violation
    /// tables, filtered as the query says.
    async fn policy_evidence(&self, query: &EvidenceQuery) -> Result<PolicyEvidence, StoreError>;

    /// One violation: its counts in `range`, its hourly counts in `range`, its `recent` latest
    /// reports, and the documents, user agents and dispositions among its latest reports.
    /// `None` when there is no such violation.
    async fn violation(
        &self,
        fingerprint: Fingerprint,
        range: TimeRange,
        recent: usize,
    ) -> Result<Option<ViolationDetail>, StoreError>;

    /// Sets the status of these violations, and their note when `note` is given (an empty
    /// note removes it). Returns how many violations there were.
    async fn set_status(
        &self,
        fingerprints: &[Fingerprint],
        status: ViolationStatus,
        note: Option<&str>,
    ) -> Result<u64, StoreError>;

    /// Sets the note of a violation (`None` or empty removes it). Returns whether there is
    /// such a violation.
    async fn set_note(
        &self,
        fingerprint: Fingerprint,
        note: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// One page of reports, newest first; pass its [`next`](ReportPage::next) cursor back for
    /// the next page. Each page is one indexed query, so an export of millions of reports
    /// streams page after page in constant memory.
    async fn reports(&self, query: &ReportQuery) -> Result<ReportPage, StoreError>;

    /// One page of the invalid reports of a range, newest first, with their raw text.
    async fn invalid_reports(
        &self,
        range: TimeRange,
        after: Option<ReportCursor>,
        limit: u32,
    ) -> Result<ReportPage, StoreError> {
        let mut query = ReportQuery::new()
            .range(range)
            .validity(Validity::Invalid)
            .limit(limit);
        if let Some(after) = after {
            query = query.after(after);
        }
        self.reports(&query).await
    }

    /// Deletes the reports received before `before` and returns how many there were; with
    /// `dry_run`, only counts them.
    ///
    /// The violation tables stay coherent with the reports: the hourly counts of deleted
    /// reports go, and each violation's `count` loses its deleted reports. A violation itself
    /// is kept, with its status, note, and first and last seen times (history), so an
    /// ignored violation that comes back is still ignored, and a fixed one is a regression.
    async fn delete_older_than(&self, before: Timestamp, dry_run: bool) -> Result<u64, StoreError>;
}

#[async_trait]
impl<S: ReportStore + ?Sized> ReportStore for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        (**self).migrate().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        (**self).ping().await
    }
    async fn write(&self, batch: &ReportBatch) -> Result<WriteOutcome, StoreError> {
        (**self).write(batch).await
    }
    fn sink(&self) -> Arc<dyn ReportSink> {
        (**self).sink()
    }
    fn subscribe(&self) -> broadcast::Receiver<ViolationEvent> {
        (**self).subscribe()
    }
    async fn claim_window(&self, name: &str, start: Timestamp) -> Result<bool, StoreError> {
        (**self).claim_window(name, start).await
    }
    async fn claim_digest(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Option<Summary>, StoreError> {
        (**self).claim_digest(range, options).await
    }
    async fn summary(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        (**self).summary(range, options).await
    }
    async fn summary_from_reports(
        &self,
        range: TimeRange,
        options: &SummaryOptions,
    ) -> Result<Summary, StoreError> {
        (**self).summary_from_reports(range, options).await
    }
    async fn counts(&self, range: TimeRange) -> Result<Counts, StoreError> {
        (**self).counts(range).await
    }
    async fn hourly(&self, range: TimeRange) -> Result<Vec<DirectiveHour>, StoreError> {
        (**self).hourly(range).await
    }
    async fn violations(&self, query: &ViolationQuery) -> Result<ViolationPage, StoreError> {
        (**self).violations(query).await
    }
    async fn policy_evidence(&self, query: &EvidenceQuery) -> Result<PolicyEvidence, StoreError> {
        (**self).policy_evidence(query).await
    }
    async fn violation(
        &self,
        fingerprint: Fingerprint,
        range: TimeRange,
        recent: usize,
    ) -> Result<Option<ViolationDetail>, StoreError> {
        (**self).violation(fingerprint, range, recent).await
    }
    async fn set_status(
        &self,
        fingerprints: &[Fingerprint],
        status: ViolationStatus,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        (**self).set_status(fingerprints, status, note).await
    }
    async fn set_note(
        &self,
        fingerprint: Fingerprint,
        note: Option<&str>,
    ) -> Result<bool, StoreError> {
        (**self).set_note(fingerprint, note).await
    }
    async fn reports(&self, query: &ReportQuery) -> Result<ReportPage, StoreError> {
        (**self).reports(query).await
    }
    async fn invalid_reports(
        &self,
        range: TimeRange,
        after: Option<ReportCursor>,
        limit: u32,
    ) -> Result<ReportPage, StoreError> {
        (**self).invalid_reports(range, after, limit).await
    }
    async fn delete_older_than(&self, before: Timestamp, dry_run: bool) -> Result<u64, StoreError> {
        (**self).delete_older_than(before, dry_run).await
    }
}
