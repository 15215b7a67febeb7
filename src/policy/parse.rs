//! A policy read from a header value: [`Policy::parse`], strict, for a policy a person
//! gives; [`Policy::parse_lenient`], for the `original-policy` of reports, which keeps what
//! it does not know.

use std::fmt;

use serde::Serialize;

use super::directive::{self, Values};
use super::source::Source;

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

/// A policy that [`Policy::parse`] refuses, naming the directive at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Nothing but white space and semicolons.
    Empty,
    /// A comma: a header value with several policies. Give them one at a time.
    SeveralPolicies,
    /// A directive name that is not one of CSP Level 3 (or one of its deprecated ones).
    UnknownDirective {
        /// The name, as given.
        directive: String,
    },
    /// The same directive twice (browsers would ignore the second).
    DuplicateDirective {
        /// The name.
        directive: String,
    },
    /// A value that the directive does not take.
    InvalidValue {
        /// The directive's name.
        directive: String,
        /// The value, as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl PolicyError {
    /// The directive at fault, when there is one.
    pub fn directive(&self) -> Option<&str> {
        match self {
            Self::Empty | Self::SeveralPolicies => None,
            Self::UnknownDirective { directive }
            | Self::DuplicateDirective { directive }
            | Self::InvalidValue { directive, .. } => Some(directive),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the policy is empty"),
            Self::SeveralPolicies => {
                f.write_str("the policy holds a comma, which separates several policies: give one")
            }
            Self::UnknownDirective { directive } => {
                write!(f, "unknown directive {directive:?}")
            }
            Self::DuplicateDirective { directive } => {
                write!(f, "directive {directive:?} is given twice")
            }
            Self::InvalidValue {
                directive,
                value,
                reason,
            } => write!(f, "invalid value {value:?} in {directive:?}: {reason}"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// What [`Policy::parse_lenient`] left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Dropped {
    /// The directive (empty when a whole directive or policy was left out).
    pub directive: String,
    /// What was left out, with control characters escaped and cut to 200 bytes.
    pub value: String,
    /// Why.
    pub reason: &'static str,
}

/// The cut marker the report parser ends a shortened field with.
const CUT: char = '…';

/// The longest value a [`Dropped`] keeps.
const MAX_DROPPED: usize = 200;

/// ASCII white space as CSP defines it (tab, line feed, form feed, carriage return, space).
fn is_csp_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

fn is_directive_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `%x21-%x2B / %x2D-%x3A / %x3C-%x7E`: visible ASCII but `,` and `;`.
fn is_value_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b',' && b != b';'
}

/// What a lenient parse keeps of a value it does not understand: URL characters and quotes,
/// nothing that means something in HTML or a shell (`"`, `<`, `>`, `\`, `` ` ``, braces).
fn is_plain_token(token: &str) -> bool {
    !token.is_empty()
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b':'
                        | b'/'
                        | b'?'
                        | b'#'
                        | b'['
                        | b']'
                        | b'@'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b'='
                        | b'%'
                )
        })
}

