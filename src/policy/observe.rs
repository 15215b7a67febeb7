//! Reading observations: which directive each one adds to (the fallbacks of CSP Level 3),
//! what it adds (a source, an unsafe keyword when asked) or why it adds nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::allows::list_allows;
use super::blocked::{Blocked, Code, Origin, Unusable};
use super::build::{PolicyBuilder, Proposer};
use super::directive::{self, DirectiveInfo, SAFE_SCHEMES};
use super::header::{Directive, Policy};
use super::observation::Observation;
use super::proposal::SkipReason;
use super::source::Source;

/// The longest text kept of a report value in a [`Proposal`](super::Proposal).
pub(super) const MAX_TEXT: usize = 200;

/// What a set of reports stands for: how many, on which pages.
#[derive(Debug, Clone, Default)]
pub(super) struct Evidence {
    pub(super) reports: u64,
    pub(super) documents: BTreeSet<String>,
    widest: u64,
}

impl Evidence {
    pub(super) fn add(&mut self, observation: &Observation) {
        self.reports = self.reports.saturating_add(observation.count);
        self.widest = self.widest.max(observation.pages);
        self.documents.insert(observation.document.clone());
    }

    pub(super) fn merge(&mut self, other: &Self) {
        self.reports = self.reports.saturating_add(other.reports);
        self.widest = self.widest.max(other.widest);
        self.documents.extend(other.documents.iter().cloned());
    }

    /// Distinct pages: the distinct documents, or more when one observation says it covers
    /// more pages than that.
    pub(super) fn pages(&self) -> u64 {
        (self.documents.len() as u64).max(self.widest)
    }
}

/// The sources one directive gets.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// For a directive the policy lacks: the directive whose list it starts from.
    pub(super) seed_from: Option<&'static str>,
    /// `'self'` and schemes.
    pub(super) plain: BTreeMap<Source, Evidence>,
    /// Hosts, merged into wildcards at the end.
    pub(super) hosts: BTreeMap<Origin, Evidence>,
}

pub(super) type NeedsKey = (
    &'static str,
    Code,
    Option<String>,
    Option<u32>,
    Option<u32>,
    Option<String>,
);

/// One proposal in the making.
pub(super) struct Work<'a> {
    pub(super) settings: &'a PolicyBuilder,
    pub(super) current: &'a Policy,
    pub(super) plans: BTreeMap<&'static str, Plan>,
    /// Unsafe keywords to add, by the effective directive they go into.
    pub(super) keywords: BTreeMap<(&'static str, &'static str), Evidence>,
    pub(super) needs: BTreeMap<NeedsKey, Evidence>,
    pub(super) skipped: BTreeMap<(String, String, SkipReason), u64>,
    pub(super) notes: Vec<String>,
}

