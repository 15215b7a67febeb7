//! [`PolicyBuilder`] (the settings) and [`Proposer`] (the validated settings), which turn
//! observations and a current policy into a [`Proposal`] (read in `observe.rs`, assembled in
//! `assemble.rs`).

use std::collections::BTreeMap;
use std::fmt;

use super::error::Dropped;
use super::header::Policy;
use super::observation::Observation;
use super::observe::Work;
use super::proposal::{PolicyOrigin, Proposal};
use crate::ConfigError;

/// The settings of the policy builder. Setters cannot fail; [`build`](Self::build) checks
/// them.
///
/// ```
/// use tower_csp_reports::policy::PolicyBuilder;
///
/// let proposer = PolicyBuilder::new().wildcard_threshold(Some(5)).build().unwrap();
/// # let _ = proposer;
/// assert!(PolicyBuilder::new().wildcard_threshold(Some(1)).build().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct PolicyBuilder {
    pub(super) wildcard_threshold: Option<usize>,
    pub(super) min_reports: u64,
    pub(super) allow_unsafe_inline: bool,
    pub(super) allow_unsafe_eval: bool,
    pub(super) allow_wasm_unsafe_eval: bool,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyBuilder {
    /// The defaults: subdomains merged into a wildcard from 3 on, every observation counts,
    /// no unsafe keyword.
    pub fn new() -> Self {
        Self {
            wildcard_threshold: Some(3),
            min_reports: 1,
            allow_unsafe_inline: false,
            allow_unsafe_eval: false,
            allow_wasm_unsafe_eval: false,
        }
    }

    /// From how many distinct subdomains of one parent (same scheme and port) a directive
    /// gets `scheme://*.parent` instead of each host; `None`: never. At least 2.
    ///
    /// A wildcard allows every other subdomain too, including ones someone else may control
    /// (user content, a forgotten DNS entry): raise it, or switch it off, for sites where
    /// subdomains are not all yours.
    pub fn wildcard_threshold(mut self, threshold: Option<usize>) -> Self {
        self.wildcard_threshold = threshold;
        self
    }

    /// Sources seen in fewer reports are listed as skipped, not added (default 1). Reports
    /// can be sent by anyone: a minimum keeps a handful of forged ones from adding a
    /// source.
    pub fn min_reports(mut self, reports: u64) -> Self {
        self.min_reports = reports;
        self
    }

    /// Adds `'unsafe-inline'` for inline code instead of only listing it (default: no).
    ///
    /// It goes into the reported directive itself (`script-src-elem`, `style-src-attr`,
    /// added if the policy lacks it), so that allowing `style` attributes does not allow
    /// `<style>` elements; browsers too old for those directives keep blocking the code
    /// rather than allow more. Browsers ignore it in a list that has a nonce or a hash.
    pub fn allow_unsafe_inline(mut self, allow: bool) -> Self {
        self.allow_unsafe_inline = allow;
        self
    }

    /// Adds `'unsafe-eval'` for `eval` and its kin instead of only listing them (default:
    /// no).
    pub fn allow_unsafe_eval(mut self, allow: bool) -> Self {
        self.allow_unsafe_eval = allow;
        self
    }

    /// Adds `'wasm-unsafe-eval'` for WebAssembly compilation instead of only listing it
    /// (default: no).
    pub fn allow_wasm_unsafe_eval(mut self, allow: bool) -> Self {
        self.allow_wasm_unsafe_eval = allow;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<Proposer, ConfigError> {
        if let Some(threshold) = self.wildcard_threshold
            && threshold < 2
        {
            return Err(ConfigError::Invalid {
                setting: "wildcard_threshold",
                reason: format!(
                    "{threshold}: a wildcard needs at least 2 subdomains (or none, to never merge)"
                ),
            });
        }
        if self.min_reports == 0 {
            return Err(ConfigError::Invalid {
                setting: "min_reports",
                reason: "0: a source needs at least 1 report".to_owned(),
            });
        }
        Ok(Proposer { settings: self })
    }
}

/// Checked settings, ready to make proposals. Made by [`PolicyBuilder::build`].
#[derive(Debug, Clone)]
pub struct Proposer {
    pub(super) settings: PolicyBuilder,
}

/// Why no proposal could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No observations were given (an empty time range, a prefix that matches nothing).
    NothingToBuildFrom,
    /// No base policy was given and no observation carries a usable `original-policy`.
    NoCurrentPolicy,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NothingToBuildFrom => "nothing to build from: no violations were given",
            Self::NoCurrentPolicy => {
                "no current policy: the reports carry no usable original-policy; give a base policy"
            }
        })
    }
}

