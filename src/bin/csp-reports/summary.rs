//! `csp-reports summary`: what was reported in a time range, as text, JSON or HTML.

use std::fmt::Write;

use clap::{Args as ClapArgs, ValueEnum};
use jiff::Zoned;
use tower_csp_reports::sink::smtp::escape_html as escape;
use tower_csp_reports::store::{Count, Summary, SummaryOptions, TimeRange};

use crate::Failure;
use crate::db::{DbArgs, failed};
use crate::mail::MailArgs;
use crate::time::{FORMS, parse_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For a terminal or a plain-text email.
    Text,
    /// Stable, for scripts.
    Json,
    /// A self-contained page with bar charts.
    Html,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    db: DbArgs,

    /// Start of the range (included); default: yesterday at midnight, local time.
    #[arg(long, long_help = format!("Start of the range (included): {FORMS}. Default: yesterday at midnight, local time."))]
    since: Option<String>,

    /// End of the range (excluded); default: today at midnight, local time, or now when
    /// --since is given.
    #[arg(long, long_help = format!("End of the range (excluded): {FORMS}. Default: today at midnight, local time (yesterday's summary), or now when --since is given."))]
    to: Option<String>,

    /// How many entries each top list has.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    top: u16,

    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Count ignored violations in the top lists too (by default they are left out and
    /// counted apart).
    #[arg(long)]
    include_ignored: bool,

    /// Also send the summary by email (text and HTML), with the SMTP options.
    #[arg(long)]
    email: bool,

    #[command(flatten)]
    mail: MailArgs,
}

pub(crate) async fn run(args: &Args) -> Result<(), Failure> {
    let now = Zoned::now();
    let time = |text: &Option<String>, default: &str| {
        parse_time(text.as_deref().unwrap_or(default), &now).map_err(Failure::usage)
    };
    let since = time(&args.since, "yesterday")?;
    // `--since "1 hour ago"` alone means up to now, not up to last midnight.
    let to = time(&args.to, if args.since.is_some() { "now" } else { "today" })?;
    if since >= to {
        return Err(Failure::usage(format!(
            "--since ({since}) must be before --to ({to})"
        )));
    }
    if args.email {
        args.mail.check()?;
    }
    let opened = args.db.existing().await?;
    let options = SummaryOptions::new()
        .top(usize::from(args.top))
        .include_ignored(args.include_ignored);
    let summary = opened
        .store
        .summary(TimeRange::new(since, to), &options)
        .await
        .map_err(failed("cannot read the summary"))?;
    let tz = now.time_zone().clone();
    let output = match args.format {
        Format::Text => text(&summary, &tz),
        Format::Html => html(&summary, &tz),
        Format::Json => {
            serde_json::to_string_pretty(&summary).map_err(|e| Failure::runtime(e.to_string()))?
                + "\n"
        }
    };
    print!("{output}");
    if args.email {
        let subject = format!(
            "CSP reports: {} from {}",
            summary.total,
            range(&summary, &tz)
        );
        args.mail
            .send(&subject, text(&summary, &tz), html(&summary, &tz))
            .await?;
        eprintln!("summary sent to {}", args.mail.smtp_to.join(", "));
    }
    Ok(())
}

fn local(ts: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

fn range(summary: &Summary, tz: &jiff::tz::TimeZone) -> String {
    format!("{} to {}", local(summary.since, tz), local(summary.to, tz))
}

/// The top lists, each with a title and rows of (count, label).
fn lists(summary: &Summary) -> Vec<(&'static str, Vec<(u64, String)>)> {
    let rows = |counts: &[Count]| counts.iter().map(|c| (c.count, c.value.clone())).collect();
    vec![
        (
            "Top violation sources (documents)",
            rows(&summary.top_sources),
        ),
        (
            "Top blocked (origins and keywords)",
            rows(&summary.top_blocked),
        ),
        ("Top directives", rows(&summary.top_directives)),
        (
            "Top violations",
            summary
                .top_fingerprints
                .iter()
                .map(|f| {
                    let part = |v: &str| {
                        if v.is_empty() {
                            "-".to_owned()
                        } else {
                            v.to_owned()
                        }
                    };
                    (
                        f.count,
                        format!(
                            "{}  {} blocked {} on {} ({})",
                            f.fingerprint,
                            part(&f.directive),
                            part(&f.blocked),
                            part(&f.source),
                            f.status
                        ),
                    )
                })
                .collect(),
        ),
    ]
}

/// Shortens a raw report for a listing, on a character boundary.
fn excerpt(raw: &str, max: usize) -> String {
    let one_line: String = raw
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

pub(crate) fn text(summary: &Summary, tz: &jiff::tz::TimeZone) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "CSP reports from {} ({})",
        range(summary, tz),
        tz.iana_name().unwrap_or("local time")
    );
    let _ = writeln!(
        out,
        "Total: {} (valid {}, invalid {})",
        summary.total, summary.valid, summary.invalid
    );
    if summary.ignored > 0 {
        let _ = writeln!(
            out,
            "Left out: {} reports of ignored violations",
            summary.ignored
        );
    }
    for (title, rows) in lists(summary) {
        let _ = writeln!(out, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(out, "  (none)");
        }
        for (count, label) in rows {
            let _ = writeln!(out, "  {count:>8}  {label}");
        }
    }
    let _ = writeln!(out, "\nFirst invalid reports");
    if summary.invalid_reports.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for report in &summary.invalid_reports {
        let _ = writeln!(
            out,
            "  {}  {}\n      {}",
            local(report.received_at, tz),
            report.reason.as_deref().unwrap_or("invalid"),
            excerpt(&report.raw, 200)
        );
    }
    out
}

pub(crate) fn html(summary: &Summary, tz: &jiff::tz::TimeZone) -> String {
    let mut out = String::new();
    let title = format!("CSP reports from {}", range(summary, tz));
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}table{{border-collapse:collapse;width:100%}}\
td{{padding:.2rem .5rem;vertical-align:top}}td.n{{text-align:right;white-space:nowrap}}td.l{{word-break:break-all}}\
.bar{{background:#c0392b;height:.8rem}}pre{{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.5rem}}\
</style></head><body>\n<h1>{t}</h1>\n<p>Total: <b>{total}</b> (valid {valid}, invalid {invalid})</p>\n",
        t = escape(&title),
        total = summary.total,
        valid = summary.valid,
        invalid = summary.invalid
    );
    for (heading, rows) in lists(summary) {
        let _ = writeln!(out, "<h2>{}</h2>", escape(heading));
        if rows.is_empty() {
            out.push_str("<p>(none)</p>\n");
            continue;
        }
        let max = rows.iter().map(|(n, _)| *n).max().unwrap_or(1).max(1);
        out.push_str("<table>\n");
        for (count, label) in rows {
            let width = count * 100 / max;
            let _ = writeln!(
                out,
                "<tr><td class=\"n\">{count}</td><td style=\"width:30%\"><div class=\"bar\" style=\"width:{width}%\"></div></td><td class=\"l\">{}</td></tr>",
                escape(&label)
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("<h2>First invalid reports</h2>\n");
    if summary.invalid_reports.is_empty() {
        out.push_str("<p>(none)</p>\n");
    }
    for report in &summary.invalid_reports {
        let _ = writeln!(
            out,
            "<p>{} — {}</p><pre>{}</pre>",
            escape(&local(report.received_at, tz)),
            escape(report.reason.as_deref().unwrap_or("invalid")),
            escape(&excerpt(&report.raw, 2000))
        );
    }
    out.push_str("</body></html>\n");
    out
}
