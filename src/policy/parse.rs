//! A policy read from a header value: [`Policy::parse`], strict, for a policy a person
//! gives; [`Policy::parse_lenient`], for the `original-policy` of reports, which keeps what
//! it does not know.

use super::directive::{self, Values};
use super::error::{Dropped, PolicyError};
use super::header::{Directive, Policy};
use super::source::{Source, is_url_byte};

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
        && token
            .bytes()
            .all(|b| is_url_byte(b) || matches!(b, b'?' | b'#' | b'[' | b']' | b'%'))
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
            policy.push(Directive::new(info.name, values));
        }
        if policy.directives().is_empty() {
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
            policy.push(Directive::new(&name, values));
        }
        (policy, dropped)
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
}
