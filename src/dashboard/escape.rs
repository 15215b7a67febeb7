//! Values from reports, made safe for the page: maud escapes text and attribute values; what
//! it cannot know is which URLs may be links and how long a value may run.

use maud::{Markup, html};

/// The longest value shown in a table cell; the detail page shows values in full.
pub(crate) const CELL_CHARS: usize = 120;

/// Whether `url` may be the `href` of a live link: only `http:` and `https:` URLs, so that a
/// `javascript:`, `data:` or `vbscript:` value (in any case, with any white space or control
/// character a browser would strip) is never one.
pub(crate) fn is_linkable(url: &str) -> bool {
    // Browsers drop leading C0 controls and spaces, and tabs and newlines anywhere, before
    // they read the scheme: look at the URL the way they will.
    let cleaned: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    (cleaned.starts_with("https://") || cleaned.starts_with("http://"))
        && !url.chars().any(char::is_control)
}

/// A URL from a report: a link that sends no referrer and opens nothing of ours when it is
/// `http(s)`, plain text otherwise.
pub(crate) fn url(value: &str, max: usize) -> Markup {
    let shown = shorten(value, max);
    if is_linkable(value) {
        html! { a href=(value) rel="noopener noreferrer nofollow" class="ext" { (shown) } }
    } else {
        html! { span class="raw" { (shown) } }
    }
}

/// At most `max` characters of `value`, with an ellipsis when it was cut.
pub(crate) fn shorten(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        None => value.to_owned(),
        Some((at, _)) => format!("{}…", &value[..at]),
    }
}

/// A report's raw text, pretty-printed when it is JSON, as it was otherwise.
pub(crate) fn pretty_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| raw.to_owned())
}

/// Percent-encodes a value for a query string (everything but unreserved characters).
pub(crate) fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The policy with every occurrence of `directive` (as a directive name) marked, for the
/// detail page. The parts are text: maud escapes them.
pub(crate) fn highlight_directive(policy: &str, directive: &str) -> Markup {
    let directive = directive.trim();
    html! {
        @for (index, part) in policy.split(';').enumerate() {
            @if index > 0 { ";" }
            @let name = part.split_whitespace().next().unwrap_or_default();
            @if !directive.is_empty() && name.eq_ignore_ascii_case(directive) {
                mark { (part) }
            } @else {
                (part)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_links() {
        for (value, linkable) in [
            ("https://cdn.example/x.js", true),
            ("HTTP://cdn.example/", true),
            ("javascript:alert(1)", false),
            ("JaVaScRiPt:alert(1)", false),
            (" javascript:alert(1)", false),
            ("\u{1}javascript:alert(1)", false),
            ("java\tscript:alert(1)", false),
            ("java\nscript:alert(1)", false),
            ("data:text/html,<script>", false),
            ("vbscript:x", false),
            ("inline", false),
            ("//evil.example/", false),
            ("https://a.example/\u{0}x", false),
            ("", false),
        ] {
            assert_eq!(is_linkable(value), linkable, "{value:?}");
        }
    }

    #[test]
    fn hostile_values_are_escaped() {
        let hostile = r#""><script>fetch('//x')</script><img src=x onerror=alert(1)>"#;
        for markup in [url(hostile, 500), url("javascript:alert(1)", 500)] {
            let text = markup.into_string();
            assert!(!text.contains("<script"), "{text}");
            assert!(!text.contains("<img"), "{text}");
            assert!(!text.contains("href=\"javascript"), "{text}");
        }
        let linked = url(r#"https://a.example/"onmouseover="x"#, 500).into_string();
        assert!(linked.contains("&quot;onmouseover=&quot;"), "{linked}");
        let policy = highlight_directive("script-src 'self' <b>; img-src *", "img-src");
        assert_eq!(
            policy.into_string(),
            "script-src 'self' &lt;b&gt;;<mark> img-src *</mark>"
        );
    }

    #[test]
    fn shortens_on_characters() {
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hé", 2), "hé");
        assert_eq!(query_value("a b&c=é"), "a%20b%26c%3D%C3%A9");
        assert_eq!(pretty_json("{\"a\":1}"), "{\n  \"a\": 1\n}");
        assert_eq!(pretty_json("not json"), "not json");
    }
}
