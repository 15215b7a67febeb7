//! `csp-reports config --print`: the effective settings of `serve`, where each came from,
//! secrets masked.

use std::ffi::OsString;
use std::fmt::Write;

use clap::parser::ValueSource;
use clap::{ArgAction, Args as ClapArgs, CommandFactory};

use super::file::{Expanded, with_file};
use crate::{Cli, Failure};

/// What a masked secret reads as.
const MASK: &str = "********";

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct ConfigArgs {
    /// Print the settings `serve` would run with (command line, environment, config file,
    /// defaults), as a config file, with passwords masked.
    #[arg(long, required = true)]
    pub(crate) print: bool,
}

/// Prints the effective settings of `serve`: those of this command line's global options,
/// the environment and the config file.
pub(crate) fn print(argv: &[OsString]) -> Result<(), Failure> {
    // The same command line with `serve` in place of `config --print`: what is left are
    // the global options.
    let at = argv
        .iter()
        .position(|a| a == "config")
        .unwrap_or(argv.len());
    let mut serve = argv[..at].to_vec();
    serve.push("serve".into());
    serve.extend(
        argv.iter()
            .skip(at + 1)
            .filter(|a| *a != "--print")
            .cloned(),
    );
    let expanded = with_file(&serve)?;
    print!("{}", render(&expanded)?);
    Ok(())
}

fn render(expanded: &Expanded) -> Result<String, Failure> {
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(&expanded.args)
        .map_err(|e| {
            Failure::usage(
                e.render()
                    .to_string()
                    .trim_start_matches("error: ")
                    .trim_end(),
            )
        })?;
    let Some(serve) = matches.subcommand_matches("serve") else {
        return Err(Failure::usage("cannot read the settings of serve"));
    };
    let mut out = String::new();
    let file = expanded.file.as_ref().map_or_else(
        || "no config file".to_owned(),
        |f| format!("the file {}", f.display()),
    );
    let _ = writeln!(
        out,
        "# The settings of `csp-reports serve`: from the command line, the environment, \
         {file}, or the defaults. Secrets are masked."
    );
    let arguments = command.get_arguments().chain(
        command
            .find_subcommand("serve")
            .into_iter()
            .flat_map(|c| c.get_arguments()),
    );
    for arg in arguments {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        ) {
            continue;
        }
        let source = if expanded.from_file.iter().any(|k| k == long) {
            "config file".to_owned()
        } else {
            match serve.value_source(id) {
                Some(ValueSource::CommandLine) => "command line".to_owned(),
                Some(ValueSource::EnvVariable) => format!(
                    "environment {}",
                    arg.get_env()
                        .map(|e| e.to_string_lossy())
                        .unwrap_or_default()
                ),
                Some(ValueSource::DefaultValue) => "default".to_owned(),
                _ => {
                    let _ = writeln!(out, "# {long} = (not set)");
                    continue;
                }
            }
        };
        let values: Vec<String> = serve
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| mask(long, &v.to_string_lossy()))
            .collect();
        let value = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => {
                toml::Value::Boolean(values.first().is_some_and(|v| v == "true"))
            }
            ArgAction::Append => {
                toml::Value::Array(values.into_iter().map(toml::Value::String).collect())
            }
            _ => scalar(values.into_iter().next().unwrap_or_default()),
        };
        let _ = writeln!(out, "{long} = {value}  # {source}");
    }
    Ok(out)
}

/// A number when the text is one exactly, else a string.
fn scalar(text: String) -> toml::Value {
    match text.parse::<i64>() {
        Ok(n) if n.to_string() == text => toml::Value::Integer(n),
        _ => toml::Value::String(text),
    }
}

/// The value with its secrets masked: the whole of a setting named for a secret, and in any
/// value the password of a URL (`scheme://user:password@host`) and `password=` parameters
/// (`?password=...`, or a `key=value` connection string).
pub(crate) fn mask(key: &str, value: &str) -> String {
    if ["password", "secret", "token"]
        .iter()
        .any(|word| key.contains(word))
    {
        return MASK.to_owned();
    }
    let mut value = value.to_owned();
    if let Some(scheme_end) = value.find("://") {
        let start = scheme_end + 3;
        let end = value[start..]
            .find(['/', '?', '#'])
            .map_or(value.len(), |i| start + i);
        if let Some(at) = value[start..end].rfind('@')
            && let Some(colon) = value[start..start + at].find(':')
        {
            value.replace_range(start + colon + 1..start + at, MASK);
        }
    }
    let mut from = 0;
    while let Some(found) = value[from..].to_ascii_lowercase().find("password=") {
        let start = from + found + "password=".len();
        let end = value[start..]
            .find(['&', ' ', '#'])
            .map_or(value.len(), |i| start + i);
        value.replace_range(start..end, MASK);
        from = start + MASK.len();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        let cases = [
            (
                "database-url",
                "postgres://csp:hunter2@db:5432/csp",
                "postgres://csp:********@db:5432/csp",
            ),
            (
                "database-url",
                "postgres://csp@db/csp",
                "postgres://csp@db/csp",
            ),
            (
                "database-url",
                "postgres://db/csp?user=csp&password=hunter2&sslmode=require",
                "postgres://db/csp?user=csp&password=********&sslmode=require",
            ),
            (
                "database-url",
                "host=db user=csp password=hunter2 dbname=csp",
                "host=db user=csp password=******** dbname=csp",
            ),
            (
                "database-url",
                "host=db PASSWORD=hunter2",
                "host=db PASSWORD=********",
            ),
            (
                "smtp-url",
                "smtp://user:p@ss:w0rd@mail.example:587?tls=required",
                "smtp://user:********@mail.example:587?tls=required",
            ),
            ("smtp-url", "smtps://mail.example", "smtps://mail.example"),
            (
                "database-url",
                "sqlite://./csp-reports.db",
                "sqlite://./csp-reports.db",
            ),
            ("admin-password", "hunter2", "********"),
            ("smtp-password", "", "********"),
            ("webhook-token", "t", "********"),
            ("listen", "127.0.0.1:8080", "127.0.0.1:8080"),
            ("path", "/password=x", "/password=********"),
        ];
        for (key, value, masked) in cases {
            assert_eq!(mask(key, value), masked, "{key} = {value}");
        }
    }

    #[test]
    fn numbers_stay_numbers() {
        assert_eq!(scalar("1048576".into()), toml::Value::Integer(1_048_576));
        assert_eq!(scalar("007".into()), toml::Value::String("007".into()));
        assert_eq!(scalar("30s".into()), toml::Value::String("30s".into()));
    }
}
