//! Source expressions (CSP Level 3, section 2.3.1): their grammar, parsed and written back.
//!
//! Every blocked URL comes from a report, so from anyone: a source is only ever made from
//! the parts of a URL that were checked against this grammar (scheme, host labels, port),
//! and the text made is parsed again before it goes into a policy.

use std::fmt;

/// The keyword sources of CSP Level 3 and its extensions, lowercase, without quotes.
const KEYWORDS: &[&str] = &[
    "self",
    "unsafe-inline",
    "unsafe-eval",
    "strict-dynamic",
    "unsafe-hashes",
    "report-sample",
    "unsafe-allow-redirects",
    "wasm-unsafe-eval",
    "trusted-types-eval",
    "report-sha256",
    "report-sha384",
    "report-sha512",
    "inline-speculation-rules",
    "unsafe-webtransport-hashes",
];

/// One source expression.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// `'none'`.
    None,
    /// `'self'`, `'unsafe-inline'`, ...: the name, lowercase, without quotes.
    Keyword(&'static str),
    /// `'nonce-…'`: the whole expression as written (the value is case-sensitive).
    Nonce(String),
    /// `'sha256-…'`: the whole expression, algorithm lowercased.
    Hash(String),
    /// `data:`: the scheme, lowercase, without the colon.
    Scheme(String),
    /// `https://*.example.com:8443/path`.
    Host(HostSource),
}

/// The parts of a host source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct HostSource {
    /// Lowercase, when given.
    pub(crate) scheme: Option<String>,
    /// `*`, `*.example.com` or `example.com`, lowercase.
    pub(crate) host: String,
    /// `None` when not given.
    pub(crate) port: Option<Port>,
    /// Empty when not given.
    pub(crate) path: String,
}

/// The port of a host source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Port {
    /// `:*`.
    Any,
    /// `:8443`.
    Number(u16),
}

impl Source {
    /// Parses one source expression; the reason when it is not one.
    pub(crate) fn parse(text: &str) -> Result<Self, &'static str> {
        if let Some(inner) = text.strip_prefix('\'') {
            let Some(inner) = inner.strip_suffix('\'') else {
                return Err("a quoted keyword must end with a quote");
            };
            let lower = inner.to_ascii_lowercase();
            if lower == "none" {
                return Ok(Self::None);
            }
            if let Some(&keyword) = KEYWORDS.iter().find(|k| **k == lower) {
                return Ok(Self::Keyword(keyword));
            }
            if lower.starts_with("nonce-") {
                return if is_base64_value(&inner[6..]) {
                    Ok(Self::Nonce(format!("'nonce-{}'", &inner[6..])))
                } else {
                    Err("a nonce must be base64")
                };
            }
            for algorithm in ["sha256-", "sha384-", "sha512-"] {
                if lower.starts_with(algorithm) {
                    let value = &inner[algorithm.len()..];
                    return if is_base64_value(value) {
                        Ok(Self::Hash(format!("'{algorithm}{value}'")))
                    } else {
                        Err("a hash must be base64")
                    };
                }
            }
            return Err("not a keyword, nonce or hash");
        }
        if let Some(scheme) = text.strip_suffix(':') {
            return if is_scheme(scheme) {
                Ok(Self::Scheme(scheme.to_ascii_lowercase()))
            } else {
                Err("not a scheme")
            };
        }
        HostSource::parse(text).map(Self::Host)
    }

    /// Whether this is a nonce, a hash or `'strict-dynamic'`, any of which makes browsers
    /// ignore `'unsafe-inline'` in the same list.
    pub(crate) fn disables_unsafe_inline(&self) -> bool {
        matches!(
            self,
            Self::Nonce(_) | Self::Hash(_) | Self::Keyword("strict-dynamic")
        )
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("'none'"),
            Self::Keyword(name) => write!(f, "'{name}'"),
            Self::Nonce(text) | Self::Hash(text) => f.write_str(text),
            Self::Scheme(scheme) => write!(f, "{scheme}:"),
            Self::Host(host) => host.fmt(f),
        }
    }
}

