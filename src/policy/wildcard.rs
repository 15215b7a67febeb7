//! Subdomains of one site merged into a wildcard (`https://*.example.com`), past a threshold
//! and never under a public suffix or for an address.

use std::collections::{BTreeMap, BTreeSet};

use super::blocked::Origin;
use super::source::HostSource;

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