impl<'a> Work<'a> {
    pub(super) fn new(proposer: &'a Proposer, current: &'a Policy) -> Self {
        Self {
            settings: &proposer.settings,
            current,
            plans: BTreeMap::new(),
            keywords: BTreeMap::new(),
            needs: BTreeMap::new(),
            skipped: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    pub(super) fn skip(
        &mut self,
        directive: &str,
        blocked: &str,
        reason: SkipReason,
        reports: u64,
    ) {
        let key = (
            crate::parse::clean(directive, MAX_TEXT),
            crate::parse::clean(crate::report::blocked_origin(blocked), MAX_TEXT),
            reason,
        );
        let count = self.skipped.entry(key).or_default();
        *count = count.saturating_add(reports);
    }

    /// The directive of the current policy that governs `info`: the first of its fallback
    /// list that the policy has.
    fn applied(&self, info: &DirectiveInfo) -> Option<&'a Directive> {
        info.fallback
            .iter()
            .find_map(|name| self.current.directive(name))
    }

    pub(super) fn observe(&mut self, observation: &Observation) {
        let name = observation
            .directive
            .split_ascii_whitespace()
            .next()
            .unwrap_or_default();
        let reports = observation.count;
        let Some(info) = directive::lookup(name) else {
            return self.skip(
                name,
                &observation.blocked,
                SkipReason::UnknownDirective,
                reports,
            );
        };
        let blocked = match Blocked::read(&observation.blocked) {
            Ok(blocked) => blocked,
            Err(unusable) => {
                let reason = match unusable {
                    Unusable::NotAUrl => SkipReason::Unreadable,
                    Unusable::NotExpressible => SkipReason::NotExpressible,
                };
                return self.skip(info.name, &observation.blocked, reason, reports);
            }
        };
        let document = Origin::of_url(&observation.document).ok().map(|(o, _)| o);
        let skip =
            |work: &mut Self, reason| work.skip(info.name, &observation.blocked, reason, reports);

        let source = match &blocked {
            Blocked::Code(code) => {
                return self.code(info, *code, &blocked, document.as_ref(), observation);
            }
            _ if info.name == "frame-ancestors" => {
                return skip(self, SkipReason::AncestorNotReported);
            }
            _ if !info.takes_sources() => return skip(self, SkipReason::NoSources),
            _ if info.name == "default-src" => return skip(self, SkipReason::NoResourceType),
            Blocked::Scheme(scheme) => {
                if !directive::scheme_is_safe(scheme, info.family) {
                    let known = SAFE_SCHEMES.iter().any(|(s, _)| s == scheme)
                        || matches!(scheme.as_str(), "javascript" | "filesystem");
                    let reason = if known {
                        SkipReason::UnsafeScheme
                    } else {
                        SkipReason::NotWeb
                    };
                    return skip(self, reason);
                }
                None
            }
            Blocked::Url(origin, _) => {
                match origin.scheme.as_str() {
                    "http" | "https" => {}
                    "ws" | "wss" if info.name == "connect-src" => {}
                    "ws" | "wss" => return skip(self, SkipReason::WebSocketOutsideConnect),
                    _ => return skip(self, SkipReason::NotWeb),
                }
                // WebSockets get their own source even on the page's host: browsers have
                // not always counted them as 'self'.
                if document.as_ref() == Some(origin) && origin.scheme.starts_with("http") {
                    Some(Source::Keyword("self"))
                } else {
                    None
                }
            }
        };

        let Some(applied) = self.applied(info) else {
            return skip(self, SkipReason::NoDirectiveApplies);
        };
        if list_allows(applied.values(), &blocked, document.as_ref()) {
            return skip(self, SkipReason::AlreadyAllowed);
        }
        if info.family == "script-src" && applied.values().iter().any(|v| v == "'strict-dynamic'") {
            return skip(self, SkipReason::StrictDynamic);
        }
        // Add to the directive that applied when it is this one or the head of its family;
        // otherwise add the head of the family, starting from the list that applied, so that
        // nothing else that list governs is widened.
        let applied_name = directive::lookup(applied.name()).map_or("", |i| i.name);
        let (target, seed_from) = if applied_name == info.name || applied_name == info.family {
            (applied_name, None)
        } else {
            (info.family, Some(applied_name))
        };
        let plan = self.plans.entry(target).or_default();
        if plan.seed_from.is_none() {
            plan.seed_from = seed_from;
        }
        match (source, blocked) {
            (Some(source), _) => plan.plain.entry(source).or_default().add(observation),
            (None, Blocked::Scheme(scheme)) => plan
                .plain
                .entry(Source::Scheme(scheme))
                .or_default()
                .add(observation),
            (None, Blocked::Url(origin, _)) => {
                plan.hosts.entry(origin).or_default().add(observation)
            }
            (None, Blocked::Code(_)) => {}
        }
    }

    /// Inline code, eval and Trusted Types: listed, and allowed with an unsafe keyword only
    /// when the settings say so.
    fn code(
        &mut self,
        info: &'static DirectiveInfo,
        code: Code,
        blocked: &Blocked<'_>,
        document: Option<&Origin>,
        observation: &Observation,
    ) {
        let trusted_types = matches!(code, Code::TrustedTypesPolicy | Code::TrustedTypesSink);
        if !trusted_types {
            if !info.is_fetch() {
                return self.skip(
                    info.name,
                    &observation.blocked,
                    SkipReason::NoSources,
                    observation.count,
                );
            }
            // Scripts or styles? An old browser that names only default-src does not say,
            // and an unsafe keyword there would allow both.
            if info.name == "default-src" {
                return self.skip(
                    info.name,
                    &observation.blocked,
                    SkipReason::NoResourceType,
                    observation.count,
                );
            }
            let Some(applied) = self.applied(info) else {
                return self.skip(
                    info.name,
                    &observation.blocked,
                    SkipReason::NoDirectiveApplies,
                    observation.count,
                );
            };
            if list_allows(applied.values(), blocked, document) {
                return self.skip(
                    info.name,
                    &observation.blocked,
                    SkipReason::AlreadyAllowed,
                    observation.count,
                );
            }
        }
        let key = (
            info.name,
            code,
            observation.source_file.clone(),
            observation.line,
            observation.column,
            observation.sample.clone(),
        );
        self.needs.entry(key).or_default().add(observation);
        if let Some(keyword) = self.opt_in(code) {
            self.keywords
                .entry((info.name, keyword))
                .or_default()
                .add(observation);
        }
    }

    /// The unsafe keyword the settings allow for `code`, if any.
    pub(super) fn opt_in(&self, code: Code) -> Option<&'static str> {
        match code {
            Code::Inline if self.settings.allow_unsafe_inline => Some("'unsafe-inline'"),
            Code::Eval if self.settings.allow_unsafe_eval => Some("'unsafe-eval'"),
            Code::WasmEval if self.settings.allow_wasm_unsafe_eval => Some("'wasm-unsafe-eval'"),
            _ => None,
        }
    }
}