impl HostSource {
    fn parse(text: &str) -> Result<Self, &'static str> {
        let (scheme, rest) = match text.find("://") {
            Some(at) if is_scheme(&text[..at]) => {
                (Some(text[..at].to_ascii_lowercase()), &text[at + 3..])
            }
            Some(_) => return Err("not a scheme before ://"),
            None => (None, text),
        };
        let host_end = rest.find([':', '/']).unwrap_or(rest.len());
        let host = &rest[..host_end];
        if !is_host_part(host) {
            return Err("not a host (letters, digits, '-' and '.', or a leading '*.')");
        }
        let mut rest = &rest[host_end..];
        let mut port = None;
        if let Some(after) = rest.strip_prefix(':') {
            let end = after.find('/').unwrap_or(after.len());
            port = Some(match &after[..end] {
                "*" => Port::Any,
                digits => Port::Number(parse_port(digits).ok_or("not a port")?),
            });
            rest = &after[end..];
        }
        if !rest.is_empty() && !is_path(rest) {
            return Err("not a path");
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: rest.to_owned(),
        })
    }
}

impl fmt::Display for HostSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = &self.scheme {
            write!(f, "{scheme}://")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            None => {}
            Some(Port::Any) => f.write_str(":*")?,
            Some(Port::Number(port)) => write!(f, ":{port}")?,
        }
        f.write_str(&self.path)
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986).
pub(super) fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `host-part = "*" / [ "*." ] 1*host-char *( "." 1*host-char ) [ "." ]`.
pub(super) fn is_host_part(host: &str) -> bool {
    if host == "*" {
        return true;
    }
    let host = host.strip_prefix("*.").unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An RFC 3986 path: `/` and pchars (`%XX`, or [URL bytes](is_url_byte)).
fn is_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            if !(bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            at += 3;
        } else if is_url_byte(bytes[at]) {
            at += 1;
        } else {
            return false;
        }
    }
    true
}

/// A byte a path holds as it is: unreserved (letters, digits, `-._~`), sub-delims but `;`
/// and `,` (which mean something in a policy), `:`, `@` and `/`.
pub(super) fn is_url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
}

/// `base64-value = 1*( ALPHA / DIGIT / "+" / "/" / "-" / "_" ) *2( "=" )`.
fn is_base64_value(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    value.len() - body.len() <= 2
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
}

pub(super) fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The port a scheme uses when a URL names none.
pub(super) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("'self'", Ok("'self'")),
            ("'SELF'", Ok("'self'")),
            ("'none'", Ok("'none'")),
            ("'unsafe-inline'", Ok("'unsafe-inline'")),
            ("'strict-dynamic'", Ok("'strict-dynamic'")),
            ("'wasm-unsafe-eval'", Ok("'wasm-unsafe-eval'")),
            ("'report-sample'", Ok("'report-sample'")),
            ("'nonce-R4nd0m+/=='", Ok("'nonce-R4nd0m+/=='")),
            ("'NONCE-abc'", Ok("'nonce-abc'")),
            ("'sha256-AbC123_-'", Ok("'sha256-AbC123_-'")),
            ("data:", Ok("data:")),
            ("HTTPS:", Ok("https:")),
            ("*", Ok("*")),
            ("example.com", Ok("example.com")),
            ("https://CDN.Example.com", Ok("https://cdn.example.com")),
            ("https://*.example.com", Ok("https://*.example.com")),
            ("https://example.com:8443", Ok("https://example.com:8443")),
            ("https://example.com:*", Ok("https://example.com:*")),
            (
                "wss://live.example.com/socket",
                Ok("wss://live.example.com/socket"),
            ),
            (
                "https://example.com/a%20b/",
                Ok("https://example.com/a%20b/"),
            ),
            ("http://127.0.0.1:9000", Ok("http://127.0.0.1:9000")),
            ("example.com.", Ok("example.com.")),
            // Not source expressions.
            ("'slef'", Err(())),
            ("'self", Err(())),
            ("self", Ok("self")), // a host called "self", as browsers read it
            ("'nonce-'", Err(())),
            ("'nonce-a b'", Err(())),
            ("'sha256-abc==='", Err(())),
            ("'sha1-abc'", Err(())),
            ("1http:", Err(())),
            ("https://", Err(())),
            ("https://a..b", Err(())),
            ("https://a_b.example", Err(())),
            ("https://ex ample.com", Err(())),
            ("https://example.com:99999", Err(())),
            ("https://example.com:", Err(())),
            ("https://example.com/a\"b", Err(())),
            ("https://example.com/a%2", Err(())),
            ("https://[::1]:80", Err(())),
            ("https://user@example.com", Err(())),
            ("https://*example.com", Err(())),
            ("https://a.*.example.com", Err(())),
            ("https://exa\u{e9}mple.com", Err(())),
            ("https://example.com/\n", Err(())),
            ("", Err(())),
        ];
        for (text, expected) in cases {
            let parsed = Source::parse(text).map(|s| s.to_string()).map_err(|_| ());
            assert_eq!(parsed.as_deref().map_err(|_| ()), *expected, "{text:?}");
        }
    }
}
