//! Making report values safe for a header line and for HTML.

use std::fmt::Write;

/// The longest subject written, in characters: long enough to say what happened, short enough
/// for a mail list view.
pub(super) const SUBJECT_MAX_CHARS: usize = 150;

/// One line of text that is safe in a mail header: every control character (CR and LF
/// included) and Unicode line separator becomes a space, runs of white space shrink to one,
/// and the result is cut to `max_chars` with an ellipsis.
///
/// Browsers and attackers both write report fields, so nothing from a report may start a new
/// header line.
pub(super) fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() || matches!(c, '\u{2028}' | '\u{2029}') {
            pending_space = !out.is_empty();
            continue;
        }
        let needed = usize::from(pending_space) + 1;
        if chars + needed > max_chars {
            out.push('…');
            return out;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
        chars += needed;
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values, as every mail does;
/// control characters other than line breaks and tabs become U+FFFD.
///
/// ```
/// use tower_csp_reports::sink::smtp::escape_html;
/// assert_eq!(escape_html("<b title=\"x\">&</b>"), "&lt;b title=&quot;x&quot;&gt;&amp;&lt;/b&gt;");
/// ```
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    push_html(&mut out, text);
    out
}

/// Appends `text` to `out`, escaped for HTML.
pub(super) fn push_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than line breaks and tabs have no place in a mail body.
            c if c.is_control() && !matches!(c, '\n' | '\t') => {
                let _ = write!(out, "&#xfffd;");
            }
            c => out.push(c),
        }
    }
}

/// A multi-line block for the plain-text body: line breaks kept, other control characters
/// shown as U+FFFD, so a report cannot play tricks with terminal escapes in a mail reader.
pub(super) fn block(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t') {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_line_breaks_and_caps_length() {
        let cases: &[(&str, usize, &str)] = &[
            ("plain", 20, "plain"),
            ("a\r\nBcc: x@evil.example", 40, "a Bcc: x@evil.example"),
            ("  lead\tand\u{2028}trail \n", 40, "lead and trail"),
            ("a\u{0}\u{1b}[31mb", 40, "a [31mb"),
            ("abcdefghij", 5, "abcde…"),
            ("abc defghij", 5, "abc d…"),
            ("", 5, ""),
        ];
        for &(input, max, expected) in cases {
            assert_eq!(one_line(input, max), expected, "input {input:?}");
        }
    }

    #[test]
    fn html_escapes_markup_and_quotes() {
        let cases: &[(&str, &str)] = &[
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            (r#"" onmouseover='x'"#, "&quot; onmouseover=&#39;x&#39;"),
            ("line\nnext\r", "line\nnext&#xfffd;"),
        ];
        for &(input, expected) in cases {
            assert_eq!(html(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn block_keeps_lines_and_hides_escapes() {
        assert_eq!(block("a\nb\u{1b}[2J"), "a\nb\u{fffd}[2J");
    }
}
