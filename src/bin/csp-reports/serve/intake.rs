//! What `serve` lets in: the rate limit, sampling, and the filters beyond `--filter`
//! (`--filter-file`, `--allow-host`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args as ClapArgs;
use tower_csp_reports::filter::{
    AllowHosts, DefaultFilter, DropHosts, DropPrefixes, DropSchemes, Filter, RequestFacts,
};
use tower_csp_reports::{CspReportLayerBuilder, RateLimit, Report, Sampling};

use super::args::{FilterChoice, parse_positive_duration};
use crate::Failure;

#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Rate limit, sampling and filters")]
pub(crate) struct IntakeArgs {
    /// At most N report requests per client in a burst, refilled at N per period (e.g.
    /// 20/1m); past it a client is answered 429 with Retry-After. IPv6 clients are keyed by
    /// /64; behind a proxy, give --trusted-proxy. Default: no limit.
    #[arg(long, env = "CSP_REPORTS_RATE_LIMIT", value_name = "N/PERIOD", value_parser = parse_rate_limit)]
    pub(crate) rate_limit: Option<RateLimit>,

    /// Keep the first K reports of each violation per --sampling-period, then one in N
    /// (e.g. 10,100); the rest are counted as sampled. Default: keep every report.
    #[arg(long, env = "CSP_REPORTS_SAMPLING", value_name = "K,N", value_parser = parse_sampling)]
    pub(crate) sampling: Option<Sampling>,

    /// How long a violation's sampling count lasts before it starts again.
    #[arg(long, env = "CSP_REPORTS_SAMPLING_PERIOD", default_value = "1h", value_parser = parse_positive_duration)]
    pub(crate) sampling_period: Duration,

    /// A file of more reports to drop, one a line: a scheme ending in a colon
    /// (`ms-appx-web:`), a host and its subdomains (`ads.example`), or a URL prefix
    /// (`https://cdn.example/ads/`), matched against the blocked URI and the source file.
    /// `#` starts a comment.
    #[arg(long, env = "CSP_REPORTS_FILTER_FILE", value_name = "FILE")]
    pub(crate) filter_file: Option<PathBuf>,

    /// Keep only reports whose document is on this host or its subdomains (repeat, or
    /// separate with commas); the others are counted as filtered. Default: every host.
    #[arg(
        long = "allow-host",
        env = "CSP_REPORTS_ALLOW_HOSTS",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub(crate) allow_hosts: Vec<String>,
}

impl IntakeArgs {
    /// Sets the rate limit, the sampling and the filter (`choice` being `--filter`).
    pub(crate) fn apply(
        &self,
        mut layer: CspReportLayerBuilder,
        choice: FilterChoice,
    ) -> Result<CspReportLayerBuilder, Failure> {
        if let Some(limit) = self.rate_limit {
            layer = layer.rate_limit(limit);
        }
        if let Some(sampling) = self.sampling {
            layer = layer.sampling(sampling.period(self.sampling_period));
        }
        let mut parts: Vec<Box<dyn Filter>> = Vec::new();
        if choice == FilterChoice::Default {
            parts.push(Box::new(DefaultFilter::new()));
        }
        if let Some(path) = &self.filter_file {
            parts.extend(FilterFile::read(path)?.filters(path)?);
        }
        if !self.allow_hosts.is_empty() {
            let allow = AllowHosts::new(self.allow_hosts.iter().cloned())
                .map_err(|e| Failure::usage(format!("--allow-host: {e}")))?;
            parts.push(Box::new(allow));
        }
        Ok(
            layer.filter(move |report: &Report, facts: &RequestFacts<'_>| {
                parts.iter().all(|part| part.keep(report, facts))
            }),
        )
    }
}

/// `N/PERIOD`, e.g. `20/1m`.
fn parse_rate_limit(text: &str) -> Result<RateLimit, String> {
    let bad = || format!("cannot read {text:?} as a rate (e.g. 20/1m: 20 requests a minute)");
    let (requests, period) = text.split_once('/').ok_or_else(bad)?;
    let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
    let period = parse_positive_duration(period.trim())?;
    RateLimit::per_client(requests, period).map_err(|e| e.to_string())
}

/// `K,N`, e.g. `10,100`.
fn parse_sampling(text: &str) -> Result<Sampling, String> {
    let bad =
        || format!("cannot read {text:?} as K,N (e.g. 10,100: the first 10, then one in 100)");
    let (first, one_in) = text.split_once(',').ok_or_else(bad)?;
    let first: u64 = first.trim().parse().map_err(|_| bad())?;
    let one_in: u64 = one_in.trim().parse().map_err(|_| bad())?;
    Sampling::new(first, one_in).map_err(|e| e.to_string())
}

