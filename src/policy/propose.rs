//! Proposals from a store: [`Proposer::propose_from_store`] reads what the stored violations
//! of a range say ([`ReportStore::policy_evidence`]) and proposes from it.

use std::collections::BTreeMap;
use std::fmt;

use super::build::{BuildError, Proposer};
use super::header::Policy;
use super::observation::Observation;
use super::proposal::Proposal;
use crate::store::{EvidenceQuery, PolicyEvidence, ReportStore, StoreError};

/// Why no proposal could be made from a store.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProposeError {
    /// The store could not be read.
    Store(StoreError),
    /// The store was read, and holds nothing to build from (or no usable policy).
    Build(BuildError),
}

impl fmt::Display for ProposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(error) => write!(f, "cannot read the violations: {error}"),
            Self::Build(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ProposeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(error) => Some(error),
            Self::Build(error) => Some(error),
        }
    }
}

impl From<StoreError> for ProposeError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<BuildError> for ProposeError {
    fn from(error: BuildError) -> Self {
        Self::Build(error)
    }
}

impl Proposer {
    /// A proposal from the violations a store holds for `query` (a range, a document
    /// prefix), starting from `base` when given, else from the policy most of their reports
    /// carried.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// use tower_csp_reports::policy::{Policy, PolicyBuilder};
    /// use tower_csp_reports::sqlite::SqliteStore;
    /// use tower_csp_reports::store::{EvidenceQuery, ReportStore, TimeRange};
    /// use tower_csp_reports::{Report, ReportBatch};
    ///
    /// let path = std::env::temp_dir().join(format!("csp-propose-doc-{}.db", std::process::id()));
    /// let store = SqliteStore::builder(&path).build()?;
    /// store.migrate().await?;
    /// let page = "https://shop.example/cart";
    /// let reports = vec![
    ///     Report::csp(page, "img-src", "https://cdn.example/a.png"),
    ///     Report::csp(page, "script-src-elem", "https://shop.example/app.js"),
    /// ];
    /// store.write(&ReportBatch::from(reports)).await?;
    ///
    /// let proposer = PolicyBuilder::new().build()?;
    /// let base = Policy::parse("default-src 'none'")?;
    /// let query = EvidenceQuery::new(TimeRange::all()).document_prefix("https://shop.example/");
    /// let proposal = proposer.propose_from_store(&store, &query, Some(&base)).await?;
    /// assert_eq!(
    ///     proposal.header,
    ///     "default-src 'none'; script-src 'self'; img-src https://cdn.example"
    /// );
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn propose_from_store(
        &self,
        store: &dyn ReportStore,
        query: &EvidenceQuery,
        base: Option<&Policy>,
    ) -> Result<Proposal, ProposeError> {
        let evidence = store.policy_evidence(query).await?;
        Ok(self.propose_evidence(&evidence, base)?)
    }

    /// A proposal from what a store said ([`ReportStore::policy_evidence`]), starting from
    /// `base` when given, else from the policy most of the reports carried.
    pub fn propose_evidence(
        &self,
        evidence: &PolicyEvidence,
        base: Option<&Policy>,
    ) -> Result<Proposal, BuildError> {
        let carried: BTreeMap<&str, u64> = evidence
            .policies
            .iter()
            .map(|policy| (policy.value.as_str(), policy.count))
            .collect();
        self.propose_carried(base, &carried, &observations(evidence))
    }
}

/// The observations the evidence makes: one per listed page of each blocked value, with that
/// page's reports; the reports and pages beyond the listed ones go to the first.
fn observations(evidence: &PolicyEvidence) -> Vec<Observation> {
    let mut observations = Vec::new();
    for directive in &evidence.directives {
        for blocked in &directive.blocked {
            let listed: u64 = blocked.documents.iter().map(|d| d.count).sum();
            for (at, document) in blocked.documents.iter().enumerate() {
                let mut observation =
                    Observation::new(&directive.directive, &blocked.blocked, &document.value);
                observation.count = document.count;
                if at == 0 {
                    observation.count = observation
                        .count
                        .saturating_add(blocked.reports.saturating_sub(listed));
                    observation.pages = blocked.pages.max(1);
                }
                observation.sample.clone_from(&blocked.sample);
                observation.source_file.clone_from(&blocked.source_file);
                observation.line = blocked.line;
                observation.column = blocked.column;
                observations.push(observation);
            }
        }
    }
    observations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyBuilder;
    use crate::store::{EvidenceRow, TimeRange};

    fn row(blocked: &str, document: &str, reports: u64) -> EvidenceRow {
        EvidenceRow {
            directive: if blocked == "inline" {
                "script-src-elem".into()
            } else {
                "img-src".into()
            },
            blocked: blocked.into(),
            document: document.into(),
            reports,
            policy: Some("default-src 'none'; report-uri /r".into()),
            sample: None,
            source_file: None,
            line: (blocked == "inline").then_some(4),
            column: None,
        }
    }

    #[test]
    fn from_evidence_pages_and_reports_are_kept() {
        let rows = vec![
            row("https://cdn.example", "https://s.example/a", 3),
            row("https://cdn.example", "https://s.example/b", 2),
            row("inline", "https://s.example/a", 1),
            row("inline", "https://s.example/b", 5),
        ];
        let evidence = PolicyEvidence::assemble(TimeRange::all(), rows);
        let proposer = PolicyBuilder::new().build().unwrap();
        let proposal = proposer.propose_evidence(&evidence, None).unwrap();
        assert_eq!(
            proposal.header,
            "default-src 'none'; img-src https://cdn.example; report-uri /r"
        );
        let added = &proposal.changes[0].added[0];
        assert_eq!((added.reports, added.pages), (5, 2));
        let inline = &proposal.needs_nonce[0];
        assert_eq!(
            (inline.reports, inline.page_count, inline.line),
            (6, 2, Some(4))
        );
        assert_eq!(inline.pages, ["https://s.example/a", "https://s.example/b"]);
        assert_eq!(proposal.totals.reports, 11);

        let base = Policy::parse("img-src 'self'").unwrap();
        let based = proposer.propose_evidence(&evidence, Some(&base)).unwrap();
        assert_eq!(based.header, "img-src 'self' https://cdn.example");

        let empty = PolicyEvidence::assemble(TimeRange::all(), Vec::new());
        assert_eq!(
            proposer.propose_evidence(&empty, Some(&base)),
            Err(BuildError::NothingToBuildFrom)
        );
    }
}
