//! What of a report is kept: the queries, fragments and credentials of its URLs, and the
//! client's address. Privacy is on by default.
//!
//! Browsers report the whole URL of the page, of its referrer, of what was blocked and of
//! the script that broke the policy. Query strings and fragments carry session tokens,
//! password-reset links, search terms and e-mail addresses. The layer applies its
//! [`Privacy`] to each report right after parsing, before the filter, the sinks, the logs,
//! the mail and the stores see it, so what is removed reaches none of them.
//!
//! | by default | kept | removed |
//! |---|---|---|
//! | a URL: `document_uri`, `url`, `referrer`, `blocked_uri`, `source_file` | scheme, host, port, path | query, fragment, user name and password |
//! | a `data:` URL in those fields | its scheme, `data` (what CSP Level 3 browsers send) | the payload |
//! | a keyword (`inline`, `eval`, `wasm-eval`), a relative value | as sent | a query or fragment |
//! | [`client_ip`](crate::Report::client_ip) | its /24 (IPv4) or /48 (IPv6) network | the rest |
//! | [`raw`](crate::Report::raw) | every other key and value, as sent | the same parts of the same URL fields |
//!
//! ```
//! use tower_csp_reports::privacy::{ClientIpPrivacy, Privacy};
//! use tower_csp_reports::Report;
//!
//! let mut report = Report::csp(
//!     "https://shop.example/reset?token=s3cr3t#step-2",
//!     "img-src",
//!     "https://user:pass@cdn.example:8443/a.png?uid=42",
//! );
//! report.client_ip = Some("203.0.113.77".parse()?);
//! let fingerprint = report.fingerprint;
//!
//! Privacy::default().apply(&mut report);
//! assert_eq!(report.document_uri.as_deref(), Some("https://shop.example/reset"));
//! assert_eq!(report.blocked_uri.as_deref(), Some("https://cdn.example:8443/a.png"));
//! assert_eq!(report.client_ip, Some("203.0.113.0".parse()?));
//! assert!(!report.raw.contains("s3cr3t") && !report.raw.contains("uid=42"));
//! assert!(!report.raw.contains("pass"));
//! // The fingerprint never covered the query: reports group as before.
//! assert_eq!(report.fingerprint, fingerprint);
//!
//! // Keeping everything as sent, or recording no address at all.
//! let off = Privacy::off();
//! let no_address = Privacy::default().client_ip(ClientIpPrivacy::Off);
//! # let _ = (off, no_address);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is not removed
//!
//! - The other fields are kept as sent: the script sample (the first characters of the
//!   blocked code, which can hold anything the page put there), the original policy (whose
//!   `report-uri` may carry the site's own token), the user agent.
//! - In the raw text, the string values of the URL keys are rewritten wherever they appear
//!   (at any depth, in a repeated key too), the keys matched as the parser matches them: in
//!   any case, with or without `-` and `_`, with the aliases (`documentURL`, `referer`). A URL
//!   sent as something other than a string is kept as sent (browsers never do that; the
//!   report is then invalid, and its field empty). The rest of the text is kept byte for
//!   byte; a rewritten value is written as a JSON string.
//! - A body that is not JSON is kept as its raw text: the `"key": "value"` pairs in it are
//!   found and rewritten as far as they can be read. A URL written any other way (a
//!   form-encoded body, a URL in free text) is kept.
//! - The [`Fingerprint`](crate::Fingerprint) and the [`ReportId`](crate::ReportId) are made
//!   when the report is parsed, before this runs: the fingerprint covers the directive, the
//!   blocked origin and the document without its query, so reports group into the same
//!   violations whatever the settings, and as they did before.
//! - The rate limit ([`RateLimit`](crate::RateLimit)) counts by the full address, which it
//!   holds in memory only, for its period.

use std::borrow::Cow;
use std::net::IpAddr;

use bytestring::ByteString;

use crate::parse::redact_raw;
use crate::report::{Report, find_scheme_separator};

/// What the layer removes from each report before anything sees it (see the
/// [module docs](self)): by default, the query, fragment and credentials of every URL field,
/// and the host part of the client's address.
///
/// Set it with [`CspReportLayerBuilder::privacy`](crate::CspReportLayerBuilder::privacy).
///
/// ```
/// use tower_csp_reports::privacy::{ClientIpPrivacy, Privacy};
///
/// let privacy = Privacy::default().keep_query(true).client_ip(ClientIpPrivacy::Full);
/// assert_eq!(privacy, Privacy::off());
/// ```
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privacy {
    keep_query: bool,
    client_ip: ClientIpPrivacy,
}

