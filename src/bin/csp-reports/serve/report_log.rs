//! The per-report log line: its level and target, or none.

use clap::{Args as ClapArgs, ValueEnum};
use tower_csp_reports::sink::TracingSink;
use tracing::Level;

/// The level of the per-report log line, or `off` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportLog {
    /// No line per report (the store is the record).
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct ReportLogArgs {
    /// The level of the log line written for each report, or off. The line is written when
    /// --log lets its level and target through (e.g. --log info,csp_reports=debug).
    #[arg(long, env = "CSP_REPORTS_REPORT_LOG", value_enum, default_value_t = ReportLog::Warn, ignore_case = true)]
    pub(crate) report_log: ReportLog,

    /// The target (the logger's name) of the per-report log line, for routing or filtering
    /// it apart from the collector's own lines.
    #[arg(
        long,
        env = "CSP_REPORTS_REPORT_LOG_TARGET",
        default_value = "csp_reports",
        value_name = "NAME",
        value_parser = parse_target
    )]
    pub(crate) report_log_target: String,
}

impl ReportLogArgs {
    /// The log sink, unless the line is off.
    pub(crate) fn sink(&self) -> Option<TracingSink> {
        let level = match self.report_log {
            ReportLog::Off => return None,
            ReportLog::Error => Level::ERROR,
            ReportLog::Warn => Level::WARN,
            ReportLog::Info => Level::INFO,
            ReportLog::Debug => Level::DEBUG,
            ReportLog::Trace => Level::TRACE,
        };
        Some(
            TracingSink::new()
                .target(&self.report_log_target)
                .level(level),
        )
    }
}

/// A target that a `--log` filter can name: letters, digits, `_`, `-`, `.` and `::`.
fn parse_target(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.split("::").all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?}: a target is letters, digits, '_', '-', '.' and '::' (e.g. security::csp)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for good in ["csp_reports", "security::csp", "app.csp-reports", "x"] {
            assert_eq!(parse_target(good).as_deref(), Ok(good));
        }
        for bad in ["", "a b", "a=b", "a,b", "::a", "a::", "a:b", "é"] {
            assert!(parse_target(bad).is_err(), "{bad:?}");
        }
    }
}
