//! Deciding which reports are worth keeping.
//!
//! A [`Filter`] sees each report and the facts of the request it came in, and says whether to
//! keep it. Closures are filters; filters combine with [`and`](FilterExt::and),
//! [`or`](FilterExt::or) and [`not`](FilterExt::not).
//!
//! Most reports a public site receives are noise: browser extensions inject scripts and
//! styles, in-app browsers inject bridges, adware injects hosts. [`DefaultFilter`], which the
//! layer uses unless told otherwise, drops those and keeps everything else, including the
//! legitimate `inline`, `eval`, `data:` and `blob:` reports. It is made of three parts you can
//! recombine: [`browser_extensions`], [`noise_schemes`] and [`noise_hosts`]. Two more are
//! about your own sites: [`AllowHosts`] keeps only the reports of your pages, and
//! [`DropPrefixes`] drops reports about URLs you already know of.
//!
//! An extension's code is never the site's, so a report whose source file or sample comes
//! from an extension is dropped whatever it blocked. The browser's own code is different: it
//! also loads what the site asked for (Firefox names `resource` as the source of the site's
//! own blocked favicon), so a report about the site's own resource — an `http(s)` URL,
//! `inline`, `eval`, `data`, `blob` — is never dropped for a browser-internal or webview
//! source file alone.
//!
//! ```
//! use tower_csp_reports::filter::{browser_extensions, filter_fn, DefaultFilter, Filter, FilterExt, RequestFacts};
//! use tower_csp_reports::Report;
//!
//! let facts = RequestFacts::default();
//! let extension = Report::csp("https://example.com/", "script-src-elem", "chrome-extension");
//! let inline = Report::csp("https://example.com/", "script-src-elem", "inline");
//! assert!(!DefaultFilter::new().keep(&extension, &facts));
//! assert!(DefaultFilter::new().keep(&inline, &facts));
//!
//! // Keep only enforced violations on our own pages, and none from extensions.
//! let ours = filter_fn(|report: &Report, _: &RequestFacts| {
//!     report.document().is_some_and(|d| d.starts_with("https://example.com/"))
//! });
//! let filter = browser_extensions().and(ours);
//! assert!(filter.keep(&inline, &facts));
//! assert!(!filter.keep(&Report::csp("https://evil.test/", "img-src", "data"), &facts));
//! ```

use std::borrow::Cow;
use std::net::IpAddr;

use bytestring::ByteString;

use crate::report::{ContentType, Report, find_scheme_separator};

mod sites;

pub use sites::{AllowHosts, DropPrefixes};

/// What is known of the request that carried a report.
///
/// It borrows from the request: the header values are escaped and capped like a report's
/// fields, and copied only when that changed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestFacts<'a> {
    /// The `User-Agent` header.
    pub user_agent: Option<Cow<'a, str>>,
    /// The client's address, when the server made it known, as the layer's
    /// [`Privacy`](crate::Privacy) keeps it (truncated by default).
    pub client_ip: Option<IpAddr>,
    /// The `Origin` header.
    pub origin: Option<Cow<'a, str>>,
    /// The request path (one of the layer's report paths).
    pub path: &'a str,
    /// The body's media type.
    pub content_type: Option<ContentType>,
}

/// Decides whether a report is kept.
pub trait Filter: Send + Sync + 'static {
    /// `true` to keep the report, `false` to drop it (it is then counted as filtered).
    fn keep(&self, report: &Report, request: &RequestFacts<'_>) -> bool;
}

