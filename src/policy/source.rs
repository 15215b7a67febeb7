//! Source expressions (CSP Level 3, section 2.3.1): parsing them, turning a reported blocked
//! URL into the smallest one that allows it, whether a list already allows something, and
//! merging subdomains of one site into a wildcard.
//!
//! Every blocked URL comes from a report, so from anyone: a source is only ever made from
//! the parts of a URL that were checked against the grammar (scheme, host labels, port), and
//! the text made is parsed again before it goes into a policy.

use std::collections::{BTreeMap, BTreeSet};
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
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `host-part = "*" / [ "*." ] 1*host-char *( "." 1*host-char ) [ "." ]`.
fn is_host_part(host: &str) -> bool {
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

/// An RFC 3986 path: `/` and pchars (unreserved, `%XX`, sub-delims but `;` and `,`, `:`,
/// `@`).
fn is_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b == b'%' {
            if !(bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            at += 3;
            continue;
        }
        let ok = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'/' | b'-'
                    | b'.'
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
            );
        if !ok {
            return false;
        }
        at += 1;
    }
    true
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

fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The port a scheme uses when a URL names none.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

/// A URL's scheme, host and port, read from a reported URL and checked against the source
/// grammar.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Origin {
    /// Lowercase.
    pub(crate) scheme: String,
    /// Lowercase, a DNS name or an IPv4 address.
    pub(crate) host: String,
    /// The port the URL names, or its scheme's default.
    pub(crate) port: Option<u16>,
}

impl Origin {
    /// The origin of `url` (`scheme://host[:port]…`), or why it cannot be written as a host
    /// source.
    pub(crate) fn of_url(url: &str) -> Result<(Self, &str), Unusable> {
        let at = url.find("://").ok_or(Unusable::NotAUrl)?;
        let scheme = &url[..at];
        if !is_scheme(scheme) {
            return Err(Unusable::NotAUrl);
        }
        let rest = &url[at + 3..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = (&rest[..end], &rest[end..]);
        if authority.contains('@') || authority.starts_with('[') {
            // Credentials, or an IPv6 address, which the host grammar cannot express.
            return Err(Unusable::NotExpressible);
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                Some(parse_port(port).ok_or(Unusable::NotExpressible)?),
            ),
            None => (authority, None),
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.starts_with('*') || !is_host_part(host) {
            return Err(Unusable::NotExpressible);
        }
        let scheme = scheme.to_ascii_lowercase();
        let port = port.or_else(|| default_port(&scheme));
        let path = path.find(['?', '#']).map_or(path, |end| &path[..end]);
        Ok((
            Self {
                scheme,
                host: host.to_ascii_lowercase(),
                port,
            },
            path,
        ))
    }

    /// The host source that allows this origin and nothing else: the port only when it is
    /// not the scheme's default.
    pub(crate) fn host_source(&self) -> HostSource {
        HostSource {
            scheme: Some(self.scheme.clone()),
            host: self.host.clone(),
            port: self
                .port
                .filter(|port| Some(*port) != default_port(&self.scheme))
                .map(Port::Number),
            path: String::new(),
        }
    }

    fn is_ipv4(&self) -> bool {
        self.host
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.host_source().fmt(f)
    }
}

/// Why a reported blocked value gives no source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Neither a URL nor a keyword browsers send.
    NotAUrl,
    /// A URL whose host or port no source expression can name (IPv6, credentials, a bad
    /// character): nothing of it goes into a policy.
    NotExpressible,
}

/// Code that browsers report with a keyword instead of a URL: what no source list can allow
/// without an unsafe keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// An inline `<script>`, `<style>`, event handler or `style` attribute (`inline`).
    Inline,
    /// `eval()`, `new Function()`, a string given to `setTimeout` (`eval`).
    Eval,
    /// WebAssembly compiled from bytes (`wasm-eval`).
    WasmEval,
    /// A Trusted Types policy not allowed by `trusted-types` (`trusted-types-policy`).
    TrustedTypesPolicy,
    /// A string given to a DOM sink under `require-trusted-types-for` (`trusted-types-sink`).
    TrustedTypesSink,
}