impl Default for Privacy {
    /// Queries, fragments and credentials removed; addresses truncated.
    fn default() -> Self {
        Self {
            keep_query: false,
            client_ip: ClientIpPrivacy::Truncated,
        }
    }
}

impl Privacy {
    /// The default: queries, fragments and credentials removed, addresses truncated.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports kept exactly as sent, with the client's full address (what this crate did
    /// before 0.2).
    pub fn off() -> Self {
        Self {
            keep_query: true,
            client_ip: ClientIpPrivacy::Full,
        }
    }

    /// `true` keeps the URL fields (and the raw text) as sent, queries, fragments and
    /// credentials included (default `false`).
    pub fn keep_query(mut self, keep: bool) -> Self {
        self.keep_query = keep;
        self
    }

    /// How much of the client's address is kept (default [`ClientIpPrivacy::Truncated`]).
    pub fn client_ip(mut self, client_ip: ClientIpPrivacy) -> Self {
        self.client_ip = client_ip;
        self
    }

    /// Applies these settings to a report: what the layer does to each one it parses.
    /// Applying them twice changes nothing more.
    pub fn apply(&self, report: &mut Report) {
        report.client_ip = report.client_ip.and_then(|ip| self.client_ip.apply(ip));
        self.apply_to_urls(report);
    }

    /// The client's address as kept.
    pub(crate) fn ip(&self, ip: Option<IpAddr>) -> Option<IpAddr> {
        ip.and_then(|ip| self.client_ip.apply(ip))
    }

    /// The URL fields and the raw text. Nothing is copied unless something is removed: a
    /// shortened field is a slice of the one it replaces, and the raw text is rewritten
    /// only when a field changed or it holds a `?` or a `#`.
    pub(crate) fn apply_to_urls(&self, report: &mut Report) {
        if self.keep_query {
            return;
        }
        let mut changed = false;
        for field in [
            &mut report.url,
            &mut report.document_uri,
            &mut report.referrer,
            &mut report.blocked_uri,
            &mut report.source_file,
        ] {
            changed |= redact_field(field);
        }
        // A field can miss what the raw text holds: it was capped before the query, the
        // report is invalid (its fields were read only up to the error), or it is not a
        // CSP report (its body is kept raw).
        let complete = report.is_valid() && report.is_csp_violation();
        if (changed || !complete || has_query_marks(&report.raw))
            && let Some(raw) = redact_raw(&report.raw, redact_url)
        {
            report.raw = raw.into();
        }
    }
}

/// How much of the client's address a report keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum ClientIpPrivacy {
    /// No address is kept.
    Off,
    /// The network: the first 24 bits of an IPv4 address (`203.0.113.0`), the first 48 of
    /// an IPv6 one (`2001:db8:1::`), the rest zero. An IPv4 address mapped into IPv6
    /// (`::ffff:203.0.113.77`) is kept as IPv4.
    #[default]
    Truncated,
    /// The whole address.
    Full,
}

impl ClientIpPrivacy {
    /// The address as kept, `None` when none is.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use tower_csp_reports::privacy::ClientIpPrivacy;
    ///
    /// let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    /// let truncated = ClientIpPrivacy::Truncated;
    /// assert_eq!(truncated.apply(ip("198.51.100.23")), Some(ip("198.51.100.0")));
    /// assert_eq!(truncated.apply(ip("2001:db8:aa:bb::1")), Some(ip("2001:db8:aa::")));
    /// assert_eq!(ClientIpPrivacy::Off.apply(ip("198.51.100.23")), None);
    /// ```
    pub fn apply(self, ip: IpAddr) -> Option<IpAddr> {
        match self {
            Self::Off => None,
            Self::Full => Some(ip),
            Self::Truncated => Some(match ip.to_canonical() {
                IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    IpAddr::from([a, b, c, 0])
                }
                IpAddr::V6(v6) => {
                    let [a, b, c, ..] = v6.segments();
                    IpAddr::from([a, b, c, 0, 0, 0, 0, 0])
                }
            }),
        }
    }
}

