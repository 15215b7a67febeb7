//! [`PolicyEvidence`]: what the stored violations of a range say a policy must allow, for
//! the [policy builder](crate::policy).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use super::{Count, TimeRange};
use crate::policy::Code;

/// The most pages a [`BlockedEvidence`] lists.
pub const MAX_EVIDENCE_DOCUMENTS: usize = 10;

/// Which violations the policy builder learns from: those with reports in a range, on
/// documents under a prefix, ignored ones left out unless asked.
///
/// ```
/// use tower_csp_reports::store::{EvidenceQuery, TimeRange};
///
/// let query = EvidenceQuery::new(TimeRange::all()).document_prefix("https://shop.example/");
/// assert_eq!(query.prefix(), Some("https://shop.example/"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct EvidenceQuery {
    pub(crate) range: TimeRange,
    pub(crate) document_prefix: Option<String>,
    pub(crate) include_ignored: bool,
}

impl EvidenceQuery {
    /// The violations with reports in `range`, on any document, ignored ones left out.
    pub fn new(range: TimeRange) -> Self {
        Self {
            range,
            document_prefix: None,
            include_ignored: false,
        }
    }

    /// Only violations on documents whose URL (without query) starts with `prefix`; an
    /// empty prefix matches every document.
    pub fn document_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.document_prefix = Some(prefix.into()).filter(|p| !p.is_empty());
        self
    }

    /// Whether violations marked ignored count too (default: no; people said they are not
    /// worth acting on, which for a policy means not worth allowing).
    pub fn include_ignored(mut self, include: bool) -> Self {
        self.include_ignored = include;
        self
    }

    /// The range.
    pub fn range(&self) -> TimeRange {
        self.range
    }

    /// The document prefix, when there is one.
    pub fn prefix(&self) -> Option<&str> {
        self.document_prefix.as_deref()
    }
}

/// What the violations of a range say a policy must allow: per directive, each blocked value
/// with its reports and pages, and the policies the browsers applied.
///
/// Read from the violation tables (one row per violation, counted for the range from the
/// daily and hourly counts), so its cost grows with the violations, not the reports. Where a
/// detail is kept per violation rather than per report (the policy, the code's location and
/// sample), it is the violation's first report's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PolicyEvidence {
    /// The start of the range, included.
    pub since: Timestamp,
    /// The end of the range, excluded.
    pub to: Timestamp,
    /// The violation reports behind it.
    pub reports: u64,
    /// Each directive reported, in alphabetical order.
    pub directives: Vec<DirectiveEvidence>,
    /// Each `original-policy` seen, with the reports of the violations that carried it,
    /// most reports first (ties in text order).
    pub policies: Vec<Count>,
}

/// One directive's blocked values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DirectiveEvidence {
    /// The effective directive (`script-src-elem`, `img-src`, ...), as reported.
    pub directive: String,
    /// Its reports.
    pub reports: u64,
    /// What it blocked, most reports first.
    pub blocked: Vec<BlockedEvidence>,
}

/// One blocked value of a directive: an origin, or a keyword or scheme (`inline`, `data`).
/// Code (`inline`, `eval`, ...) is kept apart by where it is, so each place can be listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BlockedEvidence {
    /// The blocked origin, keyword or scheme, as stored.
    pub blocked: String,
    /// How many reports.
    pub reports: u64,
    /// On how many distinct pages (documents without query).
    pub pages: u64,
    /// The pages with the most reports (at most [`MAX_EVIDENCE_DOCUMENTS`]), most first.
    pub documents: Vec<Count>,
    /// For code: the first characters of it, when reported.
    pub sample: Option<String>,
    /// For code: the file it is in.
    pub source_file: Option<String>,
    /// For code: the line.
    pub line: Option<u32>,
    /// For code: the column.
    pub column: Option<u32>,
}

/// One violation with reports in the range, as a store reads it.
#[derive(Debug, Clone)]
pub(crate) struct EvidenceRow {
    pub(crate) directive: String,
    pub(crate) blocked: String,
    pub(crate) document: String,
    pub(crate) reports: u64,
    pub(crate) policy: Option<String>,
    pub(crate) sample: Option<String>,
    pub(crate) source_file: Option<String>,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
}

type Location = (Option<String>, Option<String>, Option<u32>, Option<u32>);

#[derive(Default)]
struct Group {
    reports: u64,
    documents: BTreeMap<String, u64>,
}