impl<F> Filter for F
where
    F: Fn(&Report, &RequestFacts<'_>) -> bool + Send + Sync + 'static,
{
    fn keep(&self, report: &Report, request: &RequestFacts<'_>) -> bool {
        self(report, request)
    }
}

/// Helps the compiler see a closure as a [`Filter`]; the same closure, unchanged.
pub fn filter_fn<F>(f: F) -> F
where
    F: Fn(&Report, &RequestFacts<'_>) -> bool + Send + Sync + 'static,
{
    f
}

/// Combinators for every [`Filter`].
pub trait FilterExt: Filter + Sized {
    /// Keeps a report only when both filters keep it.
    fn and<B: Filter>(self, other: B) -> And<Self, B> {
        And(self, other)
    }

    /// Keeps a report when either filter keeps it.
    fn or<B: Filter>(self, other: B) -> Or<Self, B> {
        Or(self, other)
    }

    /// Keeps what this filter drops, and the other way round.
    fn not(self) -> Not<Self> {
        Not(self)
    }
}

impl<T: Filter> FilterExt for T {}

/// Both filters must keep the report; see [`FilterExt::and`].
#[derive(Debug, Clone, Copy, Default)]
pub struct And<A, B>(A, B);

impl<A: Filter, B: Filter> Filter for And<A, B> {
    fn keep(&self, report: &Report, request: &RequestFacts<'_>) -> bool {
        self.0.keep(report, request) && self.1.keep(report, request)
    }
}

/// Either filter may keep the report; see [`FilterExt::or`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Or<A, B>(A, B);

impl<A: Filter, B: Filter> Filter for Or<A, B> {
    fn keep(&self, report: &Report, request: &RequestFacts<'_>) -> bool {
        self.0.keep(report, request) || self.1.keep(report, request)
    }
}

/// The opposite of a filter; see [`FilterExt::not`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Not<A>(A);

impl<A: Filter> Filter for Not<A> {
    fn keep(&self, report: &Report, request: &RequestFacts<'_>) -> bool {
        !self.0.keep(report, request)
    }
}

/// Keeps every report.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepAll;

impl Filter for KeepAll {
    fn keep(&self, _: &Report, _: &RequestFacts<'_>) -> bool {
        true
    }
}

/// Schemes of browser extensions.
///
/// Browsers report these either as a URL (`moz-extension://1234/content.js`) or as the bare
/// scheme (`"blocked-uri": "chrome-extension"`); both are matched. Code that runs from one
/// of them is an extension's, whatever it loads or injects, so a report whose source file or
/// sample comes from one is dropped too.
pub const EXTENSION_SCHEMES: &[&str] = &[
    "chrome-extension",
    "moz-extension",
    "safari-extension",
    "safari-web-extension",
    "webkit-masked-url",
    "ms-browser-extension",
    "edge-extension",
    "extension",
];

/// Schemes of the browsers' own internal pages and code.
///
/// Unlike an extension's, the browser's own code also loads what the site asked for: Firefox
/// reports the site's blocked favicon with `"source-file": "resource"`. So a report is
/// dropped for one of these only when its blocked URI is one (or is empty), never for its
/// source file alone.
pub const INTERNAL_SCHEMES: &[&str] = &[
    "chrome",
    "resource",
    "moz-nullprincipal",
    "chromeinvoke",
    "chromeinvokeimmediate",
    "chromenull",
    "edge",
    "opera",
];

/// Schemes of in-app browser and webview bridges, `about:` frames and other non-web
/// sources that collectors commonly ignore.
pub const NOISE_SCHEMES: &[&str] = &[
    "about",
    "android-webview-video-poster",
    "webviewprogressproxy",
    "wvjbscheme",
    "gsa",
    "mbinit",
    "ms-appx",
    "ms-appx-web",
    "mx",
    "mxaddon-pkg",
    "jar",
    "symres",
    "tmtbff",
    "ucbrowser",
    "ucjsbridge",
    "yandexsearchbrowser",
    "x-apple-data-detectors",
];

/// Hosts injected into pages by adware, malware, "privacy" proxies and toolbars, whose
/// blocked loads say nothing about the site. A host matches itself and its subdomains.
pub const NOISE_HOSTS: &[&str] = &[
    "metrext.com",
    "tlscdn.com",
    "superfish.com",
    "zilionfast.in",
    "searchfun.in",
    "datafastguru.info",
    "resultshub-a.akamaihd.net",
    "middlerush-a.akamaihd.net",
    "cdncache-a.akamaihd.net",
    "savingsslider-a.akamaihd.net",
    "pulseadnetwork.com",
    "websmartcenter.com",
    "linkluster.com",
    "rafomedia.com",
    "injections.adguard.com",
    "local.adguard.org",
    "icontent.us",
    "amiok.org",
    "connectionstrenth.com",
    "siteheart.net",
    "netanalitics.space",
    "printapplink.com",
    "godlinkapp.com",
    "devappstor.com",
    "hoholikik.club",
    "smartlink.cool",
    "promfflinkdev.com",
    "image2play.com",
];

/// A set of words (schemes, hosts) matched without regard to ASCII case, indexed by length:
/// a candidate is compared only with the words of its own length, which are seldom more than
/// one or two, however many words there are.
#[derive(Debug, Clone)]
struct Words {
    /// Lowercase, sorted by length, then by text.
    words: Vec<String>,
    /// `words[by_length[n]..by_length[n + 1]]` are the words `n` bytes long.
    by_length: Vec<usize>,
}

impl Words {
    fn new<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut words: Vec<String> = words
            .into_iter()
            .map(|s| s.into().to_ascii_lowercase())
            .collect();
        words.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        words.dedup();
        let longest = words.last().map_or(0, String::len);
        let by_length = (0..=longest + 1)
            .map(|n| words.partition_point(|w| w.len() < n))
            .collect();
        Self { words, by_length }
    }

    fn contains(&self, candidate: &str) -> bool {
        let n = candidate.len();
        match (self.by_length.get(n), self.by_length.get(n + 1)) {
            (Some(&start), Some(&end)) => self.words[start..end]
                .iter()
                .any(|w| w.as_bytes().eq_ignore_ascii_case(candidate.as_bytes())),
            _ => false,
        }
    }

    /// The length of the shortest word (0 when there are none).
    fn shortest(&self) -> usize {
        self.words.first().map_or(0, String::len)
    }
}

/// Drops reports about some schemes: those whose blocked URI is on one of them, and those
/// whose source file or sample is on one of them and whose blocked URI is one too or empty
/// (the browser's own code loading nothing of the site's). With
/// [`by_source`](Self::by_source), a source file or sample on one of them is enough.
#[derive(Debug, Clone)]
pub struct DropSchemes {
    schemes: Words,
    by_source: bool,
}

impl DropSchemes {
    /// Drops reports about these schemes (matched without regard to case).
    pub fn new<I, S>(schemes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            schemes: Words::new(schemes),
            by_source: false,
        }
    }

    /// Drops a report whose source file or sample comes from one of the schemes whatever its
    /// blocked URI: right for extensions, whose code is never the site's.
    #[must_use]
    pub fn by_source(mut self, by_source: bool) -> Self {
        self.by_source = by_source;
        self
    }

    fn matches_scheme(&self, value: &str) -> bool {
        let end = value.bytes().position(|b| b == b':').unwrap_or(value.len());
        self.schemes.contains(value[..end].trim())
    }

    /// Whether a sample mentions an URL of one of the schemes anywhere.
    fn mentioned_in(&self, sample: &str) -> bool {
        if self.matches_scheme(sample) {
            return true;
        }
        let bytes = sample.as_bytes();
        (0..bytes.len().saturating_sub(2))
            .filter(|&at| &bytes[at..at + 3] == b"://")
            .any(|at| {
                let start = bytes[..at]
                    .iter()
                    .rposition(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')))
                    .map_or(0, |i| i + 1);
                self.matches_scheme(&sample[start..at])
            })
    }
}

impl Filter for DropSchemes {
    fn keep(&self, report: &Report, _: &RequestFacts<'_>) -> bool {
        let blocked = report.blocked_uri.as_deref().unwrap_or_default();
        if self.matches_scheme(blocked) {
            return false;
        }
        // The site's own resource (a URL, `inline`, `eval`, `data`, `blob`) is kept unless
        // the code that asked for it can only be an extension's.
        if !self.by_source && !blocked.trim().is_empty() {
            return true;
        }
        let hit = |v: &Option<ByteString>| v.as_deref().is_some_and(|v| self.matches_scheme(v));
        !(hit(&report.source_file)
            || report
                .script_sample
                .as_deref()
                .is_some_and(|s| self.mentioned_in(s)))
    }
}

/// Drops reports whose blocked URI or source file is on one of some hosts or their
/// subdomains.
#[derive(Debug, Clone)]
pub struct DropHosts {
    hosts: Words,
}

impl DropHosts {
    /// Drops reports from these hosts and their subdomains.
    pub fn new<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            hosts: Words::new(hosts),
        }
    }

    /// One lookup per label of the host (`a.b.example`, `b.example`, `example`) until what
    /// is left is shorter than the shortest host.
    fn matches(&self, url: &str) -> bool {
        let Some(mut rest) = host_of(url) else {
            return false;
        };
        let shortest = self.hosts.shortest();
        while rest.len() >= shortest {
            if self.hosts.contains(rest) {
                return true;
            }
            match rest.bytes().position(|b| b == b'.') {
                Some(dot) => rest = &rest[dot + 1..],
                None => return false,
            }
        }
        false
    }
}

