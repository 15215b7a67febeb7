use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

/// A half-open time range `[since, to)`: what is received at `since` is in it, what is
/// received at `to` is not. A range whose end is not after its start is empty.
///
/// ```
/// use tower_csp_reports::store::TimeRange;
///
/// let day = TimeRange::new("2026-11-22T00:00:00Z".parse()?, "2026-11-23T00:00:00Z".parse()?);
/// assert!(day.contains("2026-11-22T00:00:00Z".parse()?));
/// assert!(!day.contains("2026-11-23T00:00:00Z".parse()?));
/// assert!(TimeRange::new(day.to(), day.since()).is_empty());
/// # Ok::<(), jiff::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TimeRange {
    since: Timestamp,
    to: Timestamp,
}

impl TimeRange {
    /// The range from `since` (included) to `to` (excluded).
    pub fn new(since: Timestamp, to: Timestamp) -> Self {
        Self { since, to }
    }

    /// Everything a store can hold.
    pub fn all() -> Self {
        Self::new(Timestamp::MIN, Timestamp::MAX)
    }

    /// The last `duration` up to now (`TimeRange::last(24 h)` for the last day).
    pub fn last(duration: SignedDuration) -> Self {
        let now = Timestamp::now();
        Self::new(now.saturating_sub(duration).unwrap_or(Timestamp::MIN), now)
    }

    /// The start, included.
    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// The end, excluded.
    pub fn to(&self) -> Timestamp {
        self.to
    }

    /// Whether nothing can be in it.
    pub fn is_empty(&self) -> bool {
        self.to <= self.since
    }

    /// Whether `at` is in it.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.since <= at && at < self.to
    }

    /// The range cut into whole hours, read from a store's hourly counts, and the parts of an
    /// hour left at either end, read from the report rows: so a figure is exact for any range
    /// while its cost grows with the number of violations and hours, not of reports.
    pub(crate) fn split_hours(&self) -> RangeSplit {
        if self.is_empty() {
            return RangeSplit::empty(self.since);
        }
        let first = hour_ceil(self.since);
        let last = hour_floor(self.to);
        if first >= last {
            // No whole hour inside: the whole range is read from the rows.
            return self.scan();
        }
        RangeSplit {
            hours: (first, last),
            edges: [(self.since, first), (last, self.to)],
        }
    }

    /// The range cut for per-violation counts: whole UTC days from the daily counts, the
    /// whole hours left at either end from the hourly counts, and the rest of an hour at
    /// either end from the rows. A month is then 30 rows per violation, not 720.
    pub(crate) fn split_days(&self) -> DaySplit {
        let hours = self.split_hours();
        let (first_hour, last_hour) = hours.hours;
        let first_day = day_ceil(first_hour);
        let last_day = day_floor(last_hour);
        if first_hour >= last_hour || first_day >= last_day {
            return DaySplit {
                days: (first_hour, first_hour),
                hours: [hours.hours, (last_hour, last_hour)],
                edges: hours.edges,
            };
        }
        DaySplit {
            days: (first_day, last_day),
            hours: [(first_hour, first_day), (last_day, last_hour)],
            edges: hours.edges,
        }
    }

    /// The whole range read from the report rows, for per-violation counts.
    pub(crate) fn scan_days(&self) -> DaySplit {
        let scan = self.scan();
        DaySplit {
            days: scan.hours,
            hours: [scan.hours, scan.hours],
            edges: scan.edges,
        }
    }

    /// The whole range read from the report rows, with no hourly counts.
    pub(crate) fn scan(&self) -> RangeSplit {
        if self.is_empty() {
            return RangeSplit::empty(self.since);
        }
        RangeSplit {
            hours: (self.since, self.since),
            edges: [(self.since, self.to), (self.to, self.to)],
        }
    }
}

impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.since, self.to)
    }
}

