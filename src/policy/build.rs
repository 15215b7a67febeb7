//! [`PolicyBuilder`] (the settings) and [`Proposer`] (the validated settings), which turn
//! observations and a current policy into a [`Proposal`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::directive::{self, DirectiveInfo, SAFE_SCHEMES};
use super::observation::Observation;
use super::parse::{Directive, Dropped, Policy};
use super::proposal::{
    AddedSource, ChangeKind, CurrentPolicy, DirectiveChange, MAX_PAGES, NeedsNonce, PolicyOrigin,
    Proposal, SkipReason, Skipped, Totals,
};
use super::source::{self, Blocked, Code, Origin, Source, Unusable};
use crate::ConfigError;

/// The longest text kept of a report value in a [`Proposal`].
const MAX_TEXT: usize = 200;

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
    wildcard_threshold: Option<usize>,
    min_reports: u64,
    allow_unsafe_inline: bool,
    allow_unsafe_eval: bool,
    allow_wasm_unsafe_eval: bool,
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
    settings: PolicyBuilder,
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

/// What a set of reports stands for: how many, on which pages.
#[derive(Debug, Clone, Default)]
struct Evidence {
    reports: u64,
    documents: BTreeSet<String>,
    widest: u64,
}

impl Evidence {
    fn add(&mut self, observation: &Observation) {
        self.reports = self.reports.saturating_add(observation.count);
        self.widest = self.widest.max(observation.pages);
        self.documents.insert(observation.document.clone());
    }

    fn merge(&mut self, other: &Self) {
        self.reports = self.reports.saturating_add(other.reports);
        self.widest = self.widest.max(other.widest);
        self.documents.extend(other.documents.iter().cloned());
    }

    /// Distinct pages: the distinct documents, or more when one observation says it covers
    /// more pages than that.
    fn pages(&self) -> u64 {
        (self.documents.len() as u64).max(self.widest)
    }
}

/// The sources one directive gets.
#[derive(Debug, Default)]
struct Plan {
    /// For a directive the policy lacks: the directive whose list it starts from.
    seed_from: Option<&'static str>,
    /// `'self'` and schemes.
    plain: BTreeMap<Source, Evidence>,
    /// Hosts, merged into wildcards at the end.
    hosts: BTreeMap<Origin, Evidence>,
}

type NeedsKey = (
    &'static str,
    Code,
    Option<String>,
    Option<u32>,
    Option<u32>,
    Option<String>,
);

/// One proposal in the making.
struct Work<'a> {
    settings: &'a PolicyBuilder,
    current: &'a Policy,
    plans: BTreeMap<&'static str, Plan>,
    /// Unsafe keywords to add, by the effective directive they go into.
    keywords: BTreeMap<(&'static str, &'static str), Evidence>,
    needs: BTreeMap<NeedsKey, Evidence>,
    skipped: BTreeMap<(String, String, SkipReason), u64>,
    notes: Vec<String>,
}

