//! Charts drawn on the server as SVG: reports per hour, stacked by directive. No script, no
//! `style` attribute (the page's CSP forbids inline style): colours come from classes in the
//! stylesheet, values from `<title>` tooltips.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};

use crate::store::{DirectiveHour, HourCount, TimeRange, hour_floor};

/// The most bars a chart draws: longer ranges put several hours in a bar.
const MAX_BARS: i64 = 240;
/// The series drawn in their own colour; the rest are stacked as "other".
const COLOURS: usize = 7;
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 200.0;

/// The chart of a range's reports per hour and directive.
pub(crate) fn stacked(range: TimeRange, points: &[DirectiveHour]) -> Markup {
    let mut totals: HashMap<&str, u64> = HashMap::new();
    for point in points {
        *totals.entry(&point.directive).or_default() += point.count;
    }
    let mut series: Vec<(&str, u64)> = totals.into_iter().collect();
    series.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let named: Vec<&str> = series.iter().take(COLOURS).map(|(d, _)| *d).collect();
    let has_other = series.len() > COLOURS;
    let slot = |directive: &str| {
        named
            .iter()
            .position(|d| *d == directive)
            .unwrap_or(COLOURS)
    };
    let bars = Bars::new(range);
    let mut cells = vec![vec![0u64; COLOURS + 1]; bars.count];
    for point in points {
        if let Some(bar) = bars.index(point.hour) {
            cells[bar][slot(&point.directive)] += point.count;
        }
    }
    let mut legend: Vec<(usize, String)> = named
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                i,
                if d.is_empty() {
                    "(none)".to_owned()
                } else {
                    (*d).to_owned()
                },
            )
        })
        .collect();
    if has_other {
        legend.push((COLOURS, "other".to_owned()));
    }
    draw(&bars, &cells, &legend)
}

/// The chart of one violation's reports per hour.
pub(crate) fn single(range: TimeRange, points: &[HourCount]) -> Markup {
    let bars = Bars::new(range);
    let mut cells = vec![vec![0u64; 1]; bars.count];
    for point in points {
        if let Some(bar) = bars.index(point.hour) {
            cells[bar][0] += point.count;
        }
    }
    draw(&bars, &cells, &[(0, "reports".to_owned())])
}

/// The bars of a range: each `hours` long, from the hour the range starts in.
struct Bars {
    start: Timestamp,
    hours: i64,
    count: usize,
}

impl Bars {
    fn new(range: TimeRange) -> Self {
        let start = hour_floor(range.since());
        let span = range.to().duration_since(start).as_secs().max(1);
        let total_hours = (span + 3599) / 3600;
        let hours = ((total_hours + MAX_BARS - 1) / MAX_BARS).max(1);
        let count = usize::try_from((total_hours + hours - 1) / hours)
            .unwrap_or(1)
            .max(1);
        Self {
            start,
            hours,
            count,
        }
    }

    fn index(&self, hour: Timestamp) -> Option<usize> {
        let offset = hour.duration_since(self.start).as_secs();
        if offset < 0 {
            return None;
        }
        usize::try_from(offset / 3600 / self.hours)
            .ok()
            .filter(|i| *i < self.count)
    }

    fn start_of(&self, index: usize) -> Timestamp {
        let hours = self.hours * i64::try_from(index).unwrap_or(0);
        self.start + SignedDuration::from_hours(hours)
    }
}

fn draw(bars: &Bars, cells: &[Vec<u64>], legend: &[(usize, String)]) -> Markup {
    let max = cells
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let width = WIDTH / bars.count as f64;
    let scale = if max == 0 { 0.0 } else { HEIGHT / max as f64 };
    let per = if bars.hours == 1 {
        "hour".to_owned()
    } else {
        format!("{} hours", bars.hours)
    };
    let label = |index: usize| bars.start_of(index).strftime("%Y-%m-%d %H:%M").to_string();
    html! {
        figure class="chart" {
            svg viewBox=(format!("0 -14 {WIDTH} {}", HEIGHT + 34.0)) role="img"
                aria-label=(format!("Reports per {per}, at most {max}")) {
                line class="axis" x1="0" y1=(HEIGHT) x2=(WIDTH) y2=(HEIGHT) {}
                text class="label" x="0" y="-2" { (max) " per " (per) }
                @for (index, stack) in cells.iter().enumerate() {
                    @let x = index as f64 * width;
                    @let mut top = HEIGHT;
                    @for (slot, count) in stack.iter().enumerate() {
                        @if *count > 0 {
                            @let height = (*count as f64 * scale).max(1.0);
                            @let y = { top -= height; top };
                            @let name = legend.iter().find(|(s, _)| *s == slot).map_or("", |(_, n)| n.as_str());
                            rect class=(format!("c{slot}")) x=(fmt(x)) y=(fmt(y))
                                width=(fmt((width - 1.0).max(0.5))) height=(fmt(height)) {
                                title { (label(index)) " · " (name) ": " (count) }
                            }
                        }
                    }
                }
                text class="label" x="0" y=(HEIGHT + 16.0) { (label(0)) " UTC" }
                text class="label end" x=(WIDTH) y=(HEIGHT + 16.0) { (label(bars.count - 1)) }
            }
            @if legend.len() > 1 || max == 0 {
                figcaption {
                    @if max == 0 { "No reports in this range." }
                    @for (slot, name) in legend {
                        span class="key" { span class=(format!("swatch c{slot}")) {} (name) }
                    }
                }
            }
        }
    }
}

fn fmt(value: f64) -> String {
    format!("{value:.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn bars_cover_the_range() {
        let day = TimeRange::new(at("2026-12-01T00:30:00Z"), at("2026-12-02T00:30:00Z"));
        let bars = Bars::new(day);
        assert_eq!((bars.hours, bars.count), (1, 25));
        assert_eq!(bars.index(at("2026-12-01T00:00:00Z")), Some(0));
        assert_eq!(bars.index(at("2026-12-02T00:00:00Z")), Some(24));
        assert_eq!(bars.index(at("2026-11-30T23:00:00Z")), None);
        let month = TimeRange::new(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        let bars = Bars::new(month);
        assert_eq!((bars.hours, bars.count), (3, 240));
    }

    #[test]
    fn hostile_directives_are_text() {
        let range = TimeRange::new(at("2026-12-01T00:00:00Z"), at("2026-12-01T02:00:00Z"));
        let point = DirectiveHour {
            hour: at("2026-12-01T01:00:00Z"),
            directive: "</title><script>alert(1)</script>".to_owned(),
            count: 3,
        };
        let svg = stacked(range, &[point]).into_string();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;/title&gt;&lt;script&gt;"), "{svg}");
        assert!(svg.contains("class=\"c0\""), "{svg}");
        assert!(!svg.contains("style="), "{svg}");
    }
}
