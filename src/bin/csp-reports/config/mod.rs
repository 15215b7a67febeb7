//! `--config FILE`: the settings of every command from a TOML file, whose keys are the long
//! options (`listen = "0.0.0.0:8080"`, `path = ["/a", "/b"]`, `no-store = true`); and
//! `csp-reports config --print`, the effective settings of `serve` with secrets masked.
//!
//! Precedence: the command line, then the environment (`CSP_REPORTS_*`), then the file,
//! then the defaults.

mod file;
mod print;

pub(crate) use file::with_file;
pub(crate) use print::{ConfigArgs, print};
