//! The NATS JetStream options shared by `serve --nats-url` (collectors publish) and `consume`
//! (consumers read into the store): the servers and the stream, which both create when it
//! is missing, with the same limits.

use std::time::Duration;

use clap::Args as ClapArgs;
use jiff::{Span, SpanRelativeTo};
use tower_csp_reports::error::chain;
use tower_csp_reports::nats::{NatsError, StreamSettings};

use crate::Failure;

#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "NATS JetStream")]
pub(crate) struct NatsArgs {
    /// NATS servers (nats://host:4222 or tls://host:4222, with user:password@ if needed;
    /// several separated by commas). `serve` then publishes every report to the stream
    /// instead of writing a database; `consume` reads it into the database.
    #[arg(long, env = "CSP_REPORTS_NATS_URL")]
    pub(crate) nats_url: Option<String>,

    /// The JetStream stream (created when missing, with the limits below).
    #[arg(long, env = "CSP_REPORTS_NATS_STREAM", default_value = "CSP_REPORTS")]
    pub(crate) nats_stream: String,

    /// The subjects reports are published on: PREFIX.TYPE, TYPE being the report type.
    #[arg(
        long,
        env = "CSP_REPORTS_NATS_SUBJECT_PREFIX",
        default_value = "csp.reports"
    )]
    pub(crate) nats_subject_prefix: String,

    /// How long the stream keeps a report, read or not (when it creates the stream).
    #[arg(long, env = "CSP_REPORTS_NATS_MAX_AGE", default_value = "7d", value_parser = parse_age)]
    pub(crate) nats_max_age: Duration,

    /// The most the stream holds, in bytes (suffixes KiB, MiB, GiB, TiB, or KB, MB, GB, TB);
    /// when full it refuses new reports, and collectors retry (when it creates the stream).
    #[arg(long, env = "CSP_REPORTS_NATS_MAX_BYTES", default_value = "1GiB", value_parser = parse_bytes)]
    pub(crate) nats_max_bytes: u64,

    /// How many servers of the cluster keep each report (3 in production; when it creates
    /// the stream).
    #[arg(long, env = "CSP_REPORTS_NATS_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub(crate) nats_replicas: u8,
}

impl NatsArgs {
    /// The stream of these options. Its settings are checked by the `build()` of the sink
    /// or consumer it is given to.
    pub(crate) fn stream(&self) -> StreamSettings {
        let settings = StreamSettings::new()
            .name(&self.nats_stream)
            .subject_prefix(&self.nats_subject_prefix)
            .max_age(self.nats_max_age)
            .max_bytes(self.nats_max_bytes)
            .replicas(usize::from(self.nats_replicas));
        // The default duplicate window (10 minutes) cannot exceed a shorter max age.
        let window = Duration::from_secs(600).min(self.nats_max_age);
        settings.duplicate_window(window)
    }
}

/// A NATS failure at start-up, as a failure of the command: a server that cannot be
/// reached is a runtime failure (exit 1); settings the server refuses, or a stream that
/// exists with other subjects, are the user's to fix (exit 2).
pub(crate) fn nats_failed(doing: &str) -> impl FnOnce(NatsError) -> Failure + '_ {
    move |error| {
        let message = format!("{doing}: {}", chain(&error));
        if error.is_transient() {
            Failure::runtime(message)
        } else {
            Failure::usage(message)
        }
    }
}

/// A duration with days allowed (`7d`, `36h`, `1 day`), days of 24 hours.
fn parse_age(text: &str) -> Result<Duration, String> {
    let span: Span = text
        .parse()
        .map_err(|_| format!("cannot read {text:?} as a duration (e.g. 7d, 36h)"))?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?}: {e}"))?;
    let duration = Duration::try_from(duration.abs()).map_err(|e| format!("{text:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("{text:?}: must be longer than zero"));
    }
    Ok(duration)
}

/// A size in bytes: a number, with an optional binary (KiB) or decimal (KB) suffix.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{text:?}: use bytes, or a suffix such as MiB or GB"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("cannot read {text:?} as a size in bytes (e.g. 10GiB)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1048576", Some(1 << 20)),
            ("1GiB", Some(1 << 30)),
            ("512 MiB", Some(512 << 20)),
            ("10GB", Some(10_000_000_000)),
            ("2t", Some(2 << 40)),
            ("", None),
            ("GiB", None),
            ("1.5GiB", None),
            ("-1", None),
            ("1 PiB", None),
            ("99999999999999999999", None),
            ("18446744073709551615TiB", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_bytes(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn ages() {
        let day = 24 * 3600;
        let cases: &[(&str, Option<u64>)] = &[
            ("7d", Some(7 * day)),
            ("1 day", Some(day)),
            ("36h", Some(36 * 3600)),
            ("90s", Some(90)),
            ("0s", None),
            ("a week", None),
            ("", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_age(text).ok().map(|d| d.as_secs()), want, "{text:?}");
        }
    }
}
