//! Filters by site: [`AllowHosts`] keeps only the reports of your own pages, [`DropPrefixes`]
//! drops reports about URLs you already know of.

use bytestring::ByteString;

use super::{DropHosts, Filter, RequestFacts, host_of};
use crate::error::ConfigError;
use crate::report::{Report, find_scheme_separator};

/// Keeps only reports whose document is on one of some hosts or their subdomains; the rest
/// (and reports with no document) are dropped, and counted as filtered.
///
/// A report endpoint is public: anyone can point a policy at it. Listing the sites you
/// collect for stops strangers from filling your store.
///
/// ```
/// use tower_csp_reports::filter::{AllowHosts, Filter, RequestFacts};
/// use tower_csp_reports::Report;
///
/// let ours = AllowHosts::new(["example.com"])?;
/// let facts = RequestFacts::default();
/// assert!(ours.keep(&Report::csp("https://shop.example.com/cart", "img-src", "data"), &facts));
/// assert!(!ours.keep(&Report::csp("https://example.com.evil.test/", "img-src", "data"), &facts));
/// assert!(AllowHosts::new(["https://example.com/"]).is_err());
/// # Ok::<(), tower_csp_reports::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct AllowHosts {
    hosts: DropHosts,
}

impl AllowHosts {
    /// Keeps the reports of pages on these hosts (matched without regard to case) and their
    /// subdomains.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the list is empty, or a host is not a plain host name
    /// (`example.com`, not `https://example.com/`).
    pub fn new<I, S>(hosts: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let hosts: Vec<String> = hosts.into_iter().map(Into::into).collect();
        if hosts.is_empty() {
            return Err(ConfigError::Invalid {
                setting: "allowed hosts",
                reason: "at least one host is needed".to_owned(),
            });
        }
        if let Some(bad) = hosts.iter().find(|h| !is_host_name(h)) {
            return Err(ConfigError::Invalid {
                setting: "allowed hosts",
                reason: format!("{bad:?} is not a host name (e.g. example.com)"),
            });
        }
        Ok(Self {
            hosts: DropHosts::new(hosts),
        })
    }
}

impl Filter for AllowHosts {
    fn keep(&self, report: &Report, _: &RequestFacts<'_>) -> bool {
        report.document().is_some_and(|d| self.hosts.matches(d))
    }
}

/// Whether `text` is a host name: dot-separated labels of ASCII letters, digits, `-` and
/// `_`, none empty.
pub(crate) fn is_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
}

/// Drops reports whose blocked URI or source file starts with one of some URL prefixes
/// (`https://cdn.example/ads/`). The scheme and host are compared without regard to case,
/// the rest exactly.
///
/// ```
/// use tower_csp_reports::filter::{DropPrefixes, Filter, RequestFacts};
/// use tower_csp_reports::Report;
///
/// let known = DropPrefixes::new(["https://cdn.example/ads/"])?;
/// let facts = RequestFacts::default();
/// let ad = Report::csp("https://example.com/", "script-src", "HTTPS://CDN.example/ads/x.js");
/// let lib = Report::csp("https://example.com/", "script-src", "https://cdn.example/lib.js");
/// assert!(!known.keep(&ad, &facts));
/// assert!(known.keep(&lib, &facts));
/// assert!(DropPrefixes::new(["cdn.example/ads/"]).is_err());
/// # Ok::<(), tower_csp_reports::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DropPrefixes {
    /// Each prefix split where its authority ends: `(scheme://host[:port], rest)`.
    prefixes: Vec<(String, String)>,
}

