//! The text form of a [`Proposal`], for a terminal, a plain-text email or a `<pre>` on a
//! page (escaped there for HTML like any text). The JSON form is
//! [`Proposal::to_json`].
//!
//! Every value that came from a report was escaped when the proposal was made (control
//! characters written as `\u{..}`, cut to 200 bytes), and the header holds only source
//! expressions that parsed; this writes them as they are.

use std::fmt::{self, Write as _};

use super::proposal::{ChangeKind, NeedsNonce, PolicyOrigin, Proposal};

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Proposal {
    /// Writes the proposal for people: the header, the changes directive by directive with
    /// the evidence for each source, what needs a nonce or a hash, what was skipped, notes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Proposed Content-Security-Policy (from {} on {}):",
            plural(self.totals.reports, "report", "reports"),
            plural(self.totals.pages, "page", "pages"),
        )?;
        writeln!(f)?;
        writeln!(f, "  {}", self.header)?;
        writeln!(f)?;
        let from = match self.current.origin {
            PolicyOrigin::Base => "the base policy".to_owned(),
            PolicyOrigin::Reported { reports, .. } => format!(
                "the policy {} carried",
                plural(reports, "report", "reports")
            ),
        };
        writeln!(f, "Current policy ({from}):")?;
        writeln!(f)?;
        writeln!(f, "  {}", self.current.header)?;

        if !self.changes.is_empty() {
            writeln!(f)?;
            writeln!(f, "Changes:")?;
        }
        for change in &self.changes {
            writeln!(f)?;
            match (change.kind, &change.seeded_from) {
                (ChangeKind::Added, Some(seed)) => writeln!(
                    f,
                    "  {} (new; starts from {seed}: {})",
                    change.directive,
                    list(&change.before)
                )?,
                (ChangeKind::Added, None) => writeln!(f, "  {} (new)", change.directive)?,
                _ => writeln!(f, "  {}: {}", change.directive, list(&change.before))?,
            }
            let width = change
                .added
                .iter()
                .map(|a| a.source.len())
                .max()
                .unwrap_or(0);
            for added in &change.added {
                let mut line = format!(
                    "    + {:width$}  {}, {}",
                    added.source,
                    plural(added.reports, "report", "reports"),
                    plural(added.pages, "page", "pages"),
                );
                if !added.covers.is_empty() && added.covers != [added.source.clone()] {
                    let _ = write!(line, " ({})", added.covers.join(", "));
                }
                writeln!(f, "{line}")?;
            }
            for removed in &change.removed {
                writeln!(f, "    - {removed}")?;
            }
        }

        let (unsafely, needs): (Vec<&NeedsNonce>, Vec<&NeedsNonce>) =
            self.needs_nonce.iter().partition(|n| n.allowed_unsafely);
        for (title, items) in [
            (
                "Needs a nonce or a hash (not allowed by this proposal):",
                needs,
            ),
            (
                "Allowed with an unsafe keyword, as asked (a nonce or a hash would be safer):",
                unsafely,
            ),
        ] {
            if items.is_empty() {
                continue;
            }
            writeln!(f)?;
            writeln!(f, "{title}")?;
            for item in items {
                writeln!(f)?;
                needs_item(f, item)?;
            }
        }

        if !self.skipped.is_empty() {
            writeln!(f)?;
            writeln!(f, "Not used:")?;
            writeln!(f)?;
            for skipped in &self.skipped {
                writeln!(
                    f,
                    "  {} {} ({}): {}",
                    skipped.directive,
                    skipped.blocked,
                    plural(skipped.reports, "report", "reports"),
                    skipped.reason.describe(),
                )?;
            }
        }

        if !self.current.dropped.is_empty() {
            writeln!(f)?;
            writeln!(f, "Left out of the reported policy:")?;
            writeln!(f)?;
            for dropped in &self.current.dropped {
                let at = if dropped.directive.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", dropped.directive)
                };
                writeln!(f, "  {at}{} ({})", dropped.value.trim(), dropped.reason)?;
            }
        }

        if !self.notes.is_empty() {
            writeln!(f)?;
            writeln!(f, "Notes:")?;
            writeln!(f)?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
        }
        Ok(())
    }
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        "(empty)".to_owned()
    } else {
        values.join(" ")
    }
}

fn needs_item(f: &mut fmt::Formatter<'_>, item: &NeedsNonce) -> fmt::Result {
    writeln!(
        f,
        "  {} {}: {} on {}",
        item.directive,
        item.code,
        plural(item.reports, "report", "reports"),
        plural(item.page_count, "page", "pages"),
    )?;
    if let Some(file) = &item.source_file {
        let mut at = format!("    at {file}");
        if let Some(line) = item.line {
            let _ = write!(at, " line {line}");
            if let Some(column) = item.column {
                let _ = write!(at, " column {column}");
            }
        }
        writeln!(f, "{at}")?;
    }
    if let Some(sample) = &item.sample {
        writeln!(f, "    sample: {sample}")?;
    }
    let more = item.page_count.saturating_sub(item.pages.len() as u64);
    let mut pages = item.pages.join(", ");
    if more > 0 {
        let _ = write!(pages, " and {more} more");
    }
    writeln!(f, "    pages: {pages}")?;
    writeln!(f, "    fix: {}", item.remedy)
}
