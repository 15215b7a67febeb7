//! What a report says was blocked: [`Blocked`] (a URL's [`Origin`], a scheme, or [`Code`]),
//! read from a reported `blocked-uri` and checked against the source grammar.

use std::fmt;

use super::source::{HostSource, Port, default_port, is_host_part, is_scheme, parse_port};

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

    pub(super) fn is_ipv4(&self) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::source::Source;

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
}
