//! [`Observation`]: what the builder learns from, one violation seen some number of times.

use std::collections::BTreeMap;

use crate::Report;
use crate::report::strip_query;

/// One violation, seen `count` times on `pages` distinct pages: what the builder learns
/// from. A store maps its grouped violations to these; [`Observation::gather`] makes them
/// from reports.
///
/// Every field comes from a browser's report, so from anyone: the builder treats them as
/// hostile (see the [module docs](super)).
///
/// ```
/// use tower_csp_reports::Report;
/// use tower_csp_reports::policy::Observation;
///
/// let reports = [
///     Report::csp("https://site.example/a?session=1", "img-src", "https://cdn.example/x.png"),
///     Report::csp("https://site.example/a?session=2", "img-src", "https://cdn.example/x.png"),
///     Report::csp("https://site.example/b", "img-src", "https://cdn.example/x.png"),
/// ];
/// let observations = Observation::gather(&reports);
/// assert_eq!(observations.len(), 2);
/// assert_eq!(observations[0].document, "https://site.example/a");
/// assert_eq!(observations[0].count, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Observation {
    /// The effective directive (`script-src-elem`, `img-src`, ...).
    pub directive: String,
    /// The blocked URL (its query is not used), or the keyword or scheme browsers send
    /// instead (`inline`, `eval`, `data`, `blob`).
    pub blocked: String,
    /// The page the violation happened on (an example, when `pages` is more than one).
    pub document: String,
    /// How many reports.
    pub count: u64,
    /// On how many distinct pages (at least 1).
    pub pages: u64,
    /// The policy the browser applied, as the report gave it (an example).
    pub original_policy: Option<String>,
    /// The first characters of the blocked code (`script-sample`), when the policy asked
    /// for them with `'report-sample'`.
    pub sample: Option<String>,
    /// The file the blocked code or element is in.
    pub source_file: Option<String>,
    /// The line in `source_file`.
    pub line: Option<u32>,
    /// The column in `source_file`.
    pub column: Option<u32>,
}

impl Observation {
    /// One report's worth of a violation: `count` and `pages` 1, nothing else known.
    pub fn new(
        directive: impl Into<String>,
        blocked: impl Into<String>,
        document: impl Into<String>,
    ) -> Self {
        Self {
            directive: directive.into(),
            blocked: blocked.into(),
            document: document.into(),
            count: 1,
            pages: 1,
            original_policy: None,
            sample: None,
            source_file: None,
            line: None,
            column: None,
        }
    }

    /// The observation one report makes, or `None` for a report that is invalid, not a CSP
    /// violation, or lacks its directive or document. Queries are cut from the document
    /// and the blocked URL: they are not needed and often carry secrets.
    pub fn from_report(report: &Report) -> Option<Self> {
        if !report.is_valid() || !report.is_csp_violation() {
            return None;
        }
        let directive = report
            .effective_directive
            .as_deref()
            .or(report.violated_directive.as_deref())?;
        let document = report.document()?;
        let text = |field: &Option<crate::ByteString>| {
            field
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Some(Self {
            directive: directive.to_owned(),
            blocked: strip_query(report.blocked_uri.as_deref().unwrap_or_default()).to_owned(),
            document: strip_query(document).to_owned(),
            count: 1,
            pages: 1,
            original_policy: text(&report.original_policy),
            sample: text(&report.script_sample),
            source_file: report
                .source_file
                .as_deref()
                .map(strip_query)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            line: report.line_number,
            column: report.column_number,
        })
    }

    /// The observations a set of reports makes: one per directive, blocked URL, page
    /// (without its query) and code location, counted, in that order. Reports that make
    /// none (see [`from_report`](Self::from_report)) are left out.
    pub fn gather<'a>(reports: impl IntoIterator<Item = &'a Report>) -> Vec<Self> {
        type Key = (
            String,
            String,
            String,
            Option<String>,
            Option<u32>,
            Option<u32>,
            Option<String>,
        );
        let mut groups: BTreeMap<Key, Self> = BTreeMap::new();
        for report in reports {
            let Some(observation) = Self::from_report(report) else {
                continue;
            };
            let key = (
                observation.directive.clone(),
                observation.blocked.clone(),
                observation.document.clone(),
                observation.source_file.clone(),
                observation.line,
                observation.column,
                observation.sample.clone(),
            );
            groups
                .entry(key)
                .and_modify(|seen| {
                    seen.count += 1;
                    if seen.original_policy.is_none() {
                        seen.original_policy
                            .clone_from(&observation.original_policy);
                    }
                })
                .or_insert(observation);
        }
        groups.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContentType;
    use crate::parse::{Limits, parse_body};

    #[test]
    fn from_report_table() {
        type Learned<'a> = Option<(&'a str, &'a str, &'a str)>;
        let cases: &[(&str, Learned<'_>)] = &[
            (
                r#"{"csp-report":{"document-uri":"https://s.example/a?token=secret#x","effective-directive":"img-src","blocked-uri":"https://cdn.example/x.png?sig=1","original-policy":"img-src 'none'","line-number":3}}"#,
                Some((
                    "img-src",
                    "https://cdn.example/x.png",
                    "https://s.example/a",
                )),
            ),
            // Old browsers: the whole directive in violated-directive.
            (
                r#"{"csp-report":{"document-uri":"https://s.example/","violated-directive":"script-src 'self'","blocked-uri":"inline"}}"#,
                Some(("script-src", "inline", "https://s.example/")),
            ),
            // Not a violation, or not valid: nothing to learn from.
            (
                r#"[{"type":"deprecation","url":"https://s.example/","body":{"id":"x"}}]"#,
                None,
            ),
            (r#"{"csp-report":{"blocked-uri":"inline"}}"#, None),
        ];
        for (body, expected) in cases {
            let parsed = parse_body(body.as_bytes(), ContentType::Json, &Limits::default());
            let observation = Observation::from_report(&parsed.reports[0]);
            let got = observation.as_ref().map(|o| {
                (
                    o.directive.as_str(),
                    o.blocked.as_str(),
                    o.document.as_str(),
                )
            });
            assert_eq!(got, *expected, "{body}");
            if let Some(o) = observation {
                assert_eq!((o.count, o.pages), (1, 1));
            }
        }
    }
}