/// What is kept of a URL field: the URL without its query, fragment, user name and password;
/// a `data:` URL as its scheme. Anything else (a keyword, a relative value) loses what
/// follows a `?` or a `#`. A borrowed answer is a prefix of `url`.
///
/// The authority is what follows `://` up to the next `/`; user name and password are what
/// it holds up to its last `@`. An `@` further on (`https://cdn.example/npm/vue@3/x.js`) is
/// part of the path and kept.
///
/// ```
/// use tower_csp_reports::privacy::redact_url;
///
/// assert_eq!(redact_url("https://a.example/p?q=1#top"), "https://a.example/p");
/// assert_eq!(redact_url("https://me:pw@[2001:db8::1]:8443/"), "https://[2001:db8::1]:8443/");
/// assert_eq!(redact_url("data:image/png;base64,iVBOR"), "data");
/// assert_eq!(redact_url("inline"), "inline");
/// ```
pub fn redact_url(url: &str) -> Cow<'_, str> {
    if url.len() > 5 && url.as_bytes()[..5].eq_ignore_ascii_case(b"data:") {
        return Cow::Borrowed(&url[..4]);
    }
    let kept = &url[..url.find(['?', '#']).unwrap_or(url.len())];
    let Some(separator) = find_scheme_separator(kept) else {
        return Cow::Borrowed(kept);
    };
    let authority_start = separator + 3;
    let rest = &kept[authority_start..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        None => Cow::Borrowed(kept),
        Some(at) => Cow::Owned(format!("{}{}", &kept[..authority_start], &rest[at + 1..])),
    }
}

/// Redacts one field in place; whether it changed. An emptied field is unset, as the parser
/// leaves empty strings.
fn redact_field(field: &mut Option<ByteString>) -> bool {
    let Some(value) = field.as_ref() else {
        return false;
    };
    let kept = match redact_url(value) {
        Cow::Borrowed(kept) if kept.len() == value.len() => return false,
        Cow::Borrowed("") => None,
        Cow::Borrowed(kept) => Some(value.slice_ref(kept)),
        Cow::Owned(kept) => Some(kept.into()),
    };
    *field = kept;
    true
}

