//! Configuration errors, reported when the layer is configured, never at request time.
//!
//! ```
//! use tower_csp_reports::{ConfigError, CspReportLayer};
//!
//! let error = CspReportLayer::new().max_body_size(0).unwrap_err();
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