/// The host of an absolute URL (`scheme://user@host:port/...`), without user or port: the
/// authority ends at the first `/`, `?` or `#`, the host starts after its last `@` and ends
/// at the first `:` after that. One pass over the authority.
fn host_of(url: &str) -> Option<&str> {
    let at = find_scheme_separator(url)?;
    let authority = &url[at + 3..];
    let mut start = 0;
    let mut port = None;
    let mut end = authority.len();
    for (i, b) in authority.bytes().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            b'@' => {
                start = i + 1;
                port = None;
            }
            b':' if port.is_none() => port = Some(i),
            _ => {}
        }
    }
    Some(&authority[start..port.unwrap_or(end)])
}

impl Filter for DropHosts {
    fn keep(&self, report: &Report, _: &RequestFacts<'_>) -> bool {
        let hit = |v: &Option<ByteString>| v.as_deref().is_some_and(|v| self.matches(v));
        !(hit(&report.blocked_uri) || hit(&report.source_file))
    }
}

/// Drops reports caused by browser extensions ([`EXTENSION_SCHEMES`], by blocked URI,
/// source file or sample).
pub fn browser_extensions() -> DropSchemes {
    DropSchemes::new(EXTENSION_SCHEMES.iter().copied()).by_source(true)
}

/// Drops reports about browser internals ([`INTERNAL_SCHEMES`]), webview bridges, `about:`
/// frames and the like ([`NOISE_SCHEMES`]): by blocked URI, or by source file or sample when
/// the blocked URI is empty.
pub fn noise_schemes() -> DropSchemes {
    DropSchemes::new(INTERNAL_SCHEMES.iter().chain(NOISE_SCHEMES).copied())
}