/// Whether `text` holds a `?` or a `#`: one pass over the bytes, which the compiler
/// vectorizes.
fn has_query_marks(text: &str) -> bool {
    text.bytes()
        .fold(false, |seen, b| seen | (b == b'?') | (b == b'#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_table() {
        let cases: &[(&str, &str)] = &[
            // Queries and fragments, a `#` inside a query, a `?` inside a fragment.
            ("https://a.example/p?q=1", "https://a.example/p"),
            ("https://a.example/p#top", "https://a.example/p"),
            ("https://a.example/p?q=#x&y=1", "https://a.example/p"),
            ("https://a.example/p#frag?q=1", "https://a.example/p"),
            ("https://a.example/?", "https://a.example/"),
            ("https://a.example?q=1", "https://a.example"),
            ("https://a.example/p", "https://a.example/p"),
            // Ports and IPv6 hosts.
            ("https://a.example:8443/p?q", "https://a.example:8443/p"),
            (
                "http://[2001:db8::1]:8080/p?x=1",
                "http://[2001:db8::1]:8080/p",
            ),
            ("http://[::1]/", "http://[::1]/"),
            // Credentials: removed, up to the authority's last `@`.
            ("https://user:pw@a.example/p", "https://a.example/p"),
            ("https://user@a.example", "https://a.example"),
            ("https://u@v:pw@a.example:1/p?x", "https://a.example:1/p"),
            ("ftp://me:pw@[::1]:21/f", "ftp://[::1]:21/f"),
            // An `@` in the path, the query or the fragment is no credential.
            (
                "https://cdn.example/npm/vue@3/x.js",
                "https://cdn.example/npm/vue@3/x.js",
            ),
            (
                "https://a.example/p?mail=me@b.example",
                "https://a.example/p",
            ),
            ("https://a.example#me@b", "https://a.example"),
            // `data:` keeps its scheme only, whatever follows (a `?` and `#` inside too).
            ("data:image/png;base64,iVBORw0KGgo=", "data"),
            ("DATA:text/html,<p>#?</p>", "DATA"),
            ("data", "data"),
            ("data:", "data:"),
            // Other schemes browsers send.
            (
                "blob:https://a.example/0f1e?x#y",
                "blob:https://a.example/0f1e",
            ),
            (
                "chrome-extension://abc/x.js?v=1",
                "chrome-extension://abc/x.js",
            ),
            ("about:blank", "about:blank"),
            ("about:srcdoc#x", "about:srcdoc"),
            ("javascript:void(0)", "javascript:void(0)"),
            // Keywords and bare schemes stay as they are.
            ("inline", "inline"),
            ("eval", "eval"),
            ("wasm-eval", "wasm-eval"),
            ("trusted-types-sink", "trusted-types-sink"),
            ("self", "self"),
            ("blob", "blob"),
            ("https", "https"),
            // Relative values.
            ("/path/page?id=7", "/path/page"),
            ("page.html#x", "page.html"),
            ("?only=query", ""),
            ("#only-fragment", ""),
            ("", ""),
            // Text that is not a URL.
            ("é?ü", "é"),
            ("://@", "://"),
            ("https://", "https://"),
            ("https://@", "https://"),
        ];
        for &(url, expected) in cases {
            let kept = redact_url(url);
            assert_eq!(kept, expected, "redact_url({url:?})");
            if let Cow::Borrowed(kept) = kept {
                assert!(
                    url.starts_with(kept),
                    "{url:?}: a borrowed answer is a prefix"
                );
            }
            // Redacting again changes nothing.
            assert_eq!(redact_url(&kept), expected, "twice: {url:?}");
        }
    }

    #[test]
    fn addresses_are_truncated_to_their_network() {
        let cases: &[(&str, ClientIpPrivacy, Option<&str>)] = &[
            (
                "203.0.113.77",
                ClientIpPrivacy::Truncated,
                Some("203.0.113.0"),
            ),
            (
                "203.0.113.0",
                ClientIpPrivacy::Truncated,
                Some("203.0.113.0"),
            ),
            (
                "255.255.255.255",
                ClientIpPrivacy::Truncated,
                Some("255.255.255.0"),
            ),
            ("127.0.0.1", ClientIpPrivacy::Truncated, Some("127.0.0.0")),
            (
                "2001:db8:1234:5678:9abc::1",
                ClientIpPrivacy::Truncated,
                Some("2001:db8:1234::"),
            ),
            ("::1", ClientIpPrivacy::Truncated, Some("::")),
            (
                "::ffff:198.51.100.9",
                ClientIpPrivacy::Truncated,
                Some("198.51.100.0"),
            ),
            ("203.0.113.77", ClientIpPrivacy::Full, Some("203.0.113.77")),
            ("2001:db8::1", ClientIpPrivacy::Full, Some("2001:db8::1")),
            ("203.0.113.77", ClientIpPrivacy::Off, None),
            ("2001:db8::1", ClientIpPrivacy::Off, None),
        ];
        for &(ip, privacy, expected) in cases {
            let kept = privacy.apply(ip.parse().unwrap());
            assert_eq!(
                kept,
                expected.map(|e| e.parse().unwrap()),
                "{privacy:?} {ip}"
            );
        }
    }

    #[test]
    fn a_report_keeps_nothing_that_was_removed() {
        let mut report = Report::csp(
            "https://s.example/account?session=TOKEN1#TOKEN2",
            "script-src-elem",
            "https://cdn.example/x.js?key=TOKEN3",
        );
        report.referrer = Some("https://mail.example/inbox?u=TOKEN4".into());
        report.source_file = Some("https://s.example/app.js?v=TOKEN5".into());
        report.url = Some("https://s.example/account?session=TOKEN1".into());
        report.client_ip = Some("2001:db8:aa:bb:cc::9".parse().unwrap());
        report.raw = format!(
            r#"{{"type":"csp-violation","url":"https://s.example/account?session=TOKEN1",
               "body":{{"documentURL":"https://s.example/account?session=TOKEN1#TOKEN2",
               "referrer":"https://mail.example/inbox?u=TOKEN4",
               "blockedURL":"https://cdn.example/x.js?key=TOKEN3",
               "sourceFile":"https://s.example/app.js?v=TOKEN5",
               "sample":"kept ? as sent","lineNumber":3}}}}"#
        )
        .into();
        let (id, fingerprint) = (report.id, report.fingerprint);
        Privacy::default().apply(&mut report);
        assert!(!report.raw.contains("TOKEN"), "{}", report.raw);
        let fields = serde_json::to_string(&report).unwrap();
        assert!(!fields.contains("TOKEN"), "{fields}");
        assert!(report.raw.contains(r#""sample":"kept ? as sent""#));
        assert_eq!(report.client_ip, Some("2001:db8:aa::".parse().unwrap()));
        assert_eq!((report.id, report.fingerprint), (id, fingerprint));
        let again = report.clone();
        Privacy::default().apply(&mut report);
        assert_eq!(report, again, "applying twice changes nothing more");

        // Off keeps everything; so does a report with nothing to remove.
        let sent = Report::csp("https://s.example/?q=1", "img-src", "data:image/png,xx");
        let mut kept = sent.clone();
        Privacy::off().apply(&mut kept);
        assert_eq!(kept, sent);
        let mut plain = Report::csp("https://s.example/", "img-src", "https://cdn.example/a");
        let raw = plain.raw.clone();
        Privacy::default().apply(&mut plain);
        assert_eq!(plain.raw, raw);
        assert_eq!(plain.blocked_uri.as_deref(), Some("https://cdn.example/a"));
    }
}