/// A quoted keyword this builder does not know (yet): `'lowercase-words'`.
fn is_unknown_keyword(token: &str) -> bool {
    token.len() > 2
        && token.starts_with('\'')
        && token.ends_with('\'')
        && token[1..token.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Policy {
    /// Parses a policy strictly: every directive known, every value valid for it.
    ///
    /// ```
    /// use tower_csp_reports::policy::{Policy, PolicyError};
    ///
    /// let error = Policy::parse("default-src 'self'; scirpt-src 'self'").unwrap_err();
    /// assert_eq!(error.directive(), Some("scirpt-src"));
    /// assert_eq!(error.to_string(), r#"unknown directive "scirpt-src""#);
    ///
    /// let error = Policy::parse("img-src 'self' https://exa_mple.com").unwrap_err();
    /// assert!(matches!(error, PolicyError::InvalidValue { .. }));
    /// assert_eq!(error.directive(), Some("img-src"));
    /// ```
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.contains(',') {
            return Err(PolicyError::SeveralPolicies);
        }
        let mut policy = Self::default();
        for part in text.split(';') {
            let mut tokens = part.split(is_csp_space).filter(|t| !t.is_empty());
            let Some(name) = tokens.next() else {
                continue;
            };
            let info = directive::lookup(name).ok_or_else(|| PolicyError::UnknownDirective {
                directive: name.to_owned(),
            })?;
            if policy.directive(info.name).is_some() {
                return Err(PolicyError::DuplicateDirective {
                    directive: info.name.to_owned(),
                });
            }
            let tokens: Vec<&str> = tokens.collect();
            let invalid = |value: &str, reason| PolicyError::InvalidValue {
                directive: info.name.to_owned(),
                value: value.to_owned(),
                reason,
            };
            if let Some(bad) = tokens.iter().find(|t| !t.bytes().all(is_value_char)) {
                return Err(invalid(
                    bad,
                    "only visible ASCII characters may appear in a policy",
                ));
            }
            let values = strict_values(info.values, &tokens).map_err(|(v, r)| invalid(v, r))?;
            policy.directives.push(Directive::new(info.name, values));
        }
        if policy.directives.is_empty() {
            return Err(PolicyError::Empty);
        }
        Ok(policy)
    }

    /// Parses a policy a report carried: never fails, keeps directives it does not know and
    /// values it cannot read when they are plain tokens, and says what it left out.
    ///
    /// Left out: what follows a comma (a second policy), the last directive of a policy the
    /// collector cut short, repeated directives (browsers use the first), source
    /// expressions that do not parse (browsers ignore them too), and anything with
    /// characters no policy holds.
    ///
    /// ```
    /// use tower_csp_reports::policy::Policy;
    ///
    /// let (policy, dropped) =
    ///     Policy::parse_lenient("script-src 'self' 'new-keyword' ht<tp://x; future-thing a b");
    /// assert_eq!(policy.to_string(), "script-src 'self' 'new-keyword'; future-thing a b");
    /// assert_eq!(dropped[0].value, "ht<tp://x");
    /// ```
    pub fn parse_lenient(text: &str) -> (Self, Vec<Dropped>) {
        let mut dropped = Vec::new();
        let mut drop = |directive: &str, value: &str, reason| {
            dropped.push(Dropped {
                directive: crate::parse::clean(directive, MAX_DROPPED),
                value: crate::parse::clean(value, MAX_DROPPED),
                reason,
            });
        };
        let mut text = text;
        if let Some((first, rest)) = text.split_once(',') {
            drop("", rest, "a second policy, after a comma");
            text = first;
        }
        let mut parts: Vec<&str> = text.split(';').collect();
        if text.trim_end().ends_with(CUT)
            && let Some(last) = parts.pop()
        {
            drop("", last, "cut short when the report was received");
        }
        let mut policy = Self::default();
        for part in parts {
            let mut tokens = part.split(is_csp_space).filter(|t| !t.is_empty());
            let Some(name) = tokens.next() else {
                continue;
            };
            if !is_directive_name(name) {
                drop("", part.trim(), "not a directive name");
                continue;
            }
            let name = name.to_ascii_lowercase();
            if policy.directive(&name).is_some() {
                drop(
                    &name,
                    part.trim(),
                    "a repeated directive (browsers use the first)",
                );
                continue;
            }
            let info = directive::lookup(&name);
            let mut values = Vec::new();
            for token in tokens {
                let kept = match info.map(|i| i.values) {
                    Some(Values::Sources | Values::AncestorSources) => Source::parse(token)
                        .map(|s| s.to_string())
                        .ok()
                        .or_else(|| is_unknown_keyword(token).then(|| token.to_owned())),
                    _ => is_plain_token(token).then(|| token.to_owned()),
                };
                match kept {
                    Some(value) => values.push(value),
                    None => drop(&name, token, "not a valid value for this directive"),
                }
            }
            policy.directives.push(Directive::new(&name, values));
        }
        (policy, dropped)
    }

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
}

/// The values of a directive of kind `values`, normalized, or the bad one and why.
fn strict_values<'a>(
    values: Values,
    tokens: &[&'a str],
) -> Result<Vec<String>, (&'a str, &'static str)> {
    let one_of =
        |allowed: &[&str], reason: &'static str| -> Result<Vec<String>, (&'a str, &'static str)> {
            tokens
                .iter()
                .map(|t| {
                    allowed
                        .iter()
                        .find(|a| a.eq_ignore_ascii_case(t))
                        .map(|a| (*a).to_owned())
                        .ok_or((*t, reason))
                })
                .collect()
        };
    match values {
        Values::Sources | Values::AncestorSources => {
            let mut out = Vec::with_capacity(tokens.len());
            for token in tokens {
                let source = Source::parse(token).map_err(|reason| (*token, reason))?;
                if source == Source::None && tokens.len() > 1 {
                    return Err((*token, "'none' must be the only source"));
                }
                if values == Values::AncestorSources
                    && !matches!(
                        source,
                        Source::None
                            | Source::Keyword("self")
                            | Source::Scheme(_)
                            | Source::Host(_)
                    )
                {
                    return Err((
                        *token,
                        "frame-ancestors takes hosts, schemes, 'self' or 'none'",
                    ));
                }
                out.push(source.to_string());
            }
            Ok(out)
        }
        Values::Nothing => match tokens.first() {
            Some(token) => Err((*token, "this directive takes no value")),
            None => Ok(Vec::new()),
        },
        Values::SandboxFlags => tokens
            .iter()
            .map(|t| {
                let flag = t.to_ascii_lowercase();
                match flag.strip_prefix("allow-") {
                    Some(rest)
                        if !rest.is_empty()
                            && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') =>
                    {
                        Ok(flag)
                    }
                    _ => Err((*t, "a sandbox flag is allow-something")),
                }
            })
            .collect(),
        Values::Urls => {
            if tokens.is_empty() {
                return Err(("", "report-uri needs a URL"));
            }
            tokens
                .iter()
                .map(|t| {
                    if is_plain_token(t) && !t.starts_with('\'') {
                        Ok((*t).to_owned())
                    } else {
                        Err((*t, "not a URL"))
                    }
                })
                .collect()
        }
        Values::EndpointName => match tokens {
            [name]
                if name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
            {
                Ok(vec![(*name).to_owned()])
            }
            [name] => Err((
                *name,
                "an endpoint name is letters, digits, '-', '_' and '.'",
            )),
            [] => Err(("", "report-to needs an endpoint name")),
            [_, extra, ..] => Err((*extra, "report-to takes one endpoint name")),
        },
        Values::TrustedTypesSinks => one_of(&["'script'"], "the only sink group is 'script'"),
        Values::WebRtc => match tokens {
            [_] => one_of(&["'allow'", "'block'"], "webrtc is 'allow' or 'block'"),
            _ => Err((
                tokens.get(1).copied().unwrap_or(""),
                "webrtc takes one value",
            )),
        },
        Values::TrustedTypesPolicies => tokens
            .iter()
            .map(|t| {
                let keyword = ["'none'", "'allow-duplicates'", "*"]
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(t));
                if let Some(keyword) = keyword {
                    Ok((*keyword).to_owned())
                } else if t.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'#' | b'=' | b'_' | b'/' | b'@' | b'.' | b'%')
                }) {
                    Ok((*t).to_owned())
                } else {
                    Err((*t, "not a Trusted Types policy name"))
                }
            })
            .collect(),
        Values::Tokens => tokens
            .iter()
            .map(|t| {
                if is_plain_token(t) {
                    Ok((*t).to_owned())
                } else {
                    Err((*t, "not a plain token"))
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_table() {
        type Case<'a> = (&'a str, Result<&'a str, (Option<&'a str>, &'a str)>);
        let cases: &[Case<'_>] = &[
            ("default-src 'self'", Ok("default-src 'self'")),
            (
                "  DEFAULT-SRC  'SELF' ;; img-src\tdata: https://A.example:8443/x/ ;",
                Ok("default-src 'self'; img-src data: https://a.example:8443/x/"),
            ),
            ("script-src", Ok("script-src")),
            (
                "script-src 'nonce-AbC=' 'strict-dynamic' 'report-sample'",
                Ok("script-src 'nonce-AbC=' 'strict-dynamic' 'report-sample'"),
            ),
            (
                "frame-ancestors 'self' https://parent.example",
                Ok("frame-ancestors 'self' https://parent.example"),
            ),
            (
                "sandbox allow-scripts ALLOW-forms",
                Ok("sandbox allow-scripts allow-forms"),
            ),
            ("sandbox", Ok("sandbox")),
            ("upgrade-insecure-requests", Ok("upgrade-insecure-requests")),
            (
                "report-uri /csp-report https://r.example/csp; report-to csp",
                Ok("report-uri /csp-report https://r.example/csp; report-to csp"),
            ),
            (
                "require-trusted-types-for 'SCRIPT'; trusted-types app#1 'allow-duplicates'",
                Ok("require-trusted-types-for 'script'; trusted-types app#1 'allow-duplicates'"),
            ),
            ("webrtc 'block'", Ok("webrtc 'block'")),
            // Errors name the directive.
            ("", Err((None, "the policy is empty"))),
            (" ; ;", Err((None, "the policy is empty"))),
            (
                "default-src 'self', img-src *",
                Err((None, "the policy holds a comma")),
            ),
            (
                "scirpt-src 'self'",
                Err((Some("scirpt-src"), "unknown directive")),
            ),
            (
                "img_src 'self'",
                Err((Some("img_src"), "unknown directive")),
            ),
            (
                "img-src 'self'; IMG-SRC *",
                Err((Some("img-src"), "given twice")),
            ),
            (
                "img-src 'slef'",
                Err((Some("img-src"), "invalid value \"'slef'\"")),
            ),
            (
                "img-src 'none' 'self'",
                Err((Some("img-src"), "'none' must be the only")),
            ),
            (
                "img-src https://a\u{e9}.example",
                Err((Some("img-src"), "visible ASCII")),
            ),
            (
                "img-src https://a.example\u{7}",
                Err((Some("img-src"), "visible ASCII")),
            ),
            (
                "frame-ancestors 'unsafe-inline'",
                Err((Some("frame-ancestors"), "frame-ancestors takes")),
            ),
            (
                "upgrade-insecure-requests yes",
                Err((Some("upgrade-insecure-requests"), "no value")),
            ),
            ("sandbox scripts", Err((Some("sandbox"), "allow-something"))),
            ("report-uri", Err((Some("report-uri"), "needs a URL"))),
            ("report-uri 'self'", Err((Some("report-uri"), "not a URL"))),
            (
                "report-to a b",
                Err((Some("report-to"), "one endpoint name")),
            ),
            (
                "report-to",
                Err((Some("report-to"), "needs an endpoint name")),
            ),
            (
                "require-trusted-types-for 'style'",
                Err((Some("require-trusted-types-for"), "'script'")),
            ),
            (
                "webrtc 'maybe'",
                Err((Some("webrtc"), "'allow' or 'block'")),
            ),
            (
                "trusted-types a<b",
                Err((Some("trusted-types"), "policy name")),
            ),
        ];
        for (text, expected) in cases {
            match (Policy::parse(text), expected) {
                (Ok(policy), Ok(serialized)) => {
                    assert_eq!(policy.to_string(), *serialized, "{text:?}")
                }
                (Err(error), Err((directive, message))) => {
                    assert_eq!(error.directive(), *directive, "{text:?}");
                    assert!(error.to_string().contains(message), "{text:?}: {error}");
                }
                (got, _) => panic!("{text:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn lenient_table() {
        let cases: &[(&str, &str, &[&str])] = &[
            // (reported, kept, what was dropped)
            (
                "default-src 'none'; report-uri /r",
                "default-src 'none'; report-uri /r",
                &[],
            ),
            (
                "script-src 'self' 'inline-speculation-rules' 'future-keyword'",
                "script-src 'self' 'inline-speculation-rules' 'future-keyword'",
                &[],
            ),
            ("future-directive a 'b'", "future-directive a 'b'", &[]),
            (
                "img-src 'self' 'slef' ht<tp://x",
                "img-src 'self' 'slef'",
                &["ht<tp://x"],
            ),
            ("img-src 'self' 'SLEF'", "img-src 'self'", &["'SLEF'"]),
            (
                "img-src 'self'; img-src *",
                "img-src 'self'",
                &["img-src *"],
            ),
            (
                "img-src 'self', script-src *",
                "img-src 'self'",
                &[" script-src *"],
            ),
            (
                "img-src 'self'; script-src 'self' https://a.exa…",
                "img-src 'self'",
                &[" script-src 'self' https://a.exa…"],
            ),
            (
                "x<y 'self'; img-src data:",
                "img-src data:",
                &["x<y 'self'"],
            ),
            ("unknown-thing <script>", "unknown-thing", &["<script>"]),
            ("unknown-thing a\\nb", "unknown-thing", &["a\\nb"]),
            (
                "img-src https://a.example\u{0}",
                "img-src",
                &["https://a.example\\u{0}"],
            ),
            ("", "", &[]),
        ];
        for (text, kept, dropped) in cases {
            let (policy, left_out) = Policy::parse_lenient(text);
            assert_eq!(policy.to_string(), *kept, "{text:?}");
            let left_out: Vec<&str> = left_out.iter().map(|d| d.value.as_str()).collect();
            assert_eq!(left_out, *dropped, "{text:?}");
        }
    }

    #[test]
    fn lenient_output_is_header_safe_and_parses_strictly_where_known() {
        let hostile = "script-src 'self' \"x\" 'sha256-\u{202e}' https://a.example/\r\nSet-Cookie: a=b; \
                       img-src 'self'\u{0}; report-uri /r";
        let (policy, dropped) = Policy::parse_lenient(hostile);
        let text = policy.to_string();
        assert!(text.bytes().all(|b| (0x20..0x7f).contains(&b)), "{text:?}");
        assert!(http::HeaderValue::from_str(&text).is_ok());
        assert!(!dropped.is_empty());
        for d in &dropped {
            assert!(!d.value.chars().any(char::is_control), "{d:?}");
        }
    }

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
