//! Times as people type them: `2026-11-01`, `yesterday`, `7 days ago`, `36h`, RFC 3339.

use jiff::civil::{Date, DateTime};
use jiff::{Span, Timestamp, Zoned};

/// The forms accepted, for error messages and `--help`.
pub(crate) const FORMS: &str = "RFC 3339 (2026-11-01T10:00:00Z), a date (2026-11-01), a local date and time \
(2026-11-01 10:00), now, today, yesterday, or a time ago (36h, 7 days ago, 1 week, 2 hours ago)";

/// Reads a point in time; dates and times without an offset are in `now`'s time zone, and a
/// plain duration means that long before `now`.
pub(crate) fn parse_time(text: &str, now: &Zoned) -> Result<Timestamp, String> {
    let text = text.trim();
    let fail = || format!("cannot read {text:?} as a time; use {FORMS}");
    let midnight = |days_back: i64| -> Result<Timestamp, String> {
        let date = now
            .date()
            .checked_sub(Span::new().days(days_back))
            .map_err(|_| fail())?;
        date.to_zoned(now.time_zone().clone())
            .map(|z| z.timestamp())
            .map_err(|_| fail())
    };
    match text.to_ascii_lowercase().as_str() {
        "now" => return Ok(now.timestamp()),
        "today" => return midnight(0),
        "yesterday" => return midnight(1),
        _ => {}
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    // A date and time first: a date alone would also read "2026-11-01 10:00" (as midnight).
    if let Ok(datetime) = text.replacen(' ', "T", 1).parse::<DateTime>() {
        return datetime
            .to_zoned(now.time_zone().clone())
            .map(|z| z.timestamp())
            .map_err(|_| fail());
    }
    if let Ok(date) = text.parse::<Date>() {
        return date
            .to_zoned(now.time_zone().clone())
            .map(|z| z.timestamp())
            .map_err(|_| fail());
    }
    if let Ok(span) = text.parse::<Span>() {
        return now
            .checked_sub(span.abs())
            .map(|z| z.timestamp())
            .map_err(|_| fail());
    }
    Err(fail())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    #[test]
    fn forms() {
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let now = "2026-11-23T15:30:00+01:00[Europe/Paris]"
            .parse::<Zoned>()
            .unwrap();
        assert_eq!(now.time_zone(), &tz);
        let cases = [
            ("now", "2026-11-23T14:30:00Z"),
            ("today", "2026-11-22T23:00:00Z"),
            ("Yesterday", "2026-11-21T23:00:00Z"),
            ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00Z"),
            ("2026-11-01T10:00:00+02:00", "2026-11-01T08:00:00Z"),
            ("2026-11-01", "2026-10-31T23:00:00Z"),
            ("2026-07-01", "2026-06-30T22:00:00Z"),
            ("2026-11-01 10:00", "2026-11-01T09:00:00Z"),
            ("2026-11-01T10:00", "2026-11-01T09:00:00Z"),
            ("36h", "2026-11-22T02:30:00Z"),
            ("7 days ago", "2026-11-16T14:30:00Z"),
            ("1 week", "2026-11-16T14:30:00Z"),
            ("2 hours ago", "2026-11-23T12:30:00Z"),
        ];
        for (input, want) in cases {
            let got = parse_time(input, &now).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.to_string(), want, "{input}");
        }
        for bad in ["", "tomorrowish", "2026-13-01", "36 parsecs", "10:00"] {
            let err = parse_time(bad, &now).unwrap_err();
            assert!(err.contains("7 days ago"), "{bad}: {err}");
        }
    }
}
