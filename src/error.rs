//! Configuration errors, reported when the layer is configured, never at request time; and
//! [`chain`], which puts any error and its causes on one line for a log or a message.
//!
//! ```
//! use tower_csp_reports::{ConfigError, CspReportLayer};
//!
//! let error = CspReportLayer::builder().max_body_size(0).build().unwrap_err();
//! assert!(matches!(error, ConfigError::InvalidLimit { setting: "max_body_size", .. }));
//! assert_eq!(error.to_string(), "max_body_size must be between 1 and 16777216, not 0");
//! ```

use std::fmt;

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A report path must start with `/` and hold no query, fragment or white space.
    InvalidPath {
        /// The path given.
        path: String,
    },
    /// The layer was given an empty list of report paths.
    NoPaths,
    /// A limit was set to zero or beyond what is sensible.
    InvalidLimit {
        /// Which setting.
        setting: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// A CORS origin is not of the form `scheme://host[:port]`.
    InvalidOrigin {
        /// The origin given.
        origin: String,
    },
    /// A reporting endpoint name or URL cannot go in a header.
    InvalidEndpoint {
        /// The name or URL given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A database table or column name is not a plain SQL identifier.
    InvalidIdentifier {
        /// The name given.
        name: String,
    },
    /// Any other setting, with what is wrong with it.
    Invalid {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidPath { path } => write!(
                f,
                "invalid report path {path:?}: it must start with '/' and hold no query, fragment or white space"
            ),
            Self::NoPaths => f.write_str("at least one report path is needed"),
            Self::InvalidLimit {
                setting,
                value,
                max,
            } => write!(f, "{setting} must be between 1 and {max}, not {value}"),
            Self::InvalidOrigin { origin } => write!(
                f,
                "invalid CORS origin {origin:?}: expected scheme://host[:port] with no path"
            ),
            Self::InvalidEndpoint { value, reason } => {
                write!(f, "invalid reporting endpoint {value:?}: {reason}")
            }
            Self::InvalidIdentifier { name } => write!(
                f,
                "invalid SQL identifier {name:?}: use letters, digits and '_', starting with a letter or '_', at most 63 bytes"
            ),
            Self::Invalid { setting, reason } => write!(f, "invalid {setting}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Checks a count setting: at least 1 and at most `max`.
pub(crate) fn check_limit(setting: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError::InvalidLimit {
            setting,
            value,
            max,
        });
    }
    Ok(())
}

/// Checks a duration setting that must be longer than zero.
pub(crate) fn check_nonzero(
    setting: &'static str,
    duration: std::time::Duration,
) -> Result<(), ConfigError> {
    if duration.is_zero() {
        return Err(ConfigError::Invalid {
            setting,
            reason: "must be longer than zero".to_owned(),
        });
    }
    Ok(())
}

/// An error and its causes on one line, each cause after a colon: what a log line or a
/// command's message needs, where `Display` alone shows only the outermost error.
///
/// A cause whose text the line already holds is left out, and a cause that repeats its
/// error's text and adds to it takes that error's place: many errors repeat their source's
/// message, or the other way round.
///
/// ```
/// use std::io;
/// use tower_csp_reports::SinkError;
/// use tower_csp_reports::error::chain;
///
/// let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
/// let error = SinkError::transient(refused);
/// assert_eq!(error.to_string(), "transient sink error: connection refused");
/// assert_eq!(chain(&error), "transient sink error: connection refused");
///
/// #[derive(Debug)]
/// struct Gave(io::Error);
/// impl std::fmt::Display for Gave {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("gave up after 3 attempts")
///     }
/// }
/// impl std::error::Error for Gave {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
/// let error = SinkError::transient(Gave(io::Error::other("certificate unknown")));
/// assert_eq!(
///     chain(&error),
///     "transient sink error: gave up after 3 attempts: certificate unknown"
/// );
/// ```
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    // The text of the error whose cause comes next.
    let mut last = text.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if cause_text.contains(&last) && text.ends_with(&last) {
            text.truncate(text.len() - last.len());
            text.push_str(&cause_text);
        } else if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        last = cause_text;
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::fmt;

    use super::chain;

    /// An error with a text and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let (first, rest) = texts.split_first().unwrap();
        Layer(first, (!rest.is_empty()).then(|| Box::new(layers(rest))))
    }

    #[test]
    fn chain_table() {
        let cases: &[(&[&str], &str)] = &[
            (&["alone"], "alone"),
            (&["outer", "inner"], "outer: inner"),
            // The outer error already quotes its cause.
            (&["sink error: refused", "refused"], "sink error: refused"),
            // The cause repeats the error and says more.
            (
                &[
                    "gave up",
                    "Connection error",
                    "Connection error: bad certificate",
                ],
                "gave up: Connection error: bad certificate",
            ),
            (
                &["db error", "ERROR: no such table"],
                "db error: ERROR: no such table",
            ),
        ];
        for &(texts, expected) in cases {
            assert_eq!(chain(&layers(texts)), expected, "{texts:?}");
        }
    }
}
