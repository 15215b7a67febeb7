//! `csp-reports policy`: the policy the stored violations of a range say the pages need.

use clap::{Args as ClapArgs, ValueEnum};
use jiff::Zoned;
use tower_csp_reports::error::chain;
use tower_csp_reports::policy::{BuildError, Policy, PolicyBuilder, ProposeError};
use tower_csp_reports::store::{EvidenceQuery, TimeRange};

use crate::Failure;
use crate::db::{DbArgs, failed};
use crate::time::{FORMS, parse_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// For a terminal: the header, then each change with the reports behind it.
    Text,
    /// The same, for scripts.
    Json,
}

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(flatten)]
    db: DbArgs,

    /// Start of the range of reports to learn from (included).
    #[arg(long, default_value = "7d", long_help = format!("Start of the range of reports to learn from (included): {FORMS}."))]
    since: String,

    /// End of the range (excluded).
    #[arg(long, default_value = "now", long_help = format!("End of the range (excluded): {FORMS}."))]
    to: String,

    #[arg(
        long,
        env = "CSP_REPORTS_DOCUMENT_PREFIX",
        value_name = "URL",
        help = "Only violations on pages whose URL starts with this (e.g. https://example.com/)."
    )]
    document_prefix: Option<String>,

    /// The current policy to start from (default: the original-policy most reports carried).
    #[arg(long, env = "CSP_REPORTS_BASE_POLICY", value_name = "POLICY")]
    base: Option<String>,

    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Allow blocked inline code with 'unsafe-inline' instead of only listing it.
    #[arg(long)]
    allow_unsafe_inline: bool,

    /// Allow blocked eval with 'unsafe-eval' instead of only listing it.
    #[arg(long)]
    allow_unsafe_eval: bool,

    /// Learn from ignored violations too (by default they are left out).
    #[arg(long)]
    include_ignored: bool,

    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        value_parser = clap::value_parser!(u16).range(2..),
        help = "From how many subdomains of one site (same scheme and port) a directive gets \
                https://*.site instead of each host."
    )]
    wildcard_threshold: u16,

    /// Never merge subdomains into a wildcard (for sites whose subdomains are not all yours).
    #[arg(long, conflicts_with = "wildcard_threshold")]
    no_wildcards: bool,

    /// Sources seen in fewer reports are listed as not used, not added (anyone can send
    /// reports: a minimum keeps a few forged ones from adding a source).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    min_reports: u64,
}

pub(crate) async fn run(args: &Args) -> Result<(), Failure> {
    let now = Zoned::now();
    let time = |text: &str, option: &str| {
        parse_time(text, &now).map_err(|e| Failure::usage(format!("invalid {option}: {e}")))
    };
    let since = time(&args.since, "--since")?;
    let to = time(&args.to, "--to")?;
    if since >= to {
        return Err(Failure::usage(format!(
            "--since ({since}) must be before --to ({to})"
        )));
    }
    let base = args
        .base
        .as_deref()
        .map(|text| Policy::parse(text).map_err(|e| Failure::usage(format!("invalid --base: {e}"))))
        .transpose()?;
    let wildcards = (!args.no_wildcards).then_some(usize::from(args.wildcard_threshold));
    let proposer = PolicyBuilder::new()
        .wildcard_threshold(wildcards)
        .min_reports(args.min_reports)
        .allow_unsafe_inline(args.allow_unsafe_inline)
        .allow_unsafe_eval(args.allow_unsafe_eval)
        .build()?;
    let query = EvidenceQuery::new(TimeRange::new(since, to))
        .document_prefix(args.document_prefix.clone().unwrap_or_default())
        .include_ignored(args.include_ignored);
    let opened = args.db.existing().await?;
    let proposal = proposer
        .propose_from_store(opened.store.as_ref(), &query, base.as_ref())
        .await
        .map_err(|error| match error {
            ProposeError::Store(error) => failed("cannot read the violations")(error),
            ProposeError::Build(BuildError::NothingToBuildFrom) => {
                let pages = match query.prefix() {
                    Some(prefix) => format!(" on pages under {prefix}"),
                    None => String::new(),
                };
                Failure::runtime(format!(
                    "nothing to build from: no violations{pages} from {since:.0} to {to:.0} \
                     (widen --since, or check --document-prefix)"
                ))
            }
            ProposeError::Build(BuildError::NoCurrentPolicy) => Failure::runtime(
                "no current policy: the reports carry no usable original-policy; \
                 give the policy they were sent under with --base",
            ),
            other => Failure::runtime(chain(&other)),
        })?;
    match args.format {
        Format::Text => print!("{proposal}"),
        Format::Json => println!("{}", proposal.to_json()),
    }
    Ok(())
}