/// Drops reports about hosts injected by adware and malware ([`NOISE_HOSTS`]).
pub fn noise_hosts() -> DropHosts {
    DropHosts::new(NOISE_HOSTS.iter().copied())
}

/// The layer's filter unless told otherwise: [`browser_extensions`], [`noise_schemes`] and
/// [`noise_hosts`].
///
/// To change one part, build the chain yourself:
/// `browser_extensions().and(noise_schemes()).and(DropHosts::new(my_hosts))`.
#[derive(Debug, Clone)]
pub struct DefaultFilter {
    parts: And<And<DropSchemes, DropSchemes>, DropHosts>,
}

impl DefaultFilter {
    /// The default noise filter.
    pub fn new() -> Self {
        Self {
            parts: browser_extensions().and(noise_schemes()).and(noise_hosts()),
        }
    }
}

impl Default for DefaultFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl Filter for DefaultFilter {
    fn keep(&self, report: &Report, request: &RequestFacts<'_>) -> bool {
        self.parts.keep(report, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(blocked: &str, source: Option<&str>, sample: Option<&str>) -> Report {
        let mut r = Report::csp("https://site.example/p", "script-src-elem", blocked);
        r.source_file = source.map(Into::into);
        r.script_sample = sample.map(Into::into);
        r
    }

    #[test]
    fn drop_hosts_compares_hosts_of_each_length() {
        let facts = RequestFacts::default();
        // Two hosts of one length, one longer, one repeated in another case.
        let filter = DropHosts::new([
            "aa.example",
            "ab.example",
            "Ab.Example",
            "long.host.example",
        ]);
        let cases = [
            ("https://aa.example/x", false),
            ("https://ab.example/x", false),
            ("https://x.y.ab.example/x", false),
            ("https://ac.example/x", true),
            ("https://long.host.example", false),
            ("https://very.long.host.example", false),
            ("https://ong.host.example", true),
            ("https://an.even.longer.host.example.net", true),
            ("https://example", true),
            ("https://", true),
        ];
        for (blocked, keep) in cases {
            let r = report(blocked, None, None);
            assert_eq!(filter.keep(&r, &facts), keep, "{blocked}");
        }
        let none = DropHosts::new(Vec::<String>::new());
        assert!(none.keep(&report("https://aa.example/x", None, None), &facts));
    }

    #[test]
    fn default_filter_table() {
        let facts = RequestFacts::default();
        let cases: &[(&str, Option<&str>, Option<&str>, bool)] = &[
            ("chrome-extension", None, None, false),
            ("chrome-extension://abcdef/inject.js", None, None, false),
            ("moz-extension", None, None, false),
            ("MOZ-EXTENSION://x/y.js", None, None, false),
            ("safari-web-extension://id/x.css", None, None, false),
            ("webkit-masked-url://hidden/", None, None, false),
            (
                "inline",
                Some("moz-extension://1234/content.js"),
                None,
                false,
            ),
            ("inline", Some("chrome-extension"), None, false),
            (
                "eval",
                None,
                Some("chrome-extension://abc/x.js:1 eval"),
                false,
            ),
            ("about", None, None, false),
            ("about:blank", None, None, false),
            ("webviewprogressproxy://x", None, None, false),
            ("https://www.superfish.com/ws/sf_main.js", None, None, false),
            ("https://sub.metrext.com/a.js", None, None, false),
            ("https://notmetrext.com/a.js", None, None, true),
            ("https://user@www.superfish.com:8443/x", None, None, false),
            ("https://superfish.com.evil.example/x", None, None, true),
            // The host: after the last `@`, before the port, the path, the query, the fragment.
            (
                "https://a@b@superfish.com:1@evil.example/x",
                None,
                None,
                true,
            ),
            ("https://evil.example:1@superfish.com/x", None, None, false),
            ("https://superfish.com?q=1", None, None, false),
            ("https://superfish.com#top", None, None, false),
            ("https://SUPERFISH.COM:443", None, None, false),
            ("https://evil.example/superfish.com", None, None, true),
            (
                "https://evil.example?u=https://superfish.com",
                None,
                None,
                true,
            ),
            ("https://CDNCache-A.Akamaihd.NET/x.js", None, None, false),
            ("https://akamaihd.net/x.js", None, None, true),
            ("https://tlscdn.com", None, None, false),
            ("inline", None, None, true),
            ("eval", None, Some("alert(1)"), true),
            ("data", None, None, true),
            ("data:image/png;base64,AAA", None, None, true),
            ("blob", None, None, true),
            ("blob:https://site.example/uuid", None, None, true),
            (
                "https://cdn.example/lib.js",
                Some("https://site.example/app.js"),
                None,
                true,
            ),
            ("self", None, None, true),
            ("", None, None, true),
            // Firefox's report of the site's blocked favicon, and Chromium's.
            (
                "http://127.0.0.1:18801/favicon.ico",
                Some("resource"),
                None,
                true,
            ),
            ("http://127.0.0.1:18801/favicon.ico", None, None, true),
            // Browser internals, by source file: only when nothing of the site's is blocked.
            (
                "https://site.example/x.png",
                Some("resource://gre/x.js"),
                None,
                true,
            ),
            (
                "https://site.example/x.png",
                Some("chrome://browser/x.js"),
                None,
                true,
            ),
            ("inline", Some("resource"), None, true),
            ("eval", Some("chrome"), None, true),
            ("data", Some("resource://gre/x.js"), None, true),
            (
                "blob:https://site.example/u",
                Some("jar:file:///x"),
                None,
                true,
            ),
            ("", Some("resource"), None, false),
            ("", Some("chrome://browser/content/x.js"), None, false),
            ("", Some("about:blank"), None, false),
            ("resource://gre/x.css", None, None, false),
            ("chrome://browser/skin/x.png", Some("chrome"), None, false),
            ("resource", None, None, false),
            ("moz-nullprincipal:{1234}", None, None, false),
            // Extensions, by source file or sample, whatever is blocked.
            (
                "https://tracker.example/p.gif",
                Some("moz-extension://1234/content.js"),
                None,
                false,
            ),
            (
                "https://site.example/app.js",
                None,
                Some("chrome-extension://abc/x.js"),
                false,
            ),
        ];
        let filter = DefaultFilter::new();
        for (blocked, source, sample, keep) in cases {
            let r = report(blocked, *source, *sample);
            assert_eq!(
                filter.keep(&r, &facts),
                *keep,
                "blocked={blocked:?} source={source:?} sample={sample:?}"
            );
        }
    }

    #[test]
    fn combinators() {
        let facts = RequestFacts::default();
        let yes = |_: &Report, _: &RequestFacts| true;
        let no = |_: &Report, _: &RequestFacts| false;
        let r = report("inline", None, None);
        assert!(yes.and(yes).keep(&r, &facts));
        assert!(!yes.and(no).keep(&r, &facts));
        assert!(no.or(yes).keep(&r, &facts));
        assert!(!no.or(no).keep(&r, &facts));
        assert!(no.not().keep(&r, &facts));
        assert!(!KeepAll.not().keep(&r, &facts));
    }
}