impl<'a> Work<'a> {
    fn new(proposer: &'a Proposer, current: &'a Policy) -> Self {
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

    fn skip(&mut self, directive: &str, blocked: &str, reason: SkipReason, reports: u64) {
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

    fn observe(&mut self, observation: &Observation) {
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
        if source::list_allows(applied.values(), &blocked, document.as_ref()) {
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
            if source::list_allows(applied.values(), blocked, document) {
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
    fn opt_in(&self, code: Code) -> Option<&'static str> {
        match code {
            Code::Inline if self.settings.allow_unsafe_inline => Some("'unsafe-inline'"),
            Code::Eval if self.settings.allow_unsafe_eval => Some("'unsafe-eval'"),
            Code::WasmEval if self.settings.allow_wasm_unsafe_eval => Some("'wasm-unsafe-eval'"),
            _ => None,
        }
    }

    fn finish(
        mut self,
        origin: PolicyOrigin,
        dropped: Vec<Dropped>,
        observations: &[Observation],
    ) -> Proposal {
        let mut proposed = self.current.clone();
        let mut changes: BTreeMap<&'static str, DirectiveChange> = BTreeMap::new();

        let plans = std::mem::take(&mut self.plans);
        for (target, plan) in plans {
            let mut sources: Vec<(String, Evidence, Vec<String>)> = plan
                .plain
                .into_iter()
                .map(|(source, evidence)| {
                    let covers = match &source {
                        Source::Keyword(_) => Vec::new(),
                        other => vec![other.to_string()],
                    };
                    (source.to_string(), evidence, covers)
                })
                .collect();
            let origins: BTreeSet<Origin> = plan.hosts.keys().cloned().collect();
            for (host, members) in
                source::merge_subdomains(&origins, self.settings.wildcard_threshold)
            {
                let mut evidence = Evidence::default();
                for member in &members {
                    if let Some(seen) = plan.hosts.get(member) {
                        evidence.merge(seen);
                    }
                }
                let covers = if members.len() > 1 {
                    members.iter().map(ToString::to_string).collect()
                } else {
                    Vec::new()
                };
                sources.push((host.to_string(), evidence, covers));
            }
            let mut added = Vec::new();
            for (text, evidence, covers) in sources {
                // What was made from a report goes into the header only if it parses back
                // to itself.
                if Source::parse(&text).map(|s| s.to_string()).as_deref() != Ok(text.as_str()) {
                    self.skip(target, &text, SkipReason::NotExpressible, evidence.reports);
                    continue;
                }
                if evidence.reports < self.settings.min_reports {
                    self.skip(target, &text, SkipReason::TooFewReports, evidence.reports);
                    continue;
                }
                added.push(AddedSource {
                    source: text,
                    reports: evidence.reports,
                    pages: evidence.pages(),
                    covers,
                });
            }
            if !added.is_empty() {
                let seed = plan.seed_from.and_then(|name| self.current.directive(name));
                apply(
                    &mut proposed,
                    &mut changes,
                    target,
                    plan.seed_from,
                    seed,
                    added,
                );
            }
        }

        // Unsafe keywords last, so that a directive added for them starts from a list that
        // already has the sources added above.
        let keywords = std::mem::take(&mut self.keywords);
        for ((effective, keyword), evidence) in keywords {
            let Some(info) = directive::lookup(effective) else {
                continue;
            };
            let (seed_from, seed) = match info.fallback.iter().find_map(|n| proposed.directive(n)) {
                Some(found) if found.name() == effective => (None, None),
                Some(found) => (
                    directive::lookup(found.name()).map(|i| i.name),
                    Some(found.clone()),
                ),
                None => (None, None),
            };
            let added = vec![AddedSource {
                source: keyword.to_owned(),
                reports: evidence.reports,
                pages: evidence.pages(),
                covers: Vec::new(),
            }];
            apply(
                &mut proposed,
                &mut changes,
                info.name,
                seed_from,
                seed.as_ref(),
                added,
            );
            if keyword == "'unsafe-inline'"
                && proposed.directive(info.name).is_some_and(|d| {
                    d.values()
                        .iter()
                        .filter_map(|v| Source::parse(v).ok())
                        .any(|s| s.disables_unsafe_inline())
                })
            {
                self.notes.push(format!(
                    "{}: browsers ignore 'unsafe-inline' in a list that has a nonce, a hash or 'strict-dynamic'.",
                    info.name
                ));
            }
        }

        let mut needs: Vec<NeedsNonce> = std::mem::take(&mut self.needs)
            .into_iter()
            .map(
                |((directive, code, file, line, column, sample), evidence)| NeedsNonce {
                    directive: directive.to_owned(),
                    code,
                    remedy: remedy(code, directive),
                    allowed_unsafely: self.opt_in(code).is_some(),
                    reports: evidence.reports,
                    pages: evidence
                        .documents
                        .iter()
                        .take(MAX_PAGES)
                        .map(|d| crate::parse::clean(d, MAX_TEXT))
                        .collect(),
                    page_count: evidence.pages(),
                    source_file: file.map(|f| crate::parse::clean(&f, MAX_TEXT)),
                    line,
                    column,
                    sample: sample.map(|s| crate::parse::clean(&s, MAX_TEXT)),
                },
            )
            .collect();
        needs.sort_by_key(|n| std::cmp::Reverse(n.reports));
        if needs
            .iter()
            .any(|n| matches!(n.code, Code::Inline | Code::Eval) && n.sample.is_none())
        {
            self.notes.push(
                "Add 'report-sample' to script-src and style-src: reports then carry the first \
                 characters of blocked code, to find it and hash it."
                    .to_owned(),
            );
        }

        let header = proposed.to_string();
        let mut changes: Vec<DirectiveChange> = changes.into_values().collect();
        let position = |name: &str| {
            proposed
                .directives()
                .iter()
                .position(|d| d.name() == name)
                .unwrap_or(usize::MAX)
        };
        changes.sort_by_key(|c| position(&c.directive));

        if let PolicyOrigin::Reported { reports, policies } = origin {
            let total: u64 = observations
                .iter()
                .map(|o| o.count)
                .fold(0, u64::saturating_add);
            self.notes.insert(
                0,
                format!(
                    "Built on the policy {reports} of {total} reports carried ({policies} \
                     {} in all). Anyone can send reports: check that it is yours, or give \
                     the policy as the base.",
                    if policies == 1 { "policy" } else { "policies" }
                ),
            );
        }
        if !dropped.is_empty() {
            self.notes.push(format!(
                "{} part(s) of the reported policy could not be read and were left out.",
                dropped.len()
            ));
        }
        if changes.is_empty() {
            self.notes
                .push("Nothing to add: the proposal is the current policy.".to_owned());
        }

        let mut all = Evidence::default();
        for observation in observations {
            all.add(observation);
        }
        let mut skipped: Vec<Skipped> = self
            .skipped
            .into_iter()
            .map(|((directive, blocked, reason), reports)| Skipped {
                directive,
                blocked,
                reason,
                reports,
            })
            .collect();
        skipped.sort_by_key(|s| std::cmp::Reverse(s.reports));

        Proposal {
            header,
            current: CurrentPolicy {
                header: self.current.to_string(),
                origin,
                dropped,
            },
            changes,
            needs_nonce: needs,
            skipped,
            notes: self.notes,
            totals: Totals {
                observations: observations.len(),
                reports: all.reports,
                pages: all.pages(),
            },
        }
    }
}

/// Adds `added` to `target` in `proposed` (creating it from `seed` when missing), and
/// records the change.
fn apply(
    proposed: &mut Policy,
    changes: &mut BTreeMap<&'static str, DirectiveChange>,
    target: &'static str,
    seed_from: Option<&'static str>,
    seed: Option<&Directive>,
    added: Vec<AddedSource>,
) {
    if proposed.directive(target).is_none() {
        let values = seed.map(|d| d.values().to_vec()).unwrap_or_default();
        proposed.insert(Directive::new(target, values.clone()));
        changes.insert(
            target,
            DirectiveChange {
                directive: target.to_owned(),
                kind: ChangeKind::Added,
                seeded_from: seed_from.map(str::to_owned),
                before: values,
                after: Vec::new(),
                added: Vec::new(),
                removed: Vec::new(),
            },
        );
    }
    let Some(directive) = proposed.directive_mut(target) else {
        return;
    };
    let change = changes.entry(target).or_insert_with(|| DirectiveChange {
        directive: target.to_owned(),
        kind: ChangeKind::Extended,
        seeded_from: None,
        before: directive.values().to_vec(),
        after: Vec::new(),
        added: Vec::new(),
        removed: Vec::new(),
    });
    let values = directive.values_mut();
    if values.iter().any(|v| v == "'none'") {
        values.retain(|v| v != "'none'");
        change.removed.push("'none'".to_owned());
    }
    for source in added {
        if !values.contains(&source.source) {
            values.push(source.source.clone());
            change.added.push(source);
        }
    }
    change.after = values.clone();
}

/// How to allow `code` reported under `directive` without an unsafe keyword.
fn remedy(code: Code, directive: &str) -> &'static str {
    match (code, directive) {
        (Code::Inline, "script-src-attr") => {
            "move the event handler into a script file, or allow its hash with 'unsafe-hashes'"
        }
        (Code::Inline, "style-src-attr") => {
            "move the style attribute into a style sheet, or allow its hash with 'unsafe-hashes'"
        }
        (Code::Inline, d) if d.starts_with("style-src") => {
            "give the <style> element a nonce, or add its hash ('sha256-...'), or move it into a style sheet"
        }
        (Code::Inline, _) => {
            "give the <script> element a nonce, or add its hash ('sha256-...'), or move it into a file"
        }
        (Code::Eval, _) => {
            "no nonce or hash allows eval: replace eval, new Function and string timers with code in a file ('unsafe-eval' allows them all)"
        }
        (Code::WasmEval, _) => "'wasm-unsafe-eval' allows WebAssembly compilation and nothing else",
        (Code::TrustedTypesPolicy, _) => "name the policy in trusted-types, or stop creating it",
        (Code::TrustedTypesSink, _) => "pass this sink a value made by a Trusted Types policy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