/// The entries of a filter file, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
struct FilterFile {
    schemes: Vec<String>,
    hosts: Vec<String>,
    prefixes: Vec<String>,
}

impl FilterFile {
    fn read(path: &Path) -> Result<Self, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!(
                "cannot read the filter file {}: {e}",
                path.display()
            ))
        })?;
        Self::parse(&text).map_err(|(line, reason)| {
            Failure::usage(format!(
                "filter file {}, line {line}: {reason}",
                path.display()
            ))
        })
    }

    /// The entries, or the first bad line's number and what is wrong with it.
    fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut file = Self::default();
        for (index, line) in text.lines().enumerate() {
            let entry = match line.find('#') {
                Some(at) => &line[..at],
                None => line,
            }
            .trim();
            if entry.is_empty() {
                continue;
            }
            let bad = |what: String| (index + 1, what);
            if entry.contains("://") {
                // Checked here so the error names the line.
                DropPrefixes::new([entry]).map_err(|e| bad(e.to_string()))?;
                file.prefixes.push(entry.to_owned());
            } else if let Some(scheme) = entry.strip_suffix(':') {
                if !is_scheme(scheme) {
                    return Err(bad(format!(
                        "{entry:?} is not a scheme (e.g. ms-appx-web:)"
                    )));
                }
                file.schemes.push(scheme.to_owned());
            } else {
                // The library's check of a host name, so both accept the same hosts.
                AllowHosts::new([entry]).map_err(|_| {
                    bad(format!(
                        "{entry:?} is not a scheme (ms-appx-web:), a host (ads.example) \
                         or a URL prefix (https://cdn.example/ads/)"
                    ))
                })?;
                file.hosts.push(entry.to_owned());
            }
        }
        Ok(file)
    }

    fn filters(self, path: &Path) -> Result<Vec<Box<dyn Filter>>, Failure> {
        let mut parts: Vec<Box<dyn Filter>> = Vec::new();
        if !self.schemes.is_empty() {
            parts.push(Box::new(DropSchemes::new(self.schemes)));
        }
        if !self.hosts.is_empty() {
            parts.push(Box::new(DropHosts::new(self.hosts)));
        }
        if !self.prefixes.is_empty() {
            let prefixes = DropPrefixes::new(self.prefixes)
                .map_err(|e| Failure::usage(format!("filter file {}: {e}", path.display())))?;
            parts.push(Box::new(prefixes));
        }
        Ok(parts)
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_files() {
        let text = "# noise we know\n\
                    \n\
                    ms-appx-web:\n\
                    ads.example   # and its subdomains\n\
                    https://cdn.example/ads/\n\
                    \tTracker.Example\t\n";
        let file = FilterFile::parse(text).unwrap();
        assert_eq!(file.schemes, ["ms-appx-web"]);
        assert_eq!(file.hosts, ["ads.example", "Tracker.Example"]);
        assert_eq!(file.prefixes, ["https://cdn.example/ads/"]);
        assert_eq!(FilterFile::parse("").unwrap(), FilterFile::default());
        // (text, bad line, in the reason)
        let cases = [
            (
                "ads.example\nnot a host\n",
                2,
                "\"not a host\" is not a scheme",
            ),
            ("1http:\n", 1, "is not a scheme"),
            (":\n", 1, "is not a scheme"),
            ("# x\n\nhttps:///ads\n", 3, "not an absolute URL"),
            ("ads.example/path\n", 1, "a URL prefix"),
        ];
        for (text, line, reason) in cases {
            let (at, why) = FilterFile::parse(text).unwrap_err();
            assert_eq!(at, line, "{text:?}");
            assert!(why.contains(reason), "{text:?}: {why}");
        }
    }

    #[test]
    fn rates_and_samplings() {
        assert_eq!(
            parse_rate_limit("20/1m"),
            Ok(RateLimit::per_client(20, Duration::from_secs(60)).unwrap())
        );
        assert_eq!(
            parse_rate_limit(" 5 / 10s "),
            Ok(RateLimit::per_client(5, Duration::from_secs(10)).unwrap())
        );
        for bad in ["20", "x/1m", "20/x", "0/1m", "20/0s", "-1/1m", ""] {
            assert!(parse_rate_limit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_sampling("10,100"),
            Ok(Sampling::new(10, 100).unwrap())
        );
        assert_eq!(parse_sampling("0, 1"), Ok(Sampling::new(0, 1).unwrap()));
        for bad in ["10", "10,0", "a,1", "1,b", "-1,2", ""] {
            assert!(parse_sampling(bad).is_err(), "{bad:?}");
        }
    }
}
