//! Reading the config file into the command line.
//!
//! The file is turned into `--key=value` arguments added after the real ones, but only for
//! the options that neither the command line nor the environment sets: so the file fills
//! what would otherwise be a default, and clap parses and checks every value, from wherever
//! it came, in one place. Which options are set is read from the arguments and the
//! environment before clap parses them, because a value in the file may be what makes the
//! command line valid (`tls-key` in the file for a `--tls-cert` given on the command line).

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory};
use toml::Value;

use crate::{Cli, Failure};

/// The option that names the file, and its environment variable.
const CONFIG: &str = "config";
const CONFIG_ENV: &str = "CSP_REPORTS_CONFIG";

/// The command line with the file's settings added.
#[derive(Debug)]
pub(crate) struct Expanded {
    pub(crate) args: Vec<OsString>,
    /// The file read, if any.
    pub(crate) file: Option<PathBuf>,
    /// The long names of the options that the file set.
    pub(crate) from_file: Vec<String>,
}

/// Adds the settings of the config file (`--config FILE` or `CSP_REPORTS_CONFIG`) that the
/// command line and the environment leave unset. A key that no command has is an error
/// that names it; a key of another command only (`listen` for `summary`) is left out, so
/// one file serves `serve` and the jobs beside it.
pub(crate) fn with_file(argv: &[OsString]) -> Result<Expanded, Failure> {
    let unchanged = |file| Expanded {
        args: argv.to_vec(),
        file,
        from_file: Vec::new(),
    };
    let Some(path) = config_path(argv) else {
        return Ok(unchanged(None));
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("cannot read the config file {shown}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| Failure::usage(format!("config file {shown}: {e}")))?;

    let cli = Cli::command();
    let globals: Vec<&Arg> = cli.get_arguments().filter(|a| is_setting(a)).collect();
    let used = subcommand(argv, &globals);
    let own: Vec<&Arg> = used
        .and_then(|name| cli.find_subcommand(name))
        .map(|command| command.get_arguments().filter(|a| is_setting(a)).collect())
        .unwrap_or_default();
    let anywhere = |key: &str| {
        cli.get_subcommands()
            .flat_map(|command| command.get_arguments())
            .any(|arg| is_setting(arg) && arg.get_long() == Some(key))
    };
    let end = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
    let mut added = Vec::new();
    let mut from_file = Vec::new();
    for (key, value) in &table {
        if key == CONFIG {
            return Err(Failure::usage(format!(
                "config file {shown}: \"config\" names the file and cannot be set in it"
            )));
        }
        let arg = globals
            .iter()
            .chain(&own)
            .find(|arg| arg.get_long() == Some(key.as_str()));
        let Some(arg) = arg else {
            if anywhere(key) {
                continue;
            }
            return Err(Failure::usage(format!(
                "config file {shown}: unknown key {key:?} (the keys are the long options, \
                 e.g. listen, database-url)"
            )));
        };
        if given(&argv[..end], key) || in_env(arg) {
            continue;
        }
        let before = added.len();
        arguments(arg, key, value, &mut added)
            .map_err(|reason| Failure::usage(format!("config file {shown}, {key:?}: {reason}")))?;
        if added.len() > before {
            from_file.push(key.clone());
        }
    }
    let mut args = argv[..end].to_vec();
    args.extend(added);
    args.extend_from_slice(&argv[end..]);
    Ok(Expanded {
        args,
        file: Some(path),
        from_file,
    })
}

/// An option a file can set (not `--help` or `--version`).
fn is_setting(arg: &Arg) -> bool {
    arg.get_long().is_some()
        && !matches!(arg.get_action(), ArgAction::Help | ArgAction::Version)
        && !matches!(arg.get_action(), ArgAction::HelpShort | ArgAction::HelpLong)
}

/// `--config FILE` or `--config=FILE` on the command line, else `CSP_REPORTS_CONFIG`.
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut tokens = argv.iter().skip(1).take_while(|a| *a != "--");
    while let Some(token) = tokens.next() {
        let token = token.to_string_lossy();
        if token == "--config" {
            return tokens.next().map(PathBuf::from);
        }
        if let Some(path) = token.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(CONFIG_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The subcommand named on the command line: the first word that is not an option of the
/// global ones or its value.
fn subcommand<'a>(argv: &'a [OsString], globals: &[&Arg]) -> Option<&'a str> {
    let mut tokens = argv.iter().skip(1).take_while(|a| *a != "--");
    while let Some(token) = tokens.next() {
        let token = token.to_str()?;
        let Some(long) = token.strip_prefix("--") else {
            return Some(token);
        };
        let takes_value = globals
            .iter()
            .any(|arg| arg.get_long() == Some(long) && takes_value(arg));
        if takes_value {
            tokens.next();
        }
    }
    None
}

fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

/// Whether `--key` is among the arguments, alone or as `--key=value`.
fn given(args: &[OsString], key: &str) -> bool {
    args.iter().skip(1).any(|token| {
        let token = token.as_encoded_bytes();
        token
            .strip_prefix(b"--")
            .and_then(|rest| rest.strip_prefix(key.as_bytes()))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"="))
    })
}

