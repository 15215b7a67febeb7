//! Escaping what could break a log line or fool a reader, and capping lengths.

use std::borrow::Cow;

/// Whether a character could break a log line or fool a reader: control characters, Unicode
/// line and paragraph separators, and bidirectional overrides.
pub(super) fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `text` holds an unsafe character. Reports are nearly all ASCII: one branch-free
/// pass over the bytes (which the compiler vectorizes) finds ASCII control characters and
/// whether there is anything else; characters are decoded only for text that is not ASCII.
pub(super) fn has_unsafe(text: &str) -> bool {
    let seen = text.bytes().fold(0u8, |seen, b| {
        seen | u8::from(b < 0x20 || b == 0x7f) | (b & 0x80)
    });
    match seen {
        0 => false,
        0x80 => text.chars().any(is_unsafe),
        _ => true,
    }
}

/// Escapes unsafe characters and caps the length (in bytes, on a character boundary).
pub(crate) fn clean(text: &str, max: usize) -> String {
    cleaned(text, max).into_owned()
}

/// [`clean`], borrowing `text` when it needs no change.
pub(crate) fn cleaned(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && !has_unsafe(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for c in text.chars() {
        let start = out.len();
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(start);
            out.push('…');
            break;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn clean_table() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "https://example.com/a?b=c",
                100,
                "https://example.com/a?b=c",
            ),
            ("", 10, ""),
            ("line\nbreak", 100, "line\\nbreak"),
            ("tab\there", 100, "tab\\there"),
            ("del\u{7f}", 100, "del\\u{7f}"),
            ("café", 100, "café"),
            // A C1 control, a line separator and a bidi override, each after other non-ASCII.
            ("é\u{85}", 100, "é\\u{85}"),
            ("é\u{2028}x", 100, "é\\u{2028}x"),
            ("ü\u{202e}gpj.exe", 100, "ü\\u{202e}gpj.exe"),
            ("abcdef", 3, "abc…"),
            ("ééé", 3, "é…"),
        ];
        for &(text, max, expected) in cases {
            assert_eq!(clean(text, max), expected, "clean({text:?}, {max})");
        }
    }
}