/// How a range is read: whole hours `[hours.0, hours.1)` from the hourly counts, and two edges
/// from the report rows. Empty parts are ranges whose ends are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RangeSplit {
    pub(crate) hours: (Timestamp, Timestamp),
    pub(crate) edges: [(Timestamp, Timestamp); 2],
}

impl RangeSplit {
    fn empty(at: Timestamp) -> Self {
        Self {
            hours: (at, at),
            edges: [(at, at), (at, at)],
        }
    }
}

/// How a range is read for per-violation counts: whole days `[days.0, days.1)` from the daily
/// counts, two stretches of whole hours from the hourly counts, two edges from the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DaySplit {
    pub(crate) days: (Timestamp, Timestamp),
    pub(crate) hours: [(Timestamp, Timestamp); 2],
    pub(crate) edges: [(Timestamp, Timestamp); 2],
}

impl DaySplit {
    /// The ten times, in the order the stores' statements take them: days, hours, edges.
    pub(crate) fn times(&self) -> [Timestamp; 10] {
        let [(a, b), (c, d)] = self.hours;
        let [(e, f), (g, h)] = self.edges;
        [self.days.0, self.days.1, a, b, c, d, e, f, g, h]
    }
}

const HOUR_MICROS: i64 = 3_600_000_000;
const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// The start of the UTC day `at` falls in.
pub(crate) fn day_floor(at: Timestamp) -> Timestamp {
    let micros = at.as_microsecond().div_euclid(DAY_MICROS) * DAY_MICROS;
    Timestamp::from_microsecond(micros).unwrap_or(at)
}

/// The start of the first UTC day that begins at or after `at`.
fn day_ceil(at: Timestamp) -> Timestamp {
    let floor = day_floor(at);
    if floor == at {
        floor
    } else {
        floor
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(Timestamp::MAX)
    }
}

/// The start of the UTC hour `at` falls in.
pub(crate) fn hour_floor(at: Timestamp) -> Timestamp {
    let micros = at.as_microsecond().div_euclid(HOUR_MICROS) * HOUR_MICROS;
    Timestamp::from_microsecond(micros).unwrap_or(at)
}

/// The start of the first UTC hour that begins at or after `at`.
pub(crate) fn hour_ceil(at: Timestamp) -> Timestamp {
    let floor = hour_floor(at);
    if floor == at {
        floor
    } else {
        floor
            .checked_add(SignedDuration::from_hours(1))
            .unwrap_or(Timestamp::MAX)
    }
}

/// A time as stored: to the microsecond, as Postgres keeps it.
pub(crate) fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