impl Code {
    /// The keyword browsers report.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::Eval => "eval",
            Self::WasmEval => "wasm-eval",
            Self::TrustedTypesPolicy => "trusted-types-policy",
            Self::TrustedTypesSink => "trusted-types-sink",
        }
    }

    /// The code a reported keyword stands for (`inline` → [`Code::Inline`]), or `None`.
    pub fn from_keyword(keyword: &str) -> Option<Self> {
        [
            Self::Inline,
            Self::Eval,
            Self::WasmEval,
            Self::TrustedTypesPolicy,
            Self::TrustedTypesSink,
        ]
        .into_iter()
        .find(|code| code.as_str() == keyword)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reported blocked value names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Blocked<'a> {
    /// A URL with an origin, and its path.
    Url(Origin, &'a str),
    /// A URL reported by its scheme alone (`data`, `blob`), or a URL of a scheme with no
    /// host (`data:image/png;…`): the scheme, lowercase.
    Scheme(String),
    /// Code.
    Code(Code),
}

impl<'a> Blocked<'a> {
    /// Reads a reported `blocked-uri`.
    pub(crate) fn read(blocked: &'a str) -> Result<Self, Unusable> {
        let blocked = blocked.trim_ascii();
        if let Some(code) = Code::from_keyword(blocked) {
            return Ok(Self::Code(code));
        }
        let (scheme, rest) = blocked.split_once(':').unwrap_or((blocked, ""));
        if !is_scheme(scheme) {
            return Err(Unusable::NotAUrl);
        }
        let scheme = scheme.to_ascii_lowercase();
        let network = matches!(scheme.as_str(), "http" | "https" | "ws" | "wss");
        if !network {
            // `data`, `blob:https://…`, `chrome-extension://…`: only the scheme is used.
            return Ok(Self::Scheme(scheme));
        }
        if !rest.starts_with("//") {
            return Err(Unusable::NotAUrl);
        }
        // Browsers send URLs serialized: ASCII, with white space, quotes and the like
        // percent-encoded. Anything else was not written by a browser; none of it is used.
        if !blocked.bytes().all(|b| {
            (0x21..0x7f).contains(&b)
                && !matches!(
                    b,
                    b'"' | b'<' | b'>' | b'\\' | b'`' | b'{' | b'}' | b'|' | b'^'
                )
        }) {
            return Err(Unusable::NotExpressible);
        }
        Origin::of_url(blocked).map(|(origin, path)| Self::Url(origin, path))
    }
}

/// Whether the source list `list` (as written in a policy) allows `blocked` on a document of
/// origin `document`.
///
/// On the safe side: where browsers differ or the specification allows more (`'self'` for
/// WebSockets, `http:` sources for `ws:`), this says no, and the builder adds a source that
/// is merely redundant rather than leaving one out.
pub(crate) fn list_allows(
    list: &[String],
    blocked: &Blocked<'_>,
    document: Option<&Origin>,
) -> bool {
    let sources: Vec<Source> = list.iter().filter_map(|s| Source::parse(s).ok()).collect();
    let unsafe_inline_works = !sources.iter().any(Source::disables_unsafe_inline);
    sources.iter().any(|source| match (source, blocked) {
        (Source::Keyword("unsafe-inline"), Blocked::Code(Code::Inline)) => unsafe_inline_works,
        (Source::Keyword("unsafe-eval"), Blocked::Code(Code::Eval | Code::WasmEval)) => true,
        (Source::Keyword("wasm-unsafe-eval"), Blocked::Code(Code::WasmEval)) => true,
        (Source::Scheme(scheme), Blocked::Scheme(blocked)) => scheme == blocked,
        (Source::Scheme(scheme), Blocked::Url(origin, _)) => scheme_matches(scheme, &origin.scheme),
        (Source::Keyword("self"), Blocked::Url(origin, _)) => {
            document == Some(origin) && matches!(origin.scheme.as_str(), "http" | "https")
        }
        (Source::Host(host), Blocked::Url(origin, path)) => {
            host_matches(host, origin, path, document)
        }
        _ => false,
    })
}

/// A scheme in a source against a URL's: the same, or the secure variant of it.
fn scheme_matches(source: &str, url: &str) -> bool {
    source == url || (source == "http" && url == "https") || (source == "ws" && url == "wss")
}

fn host_matches(host: &HostSource, origin: &Origin, path: &str, document: Option<&Origin>) -> bool {
    let network = matches!(origin.scheme.as_str(), "http" | "https" | "ws" | "wss");
    let scheme_ok = match &host.scheme {
        Some(scheme) => scheme_matches(scheme, &origin.scheme),
        // A bare `*` stands for every network scheme (never `data:` or `blob:`, which have
        // no origin here); a bare host for the document's scheme.
        None if host.host == "*" => {
            network || document.is_some_and(|doc| doc.scheme == origin.scheme)
        }
        None => document.is_some_and(|doc| scheme_matches(&doc.scheme, &origin.scheme)),
    };
    let host_ok = if host.host == "*" {
        true
    } else if let Some(parent) = host.host.strip_prefix("*.") {
        origin
            .host
            .strip_suffix(parent.trim_end_matches('.'))
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
    } else {
        host.host.trim_end_matches('.') == origin.host
    };
    let port_ok = match host.port {
        // A bare `*` matches any port; otherwise no port means the URL's default one.
        None if host.host == "*" && host.scheme.is_none() => true,
        None => origin.port == default_port(&origin.scheme),
        Some(port) => port_matches(port, origin),
    };
    let path_ok = host.path.is_empty()
        || host.path == "/"
        || if host.path.ends_with('/') {
            path.starts_with(&host.path)
        } else {
            path == host.path
        };
    scheme_ok && host_ok && port_ok && path_ok
}

fn port_matches(port: Port, origin: &Origin) -> bool {
    match port {
        Port::Any => true,
        Port::Number(n) => origin.port == Some(n),
    }
}

/// The parent a subdomain is merged under: `cdn.example.com` → `example.com`. `None` for an
/// IPv4 address, a name of one or two labels, or a parent that looks like a public suffix
/// (`co.uk`, `com.au`): without the Public Suffix List, a second-level label that registries
/// use (`co`, `com`, `net`, ...) is taken as one, so the builder never proposes `*.co.uk`.
fn wildcard_parent(origin: &Origin) -> Option<&str> {
    if origin.is_ipv4() {
        return None;
    }
    let (_, parent) = origin.host.split_once('.')?;
    let mut labels = parent.split('.');
    let first = labels.next()?;
    let count = 1 + labels.count();
    if count < 2 {
        return None;
    }
    const SECOND_LEVEL: &[&str] = &[
        "ac", "co", "com", "edu", "gov", "gob", "go", "ltd", "mil", "ne", "net", "nom", "or",
        "org", "plc", "sch",
    ];
    if count == 2 && SECOND_LEVEL.contains(&first) {
        return None;
    }
    Some(parent)
}

/// Merges host sources of one directive: `threshold` or more distinct subdomains of one
/// parent, with the same scheme and port, become `scheme://*.parent[:port]`. Returns, for
/// each source to add, the origins it stands for.
pub(crate) fn merge_subdomains(
    origins: &BTreeSet<Origin>,
    threshold: Option<usize>,
) -> BTreeMap<HostSource, BTreeSet<Origin>> {
    let mut groups: BTreeMap<(String, Option<u16>, &str), BTreeSet<&Origin>> = BTreeMap::new();
    let mut merged = BTreeMap::new();
    for origin in origins {
        match (threshold, wildcard_parent(origin)) {
            (Some(_), Some(parent)) => {
                groups
                    .entry((origin.scheme.clone(), origin.port, parent))
                    .or_default()
                    .insert(origin);
            }
            _ => {
                merged.insert(origin.host_source(), BTreeSet::from([origin.clone()]));
            }
        }
    }
    let threshold = threshold.unwrap_or(usize::MAX);
    for ((_, _, parent), members) in groups {
        if members.len() >= threshold {
            let first = members.first().map(|o| o.host_source());
            if let Some(mut source) = first {
                source.host = format!("*.{parent}");
                merged.insert(source, members.into_iter().cloned().collect());
            }
        } else {
            for origin in members {
                merged.insert(origin.host_source(), BTreeSet::from([origin.clone()]));
            }
        }
    }
    merged
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

    #[test]
    fn blocked_table() {
        let url = |s: &str, h: &str, p| {
            Blocked::Url(
                Origin {
                    scheme: s.into(),
                    host: h.into(),
                    port: p,
                },
                "",
            )
        };
        let cases: Vec<(&str, Result<Blocked<'_>, Unusable>)> = vec![
            ("inline", Ok(Blocked::Code(Code::Inline))),
            ("eval", Ok(Blocked::Code(Code::Eval))),
            ("wasm-eval", Ok(Blocked::Code(Code::WasmEval))),
            (
                "trusted-types-sink",
                Ok(Blocked::Code(Code::TrustedTypesSink)),
            ),
            ("data", Ok(Blocked::Scheme("data".into()))),
            (
                "data:image/png;base64,AAAA",
                Ok(Blocked::Scheme("data".into())),
            ),
            ("blob", Ok(Blocked::Scheme("blob".into()))),
            (
                "blob:https://a.example/3f2a",
                Ok(Blocked::Scheme("blob".into())),
            ),
            (
                "https://cdn.example",
                Ok(url("https", "cdn.example", Some(443))),
            ),
            (
                "HTTPS://CDN.example:443",
                Ok(url("https", "cdn.example", Some(443))),
            ),
            (
                "http://127.0.0.1:8080",
                Ok(url("http", "127.0.0.1", Some(8080))),
            ),
            (
                "wss://live.example",
                Ok(url("wss", "live.example", Some(443))),
            ),
            (
                "chrome-extension://abcdef",
                Ok(Blocked::Scheme("chrome-extension".into())),
            ),
            ("file:///etc/passwd", Ok(Blocked::Scheme("file".into()))),
            ("https:", Err(Unusable::NotAUrl)),
            ("https://a.example/a b", Err(Unusable::NotExpressible)),
            ("https://a.example/\"x", Err(Unusable::NotExpressible)),
            ("https://a.example/\u{e9}", Err(Unusable::NotExpressible)),
            (
                "https://a.example?x",
                Ok(url("https", "a.example", Some(443))),
            ),
            // Hostile or inexpressible.
            ("https://[::1]:8080/x", Err(Unusable::NotExpressible)),
            ("https://user:pw@a.example/", Err(Unusable::NotExpressible)),
            ("https://a.example:99999/", Err(Unusable::NotExpressible)),
            ("https://a.example:80:80/", Err(Unusable::NotExpressible)),
            ("https://a b.example/", Err(Unusable::NotExpressible)),
            (
                "https://a.example;script-src/",
                Err(Unusable::NotExpressible),
            ),
            ("https://a.example,x/", Err(Unusable::NotExpressible)),
            ("https://'self'/", Err(Unusable::NotExpressible)),
            ("https://a.example\\u{0}/", Err(Unusable::NotExpressible)),
            ("https://*.example/", Err(Unusable::NotExpressible)),
            ("https:///x", Err(Unusable::NotExpressible)),
            ("1https://a.example", Err(Unusable::NotAUrl)),
            ("<script>", Err(Unusable::NotAUrl)),
            ("", Err(Unusable::NotAUrl)),
            ("'unsafe-inline'", Err(Unusable::NotAUrl)),
            ("self", Ok(Blocked::Scheme("self".into()))),
        ];
        for (text, expected) in cases {
            let got = Blocked::read(text);
            match (&got, &expected) {
                (Ok(Blocked::Url(a, _)), Ok(Blocked::Url(b, _))) => assert_eq!(a, b, "{text:?}"),
                _ => assert_eq!(got, expected, "{text:?}"),
            }
        }
    }

    #[test]
    fn host_source_of_origin() {
        let cases = [
            ("https://cdn.example/x.js", "https://cdn.example"),
            ("https://cdn.example:443/x.js", "https://cdn.example"),
            ("https://cdn.example:8443/x.js", "https://cdn.example:8443"),
            ("http://cdn.example:80", "http://cdn.example"),
            ("ws://127.0.0.1:9000/socket", "ws://127.0.0.1:9000"),
            ("wss://live.example:443/", "wss://live.example"),
            ("http://localhost:3000/", "http://localhost:3000"),
        ];
        for (url, expected) in cases {
            let (origin, _) = Origin::of_url(url).expect("a URL");
            let source = origin.host_source().to_string();
            assert_eq!(source, expected, "{url}");
            // What is made from a report parses back to itself.
            assert_eq!(Source::parse(&source).map(|s| s.to_string()), Ok(source));
        }
    }

    #[test]
    fn allows_table() {
        let doc = Origin::of_url("https://site.example/page").unwrap().0;
        let cases: &[(&[&str], &str, bool)] = &[
            (&["'self'"], "https://site.example/app.js", true),
            (&["'self'"], "https://site.example:8443/app.js", false),
            (&["'self'"], "http://site.example/app.js", false),
            (&["'self'"], "wss://site.example/socket", false),
            (&["'none'"], "https://site.example/app.js", false),
            (&["https://cdn.example"], "https://cdn.example/x.js", true),
            (&["http://cdn.example"], "https://cdn.example/x.js", true),
            (&["https://cdn.example"], "http://cdn.example/x.js", false),
            (
                &["https://cdn.example"],
                "https://cdn.example:8443/x.js",
                false,
            ),
            (
                &["https://cdn.example:*"],
                "https://cdn.example:8443/x.js",
                true,
            ),
            (&["cdn.example"], "https://cdn.example/x.js", true),
            (&["https://*.example"], "https://cdn.example/x.js", true),
            (&["https://*.example"], "https://a.b.example/x.js", true),
            (&["https://*.example"], "https://example/x.js", false),
            (
                &["https://*.cdn.example"],
                "https://evilcdn.example/x.js",
                false,
            ),
            (
                &["https://cdn.example/js/"],
                "https://cdn.example/js/x.js",
                true,
            ),
            (
                &["https://cdn.example/js/"],
                "https://cdn.example/css/x.css",
                false,
            ),
            (
                &["https://cdn.example/js/x.js"],
                "https://cdn.example",
                false,
            ),
            (&["*"], "https://anything.example/x", true),
            (&["*"], "data", false),
            (&["https:"], "https://anything.example/x", true),
            (&["https:"], "data", false),
            (&["data:"], "data", true),
            (&["data:"], "blob", false),
            (&["ws:"], "wss://live.example/", true),
            (&["'unsafe-inline'"], "inline", true),
            (&["'unsafe-inline'", "'nonce-abc'"], "inline", false),
            (&["'unsafe-inline'", "'sha256-abc'"], "inline", false),
            (&["'unsafe-inline'", "'strict-dynamic'"], "inline", false),
            (&["'unsafe-eval'"], "eval", true),
            (&["'unsafe-eval'"], "wasm-eval", true),
            (&["'wasm-unsafe-eval'"], "wasm-eval", true),
            (&["'wasm-unsafe-eval'"], "eval", false),
            (&["'self'"], "inline", false),
            (&["*"], "inline", false),
        ];
        for &(list, blocked, expected) in cases {
            let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
            let read = Blocked::read(blocked).expect("readable");
            assert_eq!(
                list_allows(&list, &read, Some(&doc)),
                expected,
                "{list:?} {blocked}"
            );
        }
    }

    #[test]
    fn merge_table() {
        let origins = |urls: &[&str]| -> BTreeSet<Origin> {
            urls.iter().map(|u| Origin::of_url(u).unwrap().0).collect()
        };
        let cases: &[(&[&str], Option<usize>, &[&str])] = &[
            // Below the threshold: each host on its own.
            (
                &["https://a.example.com", "https://b.example.com"],
                Some(3),
                &["https://a.example.com", "https://b.example.com"],
            ),
            // At the threshold: one wildcard.
            (
                &[
                    "https://a.example.com",
                    "https://b.example.com",
                    "https://c.example.com",
                ],
                Some(3),
                &["https://*.example.com"],
            ),
            // Wildcards switched off.
            (
                &[
                    "https://a.example.com",
                    "https://b.example.com",
                    "https://c.example.com",
                ],
                None,
                &[
                    "https://a.example.com",
                    "https://b.example.com",
                    "https://c.example.com",
                ],
            ),
            // The apex is not a subdomain of itself, and *.example.com would not cover it.
            (
                &[
                    "https://example.com",
                    "https://a.example.com",
                    "https://b.example.com",
                ],
                Some(2),
                &["https://*.example.com", "https://example.com"],
            ),
            // Another scheme or port is another group.
            (
                &[
                    "https://a.example.com",
                    "http://b.example.com",
                    "https://c.example.com:8443",
                ],
                Some(2),
                &[
                    "http://b.example.com",
                    "https://a.example.com",
                    "https://c.example.com:8443",
                ],
            ),
            (
                &["https://a.example.com:8443", "https://b.example.com:8443"],
                Some(2),
                &["https://*.example.com:8443"],
            ),
            // Public suffixes and addresses are never wildcarded.
            (
                &["https://a.co.uk", "https://b.co.uk", "https://c.co.uk"],
                Some(2),
                &["https://a.co.uk", "https://b.co.uk", "https://c.co.uk"],
            ),
            (
                &["https://a.com", "https://b.com"],
                Some(2),
                &["https://a.com", "https://b.com"],
            ),
            (
                &["https://shop.example.co.uk", "https://cdn.example.co.uk"],
                Some(2),
                &["https://*.example.co.uk"],
            ),
            (
                &["http://127.0.0.1:1", "http://127.0.0.2:1"],
                Some(2),
                &["http://127.0.0.1:1", "http://127.0.0.2:1"],
            ),
            // Only the immediate parent groups.
            (
                &[
                    "https://a.img.example.com",
                    "https://b.img.example.com",
                    "https://c.example.com",
                ],
                Some(2),
                &["https://*.img.example.com", "https://c.example.com"],
            ),
        ];
        for &(urls, threshold, expected) in cases {
            let merged = merge_subdomains(&origins(urls), threshold);
            let got: Vec<String> = merged.keys().map(ToString::to_string).collect();
            assert_eq!(got, expected, "{urls:?} with {threshold:?}");
            let covered: usize = merged.values().map(BTreeSet::len).sum();
            assert_eq!(covered, urls.len(), "every origin is covered once");
        }
    }
}
