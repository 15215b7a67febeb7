//! Finding the URL fields in a report's raw text, so that what privacy removes from the
//! fields is removed there too.
//!
//! The text is scanned, not parsed again: a JSON string followed by `:` is a key, and when
//! the key names a URL field (matched as the parser matches keys) its string value is
//! redacted. The scan needs no valid JSON, so it finds the same pairs in a body that did
//! not parse, as far as they can be read.

use std::borrow::Cow;

use super::fields::{Key, Slot, key};

/// `text` with `redact` applied to the string value of every URL key, wherever it is and
/// however often; `None` when nothing changed (nothing is copied then).
pub(crate) fn redact_raw(text: &str, redact: fn(&str) -> Cow<'_, str>) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut at = 0;
    while let Some(open) = find_quote(bytes, at) {
        let close = string_end(bytes, open + 1);
        let colon = skip_space(bytes, close + 1);
        if bytes.get(colon) != Some(&b':') {
            at = close + 1;
            continue;
        }
        at = colon + 1;
        if !is_url_key(&unescape(&text[open + 1..close])) {
            continue;
        }
        let start = skip_space(bytes, colon + 1);
        if bytes.get(start) != Some(&b'"') {
            continue;
        }
        let end = string_end(bytes, start + 1);
        at = end + 1;
        let value = unescape(&text[start + 1..end]);
        let kept = redact(&value);
        // Redaction only removes: the same length is the same text.
        if kept.len() == value.len() {
            continue;
        }
        if out.is_empty() {
            out.reserve(text.len());
        }
        out.push_str(&text[copied..start]);
        push_json_string(&mut out, &kept);
        copied = (end + 1).min(text.len());
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

fn is_url_key(name: &str) -> bool {
    matches!(
        key(name),
        Key::Slot(
            Slot::DocumentUri | Slot::Url | Slot::Referrer | Slot::BlockedUri | Slot::SourceFile
        )
    )
}

fn find_quote(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    rest.iter().position(|&b| b == b'"').map(|i| from + i)
}

/// Where the string that starts at `from` (just past its opening quote) ends: its closing
/// quote, or the end of the text when it has none.
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(i) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'"' || b == b'\\'))
    {
        at += i;
        if bytes[at] == b'"' {
            return at;
        }
        // An escape: the next byte is part of it, whatever it is.
        at += 2;
    }
    bytes.len()
}

fn skip_space(bytes: &[u8], from: usize) -> usize {
    let rest = bytes.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .unwrap_or(rest.len())
}

/// The string's text with its escapes read; as it stands when it has none, or when they do
/// not read (text that is not JSON).
fn unescape(source: &str) -> Cow<'_, str> {
    if !source.contains('\\') {
        return Cow::Borrowed(source);
    }
    match serde_json::from_str::<String>(&format!("\"{source}\"")) {
        Ok(text) => Cow::Owned(text),
        Err(_) => Cow::Borrowed(source),
    }
}

fn push_json_string(out: &mut String, text: &str) {
    let plain = !text
        .bytes()
        .any(|b| b == b'"' || b == b'\\' || b < 0x20 || b == 0x7f);
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        // Writing a string to a `String` cannot fail.
        out.push_str(&serde_json::to_string(text).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::redact_url;

    #[test]
    fn redact_raw_table() {
        // (raw text, expected; `None` when nothing changes)
        let cases: &[(&str, Option<&str>)] = &[
            // Legacy, Reporting API, bare: every URL key, at any depth.
            (
                r#"{"csp-report":{"document-uri":"https://a.example/p?q=1","blocked-uri":"inline"}}"#,
                Some(
                    r#"{"csp-report":{"document-uri":"https://a.example/p","blocked-uri":"inline"}}"#,
                ),
            ),
            (
                r#"{"type":"csp-violation","url":"https://a.example/?t=1","body":{"documentURL":"https://a.example/?t=1","blockedURL":"https://u:p@cdn.example/x.js#f","sourceFile":"https://a.example/app.js?v=2","referrer":"https://r.example/?s=x"}}"#,
                Some(
                    r#"{"type":"csp-violation","url":"https://a.example/","body":{"documentURL":"https://a.example/","blockedURL":"https://cdn.example/x.js","sourceFile":"https://a.example/app.js","referrer":"https://r.example/"}}"#,
                ),
            ),
            // Spacing kept, keys in any spelling and alias.
            (
                "{ \"Document_URI\" :\n \"https://a.example/?x\" , \"referer\":\"/r?y\" }",
                Some("{ \"Document_URI\" :\n \"https://a.example/\" , \"referer\":\"/r\" }"),
            ),
            // Nothing to remove: no copy.
            (
                r#"{"document-uri":"https://a.example/p","blocked-uri":"eval"}"#,
                None,
            ),
            // Other keys are kept whatever they hold, a value that looks like a key too.
            (
                r#"{"sample":"x?y","original-policy":"report-uri /r?k=1","note":"\"url\":\"https://a/?q\""}"#,
                None,
            ),
            // A repeated key: both values.
            (
                r#"{"document-uri":"https://a/?one","document-uri":"https://a/?two"}"#,
                Some(r#"{"document-uri":"https://a/","document-uri":"https://a/"}"#),
            ),
            // Escapes in the value or the key are read first.
            (
                r#"{"document-uri":"https:\/\/a.example\/p\u003Fsecret=1"}"#,
                Some(r#"{"document-uri":"https://a.example/p"}"#),
            ),
            (
                r#"{"document\u002duri":"https://a/?s"}"#,
                Some(r#"{"document\u002duri":"https://a/"}"#),
            ),
            (
                r#"{"blocked-uri":"https://a/\"q\"\n?x"}"#,
                Some(r#"{"blocked-uri":"https://a/\"q\"\n"}"#),
            ),
            // `data:` payloads and credentials.
            (
                r#"{"blocked-uri":"data:image/png;base64,AAAA"}"#,
                Some(r#"{"blocked-uri":"data"}"#),
            ),
            (
                r#"{"blocked-uri":"https://me:pw@a.example/"}"#,
                Some(r#"{"blocked-uri":"https://a.example/"}"#),
            ),
            // A URL key whose value is no string is kept.
            (r#"{"document-uri":["https://a/?q"],"url":null}"#, None),
            // Text that is not JSON: what can be read.
            (
                r#"{"csp-report": {"document-uri": "https://a/?token=1", "blocked"#,
                Some(r#"{"csp-report": {"document-uri": "https://a/", "blocked"#),
            ),
            (
                r#"garbage "document-uri": "https://a/?token=1"#,
                Some(r#"garbage "document-uri": "https://a/""#),
            ),
            (r#"document-uri=https://a/?token=1"#, None),
            ("", None),
            ("\"", None),
            ("\"url\":", None),
            ("\"url\":\"", None),
            ("\"url\":\"\\", None),
            ("\"url\":\"?\\", Some("\"url\":\"\"")),
            (r#"{"url":"é?ü","x":"ü"}"#, Some(r#"{"url":"é","x":"ü"}"#)),
        ];
        for &(text, expected) in cases {
            let redacted = redact_raw(text, redact_url);
            assert_eq!(redacted.as_deref(), expected, "{text}");
            if let Some(redacted) = &redacted {
                if serde_json::from_str::<serde_json::Value>(text).is_ok() {
                    let json: Result<serde_json::Value, _> = serde_json::from_str(redacted);
                    assert!(json.is_ok(), "still JSON: {redacted}");
                }
                assert_eq!(redact_raw(redacted, redact_url), None, "twice: {text}");
            }
        }
    }
}
