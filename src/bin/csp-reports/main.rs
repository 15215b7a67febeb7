//! `csp-reports`: a standalone collector of Content-Security-Policy reports, the consumer
//! that writes a NATS JetStream stream of them into the store, and the jobs that run from
//! cron: schema migration, summaries, retention and the policy builder.

mod clean;
mod config;
mod consume;
mod db;
mod health;
mod mail;
mod metrics;
mod nats;
mod policy;
mod serve;
mod summary;
mod time;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Collect, store and summarize Content-Security-Policy violation reports.
#[derive(Debug, Parser)]
#[command(
    name = "csp-reports",
    version,
    about = "Collect, store and summarize Content-Security-Policy violation reports.",
    after_help = "Every option can also be set with the environment variable shown beside it."
)]
struct Cli {
    /// How logs are written: text for people, json for one object per line.
    #[arg(long, global = true, env = "CSP_REPORTS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Which logs are written (a tracing filter, e.g. info or csp_reports=debug).
    #[arg(long, global = true, env = "CSP_REPORTS_LOG", default_value = "info")]
    log: String,

    /// A TOML file of settings, keyed by the long options (listen = "0.0.0.0:8080"); the
    /// command line and the environment override it.
    #[arg(long, global = true, env = "CSP_REPORTS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Receive reports over HTTP(S), store them (SQLite or Postgres), log and mail them.
    Serve(Box<serve::Args>),
    /// Read the NATS JetStream stream that `serve --nats-url` publishes to into the
    /// database (SQLite or Postgres); several may share the work.
    Consume(Box<consume::Args>),
    /// Create or upgrade the database schema.
    Migrate(db::DbArgs),
    /// Summarize the reports of a time range (default: yesterday).
    Summary(summary::Args),
    /// Delete old reports (default: older than one week).
    Clean(clean::Args),
    /// Show the effective settings of `serve`, secrets masked (--print).
    Config(config::ConfigArgs),
    /// Propose the policy the stored violations say the pages need (default: the last 7 days).
    Policy(policy::Args),
    /// Ask a running collector whether it is alive (for container health checks).
    Health(health::Args),
}

/// A failure, with the exit code it deserves.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// Bad input from the user: exit code 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }

    /// Something outside failed (a server, a file): exit code 1.
    pub(crate) fn runtime(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<tower_csp_reports::ConfigError> for Failure {
    fn from(error: tower_csp_reports::ConfigError) -> Self {
        Self::usage(error.to_string())
    }
}

fn init_logs(format: LogFormat, filter: &str) -> Result<(), Failure> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| Failure::usage(format!("invalid --log filter {filter:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
    }
    Ok(())
}

async fn run(cli: Cli, argv: &[OsString]) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => serve::serve(&args).await,
        Command::Consume(args) => consume::run(&args).await,
        Command::Migrate(args) => db::migrate(&args).await,
        Command::Summary(args) => summary::run(&args).await,
        Command::Clean(args) => clean::run(&args).await,
        Command::Config(_) => config::print(argv),
        Command::Policy(args) => policy::run(&args).await,
        Command::Health(args) => health::run(&args).await,
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match config::with_file(&argv) {
        Ok(expanded) => Cli::parse_from(expanded.args),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            return ExitCode::from(failure.code);
        }
    };
    if let Err(failure) = init_logs(cli.log_format, &cli.log) {
        eprintln!("error: {}", failure.message);
        return ExitCode::from(failure.code);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &argv)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn arguments_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