impl std::error::Error for BuildError {}

impl Proposer {
    /// A proposal that starts from the policy the reports carried (the `original-policy`
    /// most of them name, read leniently).
    ///
    /// Reports can be sent by anyone, so can their `original-policy`: the proposal says
    /// which policy it started from; give the real one with
    /// [`propose_from`](Self::propose_from) where that matters.
    pub fn propose(&self, observations: &[Observation]) -> Result<Proposal, BuildError> {
        if observations.is_empty() {
            return Err(BuildError::NothingToBuildFrom);
        }
        let mut carried: BTreeMap<&str, u64> = BTreeMap::new();
        for observation in observations {
            if let Some(policy) = observation.original_policy.as_deref() {
                let reports = carried.entry(policy.trim()).or_default();
                *reports = reports.saturating_add(observation.count);
            }
        }
        let (policy, origin, dropped) = reported_policy(&carried)?;
        Ok(self.run(&policy, origin, dropped, observations))
    }

    /// The proposal for `observations`, from `base` when given, else from the policy the
    /// reports carried (`carried`: each policy with its reports).
    pub(crate) fn propose_carried(
        &self,
        base: Option<&Policy>,
        carried: &BTreeMap<&str, u64>,
        observations: &[Observation],
    ) -> Result<Proposal, BuildError> {
        if observations.is_empty() {
            return Err(BuildError::NothingToBuildFrom);
        }
        match base {
            Some(base) => Ok(self.run(base, PolicyOrigin::Base, Vec::new(), observations)),
            None => {
                let (policy, origin, dropped) = reported_policy(carried)?;
                Ok(self.run(&policy, origin, dropped, observations))
            }
        }
    }

    /// A proposal that starts from `base` (parse it with [`Policy::parse`]).
    pub fn propose_from(
        &self,
        base: &Policy,
        observations: &[Observation],
    ) -> Result<Proposal, BuildError> {
        if observations.is_empty() {
            return Err(BuildError::NothingToBuildFrom);
        }
        Ok(self.run(base, PolicyOrigin::Base, Vec::new(), observations))
    }

    fn run(
        &self,
        current: &Policy,
        origin: PolicyOrigin,
        dropped: Vec<Dropped>,
        observations: &[Observation],
    ) -> Proposal {
        let mut work = Work::new(self, current);
        for observation in observations {
            work.observe(observation);
        }
        work.finish(origin, dropped, observations)
    }
}

