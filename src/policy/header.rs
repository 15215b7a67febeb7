//! [`Policy`] and [`Directive`]: a Content-Security-Policy as its header value holds it,
//! and the edits the builder makes to one. Reading one is in `parse.rs`.

use std::fmt;

use super::directive;
use super::error::PolicyError;

/// A Content-Security-Policy: its directives, in the order written, each with its values.
///
/// ```
/// use tower_csp_reports::policy::Policy;
///
/// let policy = Policy::parse("default-src 'none'; IMG-SRC 'self' https://CDN.example").unwrap();
/// assert_eq!(policy.directive("img-src").unwrap().values(), ["'self'", "https://cdn.example"]);
/// assert_eq!(policy.to_string(), "default-src 'none'; img-src 'self' https://cdn.example");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    directives: Vec<Directive>,
}

/// One directive of a [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    name: String,
    values: Vec<String>,
}

impl Directive {
    /// The name, lowercase.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The values: source expressions normalized (keywords, schemes and hosts lowercase),
    /// anything else as written.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    pub(crate) fn new(name: &str, values: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            values,
        }
    }

    pub(crate) fn values_mut(&mut self) -> &mut Vec<String> {
        &mut self.values
    }
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for value in &self.values {
            write!(f, " {value}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Policy {
    /// The header value: directives joined by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (at, directive) in self.directives.iter().enumerate() {
            if at > 0 {
                f.write_str("; ")?;
            }
            directive.fmt(f)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Policy {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Policy {
    /// The directive called `name` (lowercase), if the policy has it.
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }

    /// The directives, in order.
    pub fn directives(&self) -> &[Directive] {
        &self.directives
    }

    pub(crate) fn directive_mut(&mut self, name: &str) -> Option<&mut Directive> {
        self.directives.iter_mut().find(|d| d.name == name)
    }

    /// Adds a directive the policy lacks: after the other fetch directives and before the
    /// reporting ones, so the header reads as people write it.
    pub(crate) fn insert(&mut self, directive: Directive) {
        let rank = directive::rank(&directive.name);
        let is_fetch =
            |d: &Directive| directive::lookup(&d.name).is_some_and(|info| info.is_fetch());
        let at = match self
            .directives
            .iter()
            .rposition(|d| is_fetch(d) && directive::rank(&d.name) < rank)
        {
            Some(before) => before + 1,
            None => self
                .directives
                .iter()
                .position(|d| is_fetch(d) || matches!(d.name.as_str(), "report-uri" | "report-to"))
                .unwrap_or(self.directives.len()),
        };
        self.directives.insert(at, directive);
    }

    /// Adds a directive at the end, as read.
    pub(super) fn push(&mut self, directive: Directive) {
        self.directives.push(directive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_directives_go_before_reporting() {
        let mut policy =
            Policy::parse("default-src 'none'; img-src 'self'; report-uri /r").unwrap();
        policy.insert(Directive::new("script-src", vec!["'self'".into()]));
        policy.insert(Directive::new("connect-src", vec!["'self'".into()]));
        assert_eq!(
            policy.to_string(),
            "default-src 'none'; script-src 'self'; img-src 'self'; connect-src 'self'; report-uri /r"
        );
    }
}