impl DropPrefixes {
    /// Drops reports about URLs that start with one of these prefixes.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a prefix is not an absolute URL (`scheme://host...`).
    pub fn new<I, S>(prefixes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let prefixes = prefixes
            .into_iter()
            .map(|prefix| {
                let prefix = prefix.into();
                match host_of(&prefix) {
                    Some(host) if !host.is_empty() && !prefix.contains(char::is_whitespace) => {
                        let end = authority_end(&prefix);
                        let (head, rest) = prefix.split_at(end);
                        Ok((head.to_ascii_lowercase(), rest.to_owned()))
                    }
                    _ => Err(ConfigError::Invalid {
                        setting: "URL prefixes",
                        reason: format!(
                            "{prefix:?} is not an absolute URL (e.g. https://cdn.example/ads/)"
                        ),
                    }),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { prefixes })
    }

    fn matches(&self, url: &str) -> bool {
        let end = authority_end(url);
        let (head, rest) = url.split_at(end);
        self.prefixes.iter().any(|(prefix_head, prefix_rest)| {
            // A prefix that ends inside the authority (`https://cdn.`) matches its start.
            if prefix_rest.is_empty() {
                url.len() >= prefix_head.len()
                    && url.as_bytes()[..prefix_head.len()]
                        .eq_ignore_ascii_case(prefix_head.as_bytes())
            } else {
                head.eq_ignore_ascii_case(prefix_head) && rest.starts_with(prefix_rest.as_str())
            }
        })
    }
}

/// Where the authority of an absolute URL ends (the first `/`, `?` or `#` after `://`), or
/// the length of `url` when it has none or is not absolute.
fn authority_end(url: &str) -> usize {
    match find_scheme_separator(url) {
        Some(at) => url[at + 3..]
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .map_or(url.len(), |i| at + 3 + i),
        None => url.len(),
    }
}

impl Filter for DropPrefixes {
    fn keep(&self, report: &Report, _: &RequestFacts<'_>) -> bool {
        let hit = |v: &Option<ByteString>| v.as_deref().is_some_and(|v| self.matches(v));
        !(hit(&report.blocked_uri) || hit(&report.source_file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_hosts_table() {
        let facts = RequestFacts::default();
        let filter = AllowHosts::new(["example.com", "Other.Test"]).unwrap();
        let cases = [
            ("https://example.com/", true),
            ("https://example.com", true),
            ("https://EXAMPLE.com:8443/page?q=1", true),
            ("https://shop.example.com/cart", true),
            ("https://a.b.example.com/", true),
            ("http://other.test/x", true),
            ("https://user@example.com/", true),
            ("https://example.com.evil.test/", false),
            ("https://notexample.com/", false),
            ("https://evil.test/https://example.com/", false),
            ("https://evil.test/?u=example.com", false),
            ("https://example.com@evil.test/", false),
            ("https://com/", false),
            ("about:blank", false),
            ("example.com", false),
            ("", false),
        ];
        for (document, keep) in cases {
            let report = Report::csp(document, "img-src", "data");
            assert_eq!(filter.keep(&report, &facts), keep, "{document:?}");
        }
        // The Reporting API names the document `url`; no document at all is not ours.
        let mut report = Report::csp("", "img-src", "data");
        report.document_uri = None;
        assert!(!filter.keep(&report, &facts));
        report.url = Some("https://www.example.com/".into());
        assert!(filter.keep(&report, &facts));
    }

    #[test]
    fn allow_hosts_checks_its_hosts() {
        for good in [vec!["example.com"], vec!["localhost", "a-b.c_d.example"]] {
            assert!(AllowHosts::new(good.clone()).is_ok(), "{good:?}");
        }
        let bad: &[&[&str]] = &[
            &[],
            &[""],
            &["https://example.com"],
            &["example.com/"],
            &["example.com:443"],
            &[".example.com"],
            &["example..com"],
            &["exa mple.com"],
            &["example.com", "*.example.com"],
        ];
        for hosts in bad {
            let error = AllowHosts::new(hosts.iter().copied()).unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::Invalid {
                        setting: "allowed hosts",
                        ..
                    }
                ),
                "{hosts:?}"
            );
        }
    }

    #[test]
    fn drop_prefixes_table() {
        let facts = RequestFacts::default();
        let filter = DropPrefixes::new([
            "https://cdn.example/ads/",
            "HTTP://Tracker.Example",
            "wss://live.",
        ])
        .unwrap();
        // (blocked, source file, kept)
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("https://cdn.example/ads/x.js", None, false),
            ("HTTPS://CDN.EXAMPLE/ads/x.js", None, false),
            ("https://cdn.example/ADS/x.js", None, true),
            ("https://cdn.example/lib.js", None, true),
            ("https://cdn.example.evil/ads/x.js", None, true),
            ("http://tracker.example", None, false),
            ("http://tracker.example/p.gif", None, false),
            ("http://tracker.example:81/p.gif", None, false),
            ("https://tracker.example/p.gif", None, true),
            ("wss://live.example/socket", None, false),
            ("inline", Some("https://cdn.example/ads/loader.js"), false),
            ("inline", Some("https://cdn.example/app.js"), true),
            ("https://site.example/ads/", None, true),
            ("", None, true),
        ];
        for (blocked, source, keep) in cases {
            let mut report = Report::csp("https://site.example/", "script-src", blocked);
            report.source_file = source.map(Into::into);
            assert_eq!(
                filter.keep(&report, &facts),
                *keep,
                "blocked={blocked:?} source={source:?}"
            );
        }
        for bad in ["cdn.example/ads/", "https://", "/ads/", "https://a b/", ""] {
            assert!(DropPrefixes::new([bad]).is_err(), "{bad:?}");
        }
    }
}