/// The policy most reports carried (read leniently), where it came from and what of it was
/// left out. Among equals, the first in text order, so the answer does not depend on the
/// order of the reports.
fn reported_policy(
    carried: &BTreeMap<&str, u64>,
) -> Result<(Policy, PolicyOrigin, Vec<Dropped>), BuildError> {
    let carried: BTreeMap<&str, u64> = carried
        .iter()
        .filter(|(policy, _)| !policy.is_empty())
        .map(|(policy, reports)| (*policy, *reports))
        .collect();
    let (text, reports) = carried
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .ok_or(BuildError::NoCurrentPolicy)?;
    let (policy, dropped) = Policy::parse_lenient(text);
    if policy.directives().is_empty() {
        return Err(BuildError::NoCurrentPolicy);
    }
    let origin = PolicyOrigin::Reported {
        reports: *reports,
        policies: carried.len(),
    };
    Ok((policy, origin, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ChangeKind, Code, SkipReason};

    const PAGE: &str = "https://site.example/page";

    fn observations(seen: &[(&str, &str)]) -> Vec<Observation> {
        seen.iter()
            .map(|(directive, blocked)| Observation::new(*directive, *blocked, PAGE))
            .collect()
    }

    fn propose(builder: PolicyBuilder, base: &str, seen: &[(&str, &str)]) -> Proposal {
        let base = Policy::parse(base).expect("a valid base");
        builder
            .build()
            .expect("valid settings")
            .propose_from(&base, &observations(seen))
            .expect("a proposal")
    }

    #[test]
    fn where_sources_go() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            // (base, reported, proposed header)
            // Only default-src applied: the family head is added, starting from its list.
            (
                "default-src 'none'",
                &[("script-src-elem", "https://cdn.example/lib.js")],
                "default-src 'none'; script-src https://cdn.example",
            ),
            (
                "default-src 'self'; report-uri /r",
                &[("script-src-elem", "https://cdn.example/lib.js")],
                "default-src 'self'; script-src 'self' https://cdn.example; report-uri /r",
            ),
            (
                "default-src 'self'",
                &[("style-src-attr", "https://fonts.example/x.css")],
                "default-src 'self'; style-src 'self' https://fonts.example",
            ),
            // The head of the family applied: it is extended, in place.
            (
                "script-src 'self'; default-src 'none'",
                &[("script-src-elem", "https://cdn.example/lib.js")],
                "script-src 'self' https://cdn.example; default-src 'none'",
            ),
            // The violated directive itself applied.
            (
                "default-src 'none'; script-src 'self'; script-src-elem 'self'",
                &[("script-src-elem", "https://cdn.example/lib.js")],
                "default-src 'none'; script-src 'self'; script-src-elem 'self' https://cdn.example",
            ),
            // worker-src fell back to script-src: adding there would let pages load scripts
            // from the worker's host, so worker-src is added.
            (
                "default-src 'none'; script-src 'self'",
                &[
                    ("worker-src", "https://w.example/w.js"),
                    ("worker-src", "blob"),
                ],
                "default-src 'none'; script-src 'self'; worker-src 'self' blob: https://w.example",
            ),
            // frame-src fell back to child-src: same, frame-src is added.
            (
                "default-src 'none'; child-src https://a.example",
                &[("frame-src", "https://b.example/embed")],
                "default-src 'none'; child-src https://a.example; frame-src https://a.example https://b.example",
            ),
            (
                "default-src 'none'",
                &[
                    ("img-src", "https://site.example/logo.png"),
                    ("img-src", "data"),
                    ("font-src", "data"),
                    ("media-src", "blob"),
                    ("manifest-src", "https://site.example/app.webmanifest"),
                    ("object-src", "https://plugins.example/x.swf"),
                ],
                "default-src 'none'; img-src 'self' data:; font-src data:; media-src blob:; \
                 object-src https://plugins.example; manifest-src 'self'",
            ),
            // connect-src: WebSocket endpoints by scheme, even on the page's host.
            (
                "default-src 'none'",
                &[
                    ("connect-src", "https://site.example/api"),
                    ("connect-src", "wss://site.example/socket"),
                    ("connect-src", "ws://127.0.0.1:9000/socket"),
                ],
                "default-src 'none'; connect-src 'self' ws://127.0.0.1:9000 wss://site.example",
            ),
            // Ports and schemes are kept apart; default ports are left out.
            (
                "default-src 'none'",
                &[
                    ("img-src", "https://cdn.example:443/a.png"),
                    ("img-src", "https://cdn.example:8443/a.png"),
                    ("img-src", "http://cdn.example/a.png"),
                    ("img-src", "https://site.example:8443/a.png"),
                ],
                "default-src 'none'; img-src http://cdn.example https://cdn.example https://cdn.example:8443 https://site.example:8443",
            ),
            // Directives that do not fall back are extended only where the policy has them.
            (
                "default-src 'none'; form-action 'self'; base-uri 'none'",
                &[
                    ("form-action", "https://pay.example/checkout"),
                    ("base-uri", "https://site.example/"),
                ],
                "default-src 'none'; form-action 'self' https://pay.example; base-uri 'self'",
            ),
            // Everything else is carried over untouched.
            (
                "default-src 'none'; upgrade-insecure-requests; sandbox allow-scripts; report-to csp",
                &[("img-src", "https://cdn.example/a.png")],
                "default-src 'none'; img-src https://cdn.example; upgrade-insecure-requests; sandbox allow-scripts; report-to csp",
            ),
            // Several sources on one directive, once each, 'self' first.
            (
                "default-src 'none'",
                &[
                    ("img-src", "https://b.example/1.png"),
                    ("img-src", "https://b.example/2.png"),
                    ("img-src", "https://a.example/1.png"),
                    ("img-src", "https://site.example/1.png"),
                ],
                "default-src 'none'; img-src 'self' https://a.example https://b.example",
            ),
        ];
        for (base, seen, expected) in cases {
            let proposal = propose(PolicyBuilder::new(), base, seen);
            assert_eq!(proposal.header, *expected, "{base} + {seen:?}");
            assert!(
                proposal.skipped.is_empty(),
                "{base} + {seen:?}: {:?}",
                proposal.skipped
            );
            // The proposal is itself a valid policy, and building again on it adds nothing.
            let again = propose(PolicyBuilder::new(), &proposal.header, seen);
            assert_eq!(again.header, proposal.header, "{expected}");
            assert!(again.changes.is_empty(), "{expected}");
        }
    }

    #[test]
    fn what_is_skipped() {
        let cases: &[(&str, (&str, &str), SkipReason)] = &[
            (
                "default-src 'none'",
                ("script-src-elem", "data"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("script-src-elem", "data:text/javascript,alert(1)"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("style-src-elem", "data"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("frame-src", "blob"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("object-src", "data"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("worker-src", "data"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("script-src-elem", "javascript"),
                SkipReason::UnsafeScheme,
            ),
            (
                "default-src 'none'",
                ("script-src-elem", "chrome-extension://abc/x.js"),
                SkipReason::NotWeb,
            ),
            (
                "default-src 'none'",
                ("script-src-elem", "moz-extension"),
                SkipReason::NotWeb,
            ),
            (
                "default-src 'none'",
                ("img-src", "file:///etc/passwd"),
                SkipReason::NotWeb,
            ),
            (
                "default-src 'none'",
                ("img-src", "wss://live.example/"),
                SkipReason::WebSocketOutsideConnect,
            ),
            (
                "default-src 'none'",
                ("img-src", "https://[::1]:8443/x.png"),
                SkipReason::NotExpressible,
            ),
            (
                "default-src 'none'",
                ("img-src", "https://a.example;script-src *"),
                SkipReason::NotExpressible,
            ),
            (
                "default-src 'none'",
                ("img-src", "https://a.example 'unsafe-inline'"),
                SkipReason::NotExpressible,
            ),
            (
                "default-src 'none'",
                ("img-src", "https://a.exa\"mple/"),
                SkipReason::NotExpressible,
            ),
            (
                "default-src 'none'",
                ("img-src", "https://a.example\u{0}/"),
                SkipReason::NotExpressible,
            ),
            (
                "default-src 'none'",
                ("img-src", "https://u:p@a.example/"),
                SkipReason::NotExpressible,
            ),
            (
                "default-src 'none'",
                ("img-src", ""),
                SkipReason::Unreadable,
            ),
            (
                "default-src 'none'",
                ("img-src", "<script>"),
                SkipReason::Unreadable,
            ),
            (
                "default-src 'none'",
                ("scirpt-src", "https://a.example/"),
                SkipReason::UnknownDirective,
            ),
            (
                "default-src 'none'",
                ("img-src\u{7}", "https://a.example/"),
                SkipReason::UnknownDirective,
            ),
            (
                "default-src 'none'",
                ("default-src", "https://a.example/"),
                SkipReason::NoResourceType,
            ),
            (
                "default-src 'none'",
                ("default-src", "inline"),
                SkipReason::NoResourceType,
            ),
            (
                "default-src 'none'",
                ("frame-ancestors", "https://site.example/page"),
                SkipReason::AncestorNotReported,
            ),
            (
                "default-src 'none'",
                ("form-action", "https://pay.example/"),
                SkipReason::NoDirectiveApplies,
            ),
            (
                "img-src 'none'",
                ("script-src-elem", "https://a.example/"),
                SkipReason::NoDirectiveApplies,
            ),
            (
                "default-src 'none'",
                ("sandbox", "https://a.example/"),
                SkipReason::NoSources,
            ),
            (
                "default-src 'self'",
                ("img-src", "https://site.example/redirected.png"),
                SkipReason::AlreadyAllowed,
            ),
            (
                "default-src https:",
                ("img-src", "https://a.example/x.png"),
                SkipReason::AlreadyAllowed,
            ),
            (
                "default-src 'none'; script-src 'unsafe-inline'",
                ("script-src-elem", "inline"),
                SkipReason::AlreadyAllowed,
            ),
            (
                "default-src 'none'; script-src 'nonce-abc' 'strict-dynamic'",
                ("script-src-elem", "https://cdn.example/x.js"),
                SkipReason::StrictDynamic,
            ),
        ];
        for (base, seen, reason) in cases {
            let proposal = propose(PolicyBuilder::new(), base, &[*seen]);
            assert_eq!(
                proposal.header,
                Policy::parse(base).unwrap().to_string(),
                "{seen:?}"
            );
            let reasons: Vec<SkipReason> = proposal.skipped.iter().map(|s| s.reason).collect();
            assert_eq!(reasons, [*reason], "{base} + {seen:?}");
            for skipped in &proposal.skipped {
                assert!(
                    !skipped.blocked.chars().any(char::is_control),
                    "{skipped:?}"
                );
                assert!(
                    !skipped.directive.chars().any(char::is_control),
                    "{skipped:?}"
                );
            }
        }
    }

    #[test]
    fn code_is_listed_and_allowed_only_on_request() {
        let base = "default-src 'none'; script-src 'self'";
        let seen: &[(&str, &str)] = &[
            ("script-src-elem", "inline"),
            ("script-src-elem", "https://cdn.example/x.js"),
            ("script-src", "eval"),
            ("style-src-attr", "inline"),
            ("script-src", "wasm-eval"),
            ("require-trusted-types-for", "trusted-types-sink"),
        ];
        let cases: &[(PolicyBuilder, &str)] = &[
            (
                PolicyBuilder::new(),
                "default-src 'none'; script-src 'self' https://cdn.example",
            ),
            (
                PolicyBuilder::new().allow_unsafe_inline(true),
                // 'unsafe-inline' in the violated directives, which start from the lists that
                // applied (script-src with its new host; default-src's 'none').
                "default-src 'none'; script-src 'self' https://cdn.example; \
                 script-src-elem 'self' https://cdn.example 'unsafe-inline'; \
                 style-src-attr 'unsafe-inline'",
            ),
            (
                PolicyBuilder::new().allow_unsafe_eval(true),
                "default-src 'none'; script-src 'self' https://cdn.example 'unsafe-eval'",
            ),
            (
                PolicyBuilder::new().allow_wasm_unsafe_eval(true),
                "default-src 'none'; script-src 'self' https://cdn.example 'wasm-unsafe-eval'",
            ),
        ];
        for (builder, expected) in cases {
            let proposal = propose(builder.clone(), base, seen);
            assert_eq!(proposal.header, *expected, "{builder:?}");
            let codes: Vec<(&str, Code, bool)> = proposal
                .needs_nonce
                .iter()
                .map(|n| (n.directive.as_str(), n.code, n.allowed_unsafely))
                .collect();
            assert_eq!(
                codes,
                [
                    ("require-trusted-types-for", Code::TrustedTypesSink, false),
                    ("script-src", Code::Eval, builder.allow_unsafe_eval),
                    ("script-src", Code::WasmEval, builder.allow_wasm_unsafe_eval),
                    ("script-src-elem", Code::Inline, builder.allow_unsafe_inline),
                    ("style-src-attr", Code::Inline, builder.allow_unsafe_inline),
                ],
                "{builder:?}"
            );
        }
    }

    #[test]
    fn unsafe_inline_next_to_a_nonce_is_noted() {
        let proposal = propose(
            PolicyBuilder::new().allow_unsafe_inline(true),
            "script-src 'nonce-abc'",
            &[("script-src", "inline")],
        );
        assert_eq!(proposal.header, "script-src 'nonce-abc' 'unsafe-inline'");
        assert!(
            proposal
                .notes
                .iter()
                .any(|n| n.contains("ignore 'unsafe-inline'")),
            "{:?}",
            proposal.notes
        );
    }

    #[test]
    fn wildcards_past_the_threshold() {
        let seen: &[(&str, &str)] = &[
            ("img-src", "https://a.img.example/1.png"),
            ("img-src", "https://b.img.example/1.png"),
            ("img-src", "https://c.img.example/1.png"),
            ("img-src", "https://c.img.example/2.png"),
        ];
        let cases: &[(Option<usize>, &str)] = &[
            (Some(3), "default-src 'none'; img-src https://*.img.example"),
            (
                Some(4),
                "default-src 'none'; img-src https://a.img.example https://b.img.example https://c.img.example",
            ),
            (
                None,
                "default-src 'none'; img-src https://a.img.example https://b.img.example https://c.img.example",
            ),
        ];
        for (threshold, expected) in cases {
            let proposal = propose(
                PolicyBuilder::new().wildcard_threshold(*threshold),
                "default-src 'none'",
                seen,
            );
            assert_eq!(proposal.header, *expected, "{threshold:?}");
        }
        let proposal = propose(PolicyBuilder::new(), "default-src 'none'", seen);
        let added = &proposal.changes[0].added[0];
        assert_eq!(added.reports, 4);
        assert_eq!(
            added.covers,
            [
                "https://a.img.example",
                "https://b.img.example",
                "https://c.img.example"
            ]
        );
    }

    #[test]
    fn evidence_per_source() {
        let mut seen = observations(&[("img-src", "https://cdn.example/a.png")]);
        seen[0].count = 7;
        seen[0].pages = 3;
        let mut other = Observation::new(
            "img-src",
            "https://cdn.example/b.png",
            "https://site.example/other",
        );
        other.count = 2;
        seen.push(other);
        seen.push(Observation::new(
            "img-src",
            "https://rare.example/b.png",
            PAGE,
        ));
        let base = Policy::parse("default-src 'none'").unwrap();
        let proposal = PolicyBuilder::new()
            .min_reports(2)
            .build()
            .unwrap()
            .propose_from(&base, &seen)
            .unwrap();
        assert_eq!(
            proposal.header,
            "default-src 'none'; img-src https://cdn.example"
        );
        let change = &proposal.changes[0];
        assert_eq!(change.kind, ChangeKind::Added);
        assert_eq!(change.seeded_from.as_deref(), Some("default-src"));
        assert_eq!(change.before, ["'none'"]);
        assert_eq!(change.removed, ["'none'"]);
        assert_eq!(change.after, ["https://cdn.example"]);
        assert_eq!((change.added[0].reports, change.added[0].pages), (9, 3));
        assert_eq!(proposal.skipped[0].reason, SkipReason::TooFewReports);
        assert_eq!(proposal.totals.reports, 10);
    }

    #[test]
    fn the_current_policy_from_reports() {
        let mut seen = observations(&[
            ("img-src", "https://a.example/x.png"),
            ("img-src", "https://b.example/x.png"),
            ("img-src", "https://c.example/x.png"),
        ]);
        seen[0].original_policy = Some("default-src 'self'; report-uri /r".into());
        seen[0].count = 5;
        seen[1].original_policy = Some("default-src 'none'; report-uri /r".into());
        seen[1].count = 3;
        seen[2].original_policy = Some("default-src 'none'; report-uri /r".into());
        seen[2].count = 3;
        let proposal = PolicyBuilder::new()
            .build()
            .unwrap()
            .propose(&seen)
            .unwrap();
        assert_eq!(proposal.current.header, "default-src 'none'; report-uri /r");
        assert_eq!(
            proposal.current.origin,
            PolicyOrigin::Reported {
                reports: 6,
                policies: 2
            }
        );
        assert_eq!(
            proposal.header,
            "default-src 'none'; img-src https://a.example https://b.example https://c.example; report-uri /r"
        );
        assert!(
            proposal.notes[0].contains("6 of 11 reports"),
            "{:?}",
            proposal.notes
        );
    }

    #[test]
    fn bad_input() {
        let proposer = PolicyBuilder::new().build().unwrap();
        assert_eq!(proposer.propose(&[]), Err(BuildError::NothingToBuildFrom));
        let base = Policy::parse("default-src 'none'").unwrap();
        assert_eq!(
            proposer.propose_from(&base, &[]),
            Err(BuildError::NothingToBuildFrom)
        );
        assert_eq!(
            BuildError::NothingToBuildFrom.to_string(),
            "nothing to build from: no violations were given"
        );
        let seen = observations(&[("img-src", "https://a.example/")]);
        assert_eq!(proposer.propose(&seen), Err(BuildError::NoCurrentPolicy));
        let mut garbage = seen.clone();
        garbage[0].original_policy = Some("<<<; >>>".into());
        assert_eq!(proposer.propose(&garbage), Err(BuildError::NoCurrentPolicy));

        for (builder, setting) in [
            (
                PolicyBuilder::new().wildcard_threshold(Some(0)),
                "wildcard_threshold",
            ),
            (
                PolicyBuilder::new().wildcard_threshold(Some(1)),
                "wildcard_threshold",
            ),
            (PolicyBuilder::new().min_reports(0), "min_reports"),
        ] {
            match builder.build() {
                Err(ConfigError::Invalid { setting: got, .. }) => assert_eq!(got, setting),
                other => panic!("{setting}: {other:?}"),
            }
        }
    }

    #[test]
    fn hostile_reports_never_reach_the_header() {
        let hostile = [
            "https://evil.example/;script-src *",
            "https://evil.example,script-src *",
            "https://evil.example 'unsafe-inline'",
            "https://evil.example\r\nSet-Cookie: x",
            "https://evil.example/\u{0}",
            "https://ev'il.example/",
            "https://evil.example:80\u{202e}/",
            "https://evil.example/<script>",
            "'unsafe-inline'",
            "*",
            "https:",
            "data:;script-src *",
        ];
        let mut seen = Vec::new();
        for blocked in hostile {
            for directive in [
                "script-src-elem",
                "img-src",
                "connect-src",
                "img-src;script-src",
            ] {
                let mut o = Observation::new(directive, blocked, PAGE);
                o.original_policy = Some("default-src 'none'".into());
                seen.push(o);
            }
        }
        let proposal = PolicyBuilder::new()
            .build()
            .unwrap()
            .propose(&seen)
            .unwrap();
        // data: images are what the reports say; nothing else gets through.
        assert_eq!(proposal.header, "default-src 'none'; img-src data:");
        assert_eq!(proposal.skipped.iter().map(|s| s.reports).sum::<u64>(), 47);
        let text = proposal.to_string();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
        let json: serde_json::Value = serde_json::from_str(&proposal.to_json()).unwrap();
        assert_eq!(json["header"], proposal.header);

        // A hostile reported policy is anyone's policy (the proposal says so), but what is
        // kept of it is still a valid header.
        for o in &mut seen {
            o.original_policy = Some(format!("default-src 'none'; img-src {}", o.blocked));
        }
        let proposal = PolicyBuilder::new()
            .build()
            .unwrap()
            .propose(&seen)
            .unwrap();
        assert!(
            http::HeaderValue::from_str(&proposal.header).is_ok(),
            "{}",
            proposal.header
        );
        assert!(proposal.notes[0].contains("Anyone can send reports"));
        let text = proposal.to_string();
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
    }
}
