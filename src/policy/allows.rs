//! Whether a source list already allows what was blocked, as browsers match it.

use super::blocked::{Blocked, Code, Origin};
use super::source::{HostSource, Port, Source, default_port};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