impl PolicyEvidence {
    /// Groups the violations of a range by directive, blocked value and (for code) place.
    pub(crate) fn assemble(range: TimeRange, rows: Vec<EvidenceRow>) -> Self {
        let mut groups: BTreeMap<(String, String, Location), Group> = BTreeMap::new();
        let mut policies: BTreeMap<String, u64> = BTreeMap::new();
        let mut reports = 0u64;
        for row in rows {
            if row.reports == 0 {
                continue;
            }
            reports = reports.saturating_add(row.reports);
            if let Some(policy) = row.policy.as_deref().map(str::trim)
                && !policy.is_empty()
            {
                let carried = policies.entry(policy.to_owned()).or_default();
                *carried = carried.saturating_add(row.reports);
            }
            let location = if Code::from_keyword(&row.blocked).is_some() {
                let text = |s: Option<String>| s.filter(|s| !s.is_empty());
                (
                    text(row.sample),
                    text(row.source_file),
                    row.line,
                    row.column,
                )
            } else {
                (None, None, None, None)
            };
            let group = groups
                .entry((row.directive, row.blocked, location))
                .or_default();
            group.reports = group.reports.saturating_add(row.reports);
            let on_page = group.documents.entry(row.document).or_default();
            *on_page = on_page.saturating_add(row.reports);
        }
        let mut directives: Vec<DirectiveEvidence> = Vec::new();
        for ((directive, blocked, (sample, source_file, line, column)), group) in groups {
            let mut documents: Vec<Count> = group
                .documents
                .iter()
                .map(|(value, count)| Count {
                    value: value.clone(),
                    count: *count,
                })
                .collect();
            documents.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            documents.truncate(MAX_EVIDENCE_DOCUMENTS);
            let item = BlockedEvidence {
                blocked,
                reports: group.reports,
                pages: group.documents.len() as u64,
                documents,
                sample,
                source_file,
                line,
                column,
            };
            match directives.last_mut() {
                Some(last) if last.directive == directive => {
                    last.reports = last.reports.saturating_add(item.reports);
                    last.blocked.push(item);
                }
                _ => directives.push(DirectiveEvidence {
                    directive,
                    reports: item.reports,
                    blocked: vec![item],
                }),
            }
        }
        for directive in &mut directives {
            // Stable: among equals, the blocked values stay in text order.
            directive
                .blocked
                .sort_by_key(|b| std::cmp::Reverse(b.reports));
        }
        let mut policies: Vec<Count> = policies
            .into_iter()
            .map(|(value, count)| Count { value, count })
            .collect();
        policies.sort_by_key(|p| std::cmp::Reverse(p.count));
        Self {
            since: range.since(),
            to: range.to(),
            reports,
            directives,
            policies,
        }
    }

    /// Whether there is nothing to build from.
    pub fn is_empty(&self) -> bool {
        self.directives.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(directive: &str, blocked: &str, document: &str, reports: u64) -> EvidenceRow {
        EvidenceRow {
            directive: directive.into(),
            blocked: blocked.into(),
            document: document.into(),
            reports,
            policy: Some("default-src 'none'".into()),
            sample: None,
            source_file: None,
            line: None,
            column: None,
        }
    }

    /// A blocked value: its text, reports, pages and line.
    type Item<'a> = (&'a str, u64, u64, Option<u32>);

    #[test]
    fn assemble_groups_by_directive_blocked_and_place() {
        let mut inline_a = row("script-src-elem", "inline", "https://s.example/a", 2);
        inline_a.line = Some(3);
        let mut inline_b = row("script-src-elem", "inline", "https://s.example/b", 1);
        inline_b.line = Some(9);
        let mut other_policy = row("img-src", "https://cdn.example", "https://s.example/b", 5);
        other_policy.policy = Some(" img-src 'self' ".into());
        let mut host_with_line = row("img-src", "https://cdn.example", "https://s.example/a", 1);
        host_with_line.line = Some(7);
        let rows = vec![
            row("img-src", "data", "https://s.example/a", 4),
            other_policy,
            host_with_line,
            inline_a,
            inline_b,
            row("img-src", "https://gone.example", "https://s.example/a", 0),
        ];
        let evidence = PolicyEvidence::assemble(TimeRange::all(), rows);
        assert_eq!(evidence.reports, 13);
        let shape: Vec<(&str, u64, Vec<Item<'_>>)> = evidence
            .directives
            .iter()
            .map(|d| {
                (
                    d.directive.as_str(),
                    d.reports,
                    d.blocked
                        .iter()
                        .map(|b| (b.blocked.as_str(), b.reports, b.pages, b.line))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    "img-src",
                    10,
                    vec![("https://cdn.example", 6, 2, None), ("data", 4, 1, None)]
                ),
                (
                    "script-src-elem",
                    3,
                    vec![("inline", 2, 1, Some(3)), ("inline", 1, 1, Some(9))]
                ),
            ]
        );
        let cdn = &evidence.directives[0].blocked[0];
        assert_eq!(cdn.documents[0].value, "https://s.example/b");
        let policies: Vec<(&str, u64)> = evidence
            .policies
            .iter()
            .map(|p| (p.value.as_str(), p.count))
            .collect();
        assert_eq!(policies, [("default-src 'none'", 8), ("img-src 'self'", 5)]);
        assert!(PolicyEvidence::assemble(TimeRange::all(), Vec::new()).is_empty());
    }
}
