//! Assembling the proposal: the sources of each directive merged (wildcards) and checked,
//! applied to the current policy, then the unsafe keywords asked for, what needs a nonce,
//! what was skipped, and notes.

use std::collections::{BTreeMap, BTreeSet};

use super::blocked::{Code, Origin};
use super::directive;
use super::error::Dropped;
use super::header::{Directive, Policy};
use super::observation::Observation;
use super::observe::{Evidence, MAX_TEXT, Work};
use super::proposal::{
    AddedSource, ChangeKind, CurrentPolicy, DirectiveChange, MAX_PAGES, NeedsNonce, PolicyOrigin,
    Proposal, SkipReason, Skipped, Totals,
};
use super::source::Source;
use super::wildcard::merge_subdomains;

impl Work<'_> {
    /// The proposal: the plans merged and applied to the current policy, unsafe keywords
    /// last, what needs a nonce, what was skipped, notes and totals.
    pub(super) fn finish(
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
            for (host, members) in merge_subdomains(&origins, self.settings.wildcard_threshold) {
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