/// A stored microsecond count back into a time.
pub(crate) fn from_micros(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(if micros < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn splits() {
        let cases = [
            // Whole hours, nothing at the edges.
            (
                "2026-11-22T00:00:00Z",
                "2026-11-23T00:00:00Z",
                ("2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z"),
                [
                    ("2026-11-22T00:00:00Z", "2026-11-22T00:00:00Z"),
                    ("2026-11-23T00:00:00Z", "2026-11-23T00:00:00Z"),
                ],
            ),
            // Parts of an hour at both ends.
            (
                "2026-11-22T00:30:00Z",
                "2026-11-22T03:15:00Z",
                ("2026-11-22T01:00:00Z", "2026-11-22T03:00:00Z"),
                [
                    ("2026-11-22T00:30:00Z", "2026-11-22T01:00:00Z"),
                    ("2026-11-22T03:00:00Z", "2026-11-22T03:15:00Z"),
                ],
            ),
            // Inside one hour: all from the rows.
            (
                "2026-11-22T00:10:00Z",
                "2026-11-22T00:50:00Z",
                ("2026-11-22T00:10:00Z", "2026-11-22T00:10:00Z"),
                [
                    ("2026-11-22T00:10:00Z", "2026-11-22T00:50:00Z"),
                    ("2026-11-22T00:50:00Z", "2026-11-22T00:50:00Z"),
                ],
            ),
            // Across one hour boundary, no whole hour.
            (
                "2026-11-22T00:10:00Z",
                "2026-11-22T01:50:00Z",
                ("2026-11-22T00:10:00Z", "2026-11-22T00:10:00Z"),
                [
                    ("2026-11-22T00:10:00Z", "2026-11-22T01:50:00Z"),
                    ("2026-11-22T01:50:00Z", "2026-11-22T01:50:00Z"),
                ],
            ),
        ];
        for (since, to, hours, edges) in cases {
            let split = TimeRange::new(ts(since), ts(to)).split_hours();
            assert_eq!(split.hours, (ts(hours.0), ts(hours.1)), "{since} {to}");
            assert_eq!(
                split.edges,
                edges.map(|(a, b)| (ts(a), ts(b))),
                "{since} {to}"
            );
        }
        let empty = TimeRange::new(ts("2026-11-22T05:00:00Z"), ts("2026-11-22T01:00:00Z"));
        let split = empty.split_hours();
        assert_eq!(split.hours.0, split.hours.1);
        assert!(split.edges.iter().all(|(a, b)| a == b));
    }

    #[test]
    fn day_splits() {
        let range = TimeRange::new(ts("2026-11-20T22:30:00Z"), ts("2026-11-23T01:15:00Z"));
        let split = range.split_days();
        assert_eq!(
            split.days,
            (ts("2026-11-21T00:00:00Z"), ts("2026-11-23T00:00:00Z"))
        );
        assert_eq!(
            split.hours,
            [
                (ts("2026-11-20T23:00:00Z"), ts("2026-11-21T00:00:00Z")),
                (ts("2026-11-23T00:00:00Z"), ts("2026-11-23T01:00:00Z"))
            ]
        );
        assert_eq!(
            split.edges,
            [
                (ts("2026-11-20T22:30:00Z"), ts("2026-11-20T23:00:00Z")),
                (ts("2026-11-23T01:00:00Z"), ts("2026-11-23T01:15:00Z"))
            ]
        );
        // Less than a day: hours and edges only.
        let short = TimeRange::new(ts("2026-11-20T10:30:00Z"), ts("2026-11-20T15:00:00Z"));
        let split = short.split_days();
        assert_eq!(split.days.0, split.days.1);
        assert_eq!(
            split.hours[0],
            (ts("2026-11-20T11:00:00Z"), ts("2026-11-20T15:00:00Z"))
        );
        // Every instant of the range is in exactly one part.
        for range in [
            range,
            short,
            TimeRange::all(),
            TimeRange::new(ts("2026-11-20T10:10:00Z"), ts("2026-11-20T10:20:00Z")),
        ] {
            let split = range.split_days();
            let t = split.times();
            let mut parts: Vec<(Timestamp, Timestamp)> = t
                .chunks(2)
                .map(|p| (p[0], p[1]))
                .filter(|(a, b)| a < b)
                .collect();
            parts.sort();
            assert_eq!(
                parts.first().map(|p| p.0),
                Some(range.since()).filter(|_| !range.is_empty())
            );
            assert!(
                parts.windows(2).all(|w| w[0].1 == w[1].0),
                "{range}: {parts:?}"
            );
            assert_eq!(parts.last().map(|p| p.1), Some(range.to()));
        }
    }

    #[test]
    fn hours() {
        assert_eq!(
            hour_floor(ts("1969-12-31T23:30:00Z")),
            ts("1969-12-31T23:00:00Z")
        );
        assert_eq!(
            hour_ceil(ts("2026-01-01T10:00:00Z")),
            ts("2026-01-01T10:00:00Z")
        );
        assert_eq!(
            hour_ceil(ts("2026-01-01T10:00:00.000001Z")),
            ts("2026-01-01T11:00:00Z")
        );
        assert_eq!(
            from_micros(micros(ts("2026-01-01T10:00:00.123456Z"))),
            ts("2026-01-01T10:00:00.123456Z")
        );
    }
}