/// Whether the option's environment variable is set (clap takes an empty one as unset).
fn in_env(arg: &Arg) -> bool {
    arg.get_env()
        .and_then(std::env::var_os)
        .is_some_and(|value| !value.is_empty())
}

/// The arguments that give `arg` the file's value.
fn arguments(arg: &Arg, key: &str, value: &Value, out: &mut Vec<OsString>) -> Result<(), String> {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return match value {
            Value::Boolean(true) => {
                out.push(format!("--{key}").into());
                Ok(())
            }
            Value::Boolean(false) => Ok(()),
            _ => Err("expected true or false".to_owned()),
        };
    }
    let values: Vec<&Value> = match value {
        Value::Array(values) if matches!(arg.get_action(), ArgAction::Append) => {
            values.iter().collect()
        }
        Value::Array(_) => return Err("takes one value, not a list".to_owned()),
        value => vec![value],
    };
    for value in values {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Integer(n) => n.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Datetime(d) => d.to_string(),
            Value::Array(_) | Value::Table(_) => {
                return Err("expected a string, a number or a list of them".to_owned());
            }
        };
        let mut argument = OsString::from(format!("--{key}="));
        argument.push(OsStr::new(&text));
        out.push(argument);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_subcommand_and_what_is_given() {
        let cli = Cli::command();
        let globals: Vec<&Arg> = cli.get_arguments().filter(|a| is_setting(a)).collect();
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["csp-reports", "serve", "--listen", "x"], Some("serve")),
            (
                &["csp-reports", "--log", "serve", "summary"],
                Some("summary"),
            ),
            (
                &["csp-reports", "--config", "f.toml", "clean"],
                Some("clean"),
            ),
            (
                &["csp-reports", "--log-format=json", "serve"],
                Some("serve"),
            ),
            (&["csp-reports", "--help"], None),
            (&["csp-reports", "--", "serve"], None),
        ];
        for (args, expected) in cases {
            assert_eq!(subcommand(&argv(args), &globals), *expected, "{args:?}");
        }
        let args = argv(&[
            "csp-reports",
            "serve",
            "--listen=x",
            "--no-store",
            "--path",
            "/a",
        ]);
        for (key, expected) in [
            ("listen", true),
            ("no-store", true),
            ("path", true),
            ("paths", false),
            ("list", false),
            ("serve", false),
        ] {
            assert_eq!(given(&args, key), expected, "{key}");
        }
    }

    #[test]
    fn values_become_arguments() {
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        let arg = |long: &str| {
            serve
                .get_arguments()
                .find(|a| a.get_long() == Some(long))
                .unwrap()
        };
        let cases: &[(&str, &str, Result<&[&str], &str>)] = &[
            ("listen", "\"0.0.0.0:1\"", Ok(&["--listen=0.0.0.0:1"])),
            ("max-body-size", "2048", Ok(&["--max-body-size=2048"])),
            ("path", "[\"/a\", \"/b\"]", Ok(&["--path=/a", "--path=/b"])),
            ("path", "\"/a\"", Ok(&["--path=/a"])),
            ("no-store", "true", Ok(&["--no-store"])),
            ("no-store", "false", Ok(&[])),
            ("no-store", "\"yes\"", Err("expected true or false")),
            ("listen", "[\"a\", \"b\"]", Err("takes one value")),
            ("listen", "{ host = \"a\" }", Err("expected a string")),
            ("path", "[[\"/a\"]]", Err("expected a string")),
        ];
        for (key, value, expected) in cases {
            let table: toml::Table = format!("v = {value}").parse().unwrap();
            let mut out = Vec::new();
            let got = arguments(arg(key), key, &table["v"], &mut out);
            match expected {
                Ok(args) => {
                    assert_eq!(got, Ok(()), "{key} = {value}");
                    assert_eq!(out, argv(args), "{key} = {value}");
                }
                Err(reason) => {
                    let error = got.unwrap_err();
                    assert!(error.contains(reason), "{key} = {value}: {error}");
                }
            }
        }
    }
}
