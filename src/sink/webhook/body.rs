//! The JSON bodies: the generic one (the alerts as they are) and Slack's (one `text` in
//! mrkdwn, every value escaped).

use std::fmt::Write;

use serde::Serialize;

use super::WebhookFormat;
use crate::alert::{
    Alert, digest_lines, digest_title, event_title, headline, kind_word, violation_fields,
};

/// The longest value quoted in a Slack message, in characters (policies can be long).
const SLACK_VALUE_MAX_CHARS: usize = 500;

/// What the last posts could not say: held back by the cap, or dropped from a full queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct Missed {
    /// Posts the cap held back.
    pub(super) posts: u64,
    /// The alerts in them, and those dropped because the queue was full.
    pub(super) alerts: u64,
}

#[derive(Serialize)]
struct Generic<'a> {
    source: &'static str,
    alerts: &'a [&'a Alert],
    missed: Missed,
}

#[derive(Serialize)]
struct Slack {
    text: String,
}

/// The body of one post about `alerts`.
pub(super) fn render(format: WebhookFormat, alerts: &[&Alert], missed: Missed) -> Vec<u8> {
    let body = match format {
        WebhookFormat::Generic => serde_json::to_vec(&Generic {
            source: "tower-csp-reports",
            alerts,
            missed,
        }),
        WebhookFormat::Slack => serde_json::to_vec(&Slack {
            text: slack_text(alerts, missed),
        }),
    };
    // Every value serializes (strings, numbers, timestamps): no error to hand on.
    body.unwrap_or_default()
}

fn slack_text(alerts: &[&Alert], missed: Missed) -> String {
    let mut text = String::new();
    if missed.posts > 0 || missed.alerts > 0 {
        let _ = writeln!(
            text,
            "_Note: {} earlier alerts were not posted (at most so many posts an hour, or too many waiting)._",
            missed.alerts
        );
    }
    for alert in alerts {
        match alert {
            Alert::Violation(event) => {
                let _ = writeln!(
                    text,
                    "*{}* ({}): {}",
                    event_title(event),
                    kind_word(event.kind),
                    slack_escape(&headline(&event.violation))
                );
                for (name, value) in violation_fields(&event.violation) {
                    let _ = writeln!(text, "• {name}: {}", slack_escape(&value));
                }
            }
            Alert::Digest(summary) => {
                let _ = writeln!(text, "*{}*", slack_escape(&digest_title(summary)));
                for line in digest_lines(summary) {
                    let _ = writeln!(text, "• {}", slack_escape(&line));
                }
            }
        }
    }
    text
}

/// A value as Slack shows it and nothing more: `&`, `<` and `>` escaped (so no link,
/// mention or `<!channel>` can be made from a report), control characters and line breaks
/// as spaces, cut to 500 characters.
pub(super) fn slack_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        if i == SLACK_VALUE_MAX_CHARS {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_values_cannot_make_links_or_mentions() {
        let cases = [
            ("<!channel> hi", "&lt;!channel&gt; hi"),
            (
                "<https://evil.example|click>",
                "&lt;https://evil.example|click&gt;",
            ),
            ("a&b", "a&amp;b"),
            ("line\nbreak\r\u{7}", "line break  "),
            ("plain https://ok.example/", "plain https://ok.example/"),
        ];
        for (value, expected) in cases {
            assert_eq!(slack_escape(value), expected, "{value:?}");
        }
        let long = "x".repeat(600);
        assert_eq!(
            slack_escape(&long).chars().count(),
            SLACK_VALUE_MAX_CHARS + 1
        );
    }
}
