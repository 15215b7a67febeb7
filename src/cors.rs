//! CORS for cross-origin reports.
//!
//! A page reports with `report-to` to an endpoint on another origin only after an `OPTIONS`
//! preflight is answered with `Access-Control-Allow-Origin` and an
//! `Access-Control-Allow-Headers` that covers `content-type`; Firefox also wants
//! `Access-Control-Allow-Origin` on the `POST` answer, or it sends the batch again. The layer
//! answers both. `report-uri` requests are `no-cors` and need none of it.
//!
//! CORS here only decides which pages' browsers will deliver Reporting API reports; it is
//! not access control (anyone can post to a report endpoint without a browser).
//!
//! ```
//! use std::time::Duration;
//! use tower_csp_reports::Cors;
//!
//! let cors = Cors::origins(["https://example.com", "https://shop.example.com:8443"])
//!     .unwrap()
//!     .max_age(Duration::from_secs(3600));
//! assert!(cors.allows(b"https://example.com"));
//! assert!(!cors.allows(b"https://evil.example"));
//! assert!(Cors::origins(["https://example.com/path"]).is_err());
//! ```

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};

use crate::error::ConfigError;

/// Which origins may send cross-origin reports, and how long browsers may cache the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    origins: Origins,
    max_age: HeaderValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Origins {
    Any,
    List(Vec<HeaderValue>),
}

/// The methods a report endpoint answers.
pub(crate) const ALLOW: HeaderValue = HeaderValue::from_static("POST, OPTIONS");

impl Cors {
    /// Any origin (answered with `*`): the default, since reports carry no credentials.
    pub fn any() -> Self {
        Self {
            origins: Origins::Any,
            max_age: HeaderValue::from_static("86400"),
        }
    }

    /// Only these origins (`scheme://host[:port]`, compared exactly, without regard to case).
    pub fn origins<I, S>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list = origins
            .into_iter()
            .map(|origin| {
                let origin = origin.as_ref();
                let invalid = || ConfigError::InvalidOrigin {
                    origin: origin.to_owned(),
                };
                let (scheme, host) = origin.split_once("://").ok_or_else(invalid)?;
                let valid_scheme = !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                let valid_host = !host.is_empty()
                    && !host.contains(['/', '?', '#', '@', ' ', '*'])
                    && host.is_ascii();
                if !valid_scheme || !valid_host {
                    return Err(invalid());
                }
                HeaderValue::from_str(&origin.to_ascii_lowercase()).map_err(|_| invalid())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            origins: Origins::List(list),
            max_age: HeaderValue::from_static("86400"),
        })
    }

    /// How long a browser may cache a preflight answer (default one day).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = HeaderValue::from(max_age.as_secs());
        self
    }

    /// Whether an `Origin` header value may send reports.
    pub fn allows(&self, origin: &[u8]) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::List(list) => list
                .iter()
                .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin)),
        }
    }

    /// Adds `Access-Control-Allow-Origin` (and `Vary: Origin` when it depends on the origin)
    /// to an answer for a request with this `Origin`.
    pub(crate) fn allow_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        match self.origins {
            Origins::Any => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            Origins::List(_) => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                headers.insert(header::VARY, HeaderValue::from_static("origin"));
            }
        }
    }

    /// The headers of a successful preflight answer.
    pub(crate) fn preflight(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        self.allow_origin(origin, headers);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
    }
}

impl Default for Cors {
    fn default() -> Self {
        Self::any()
    }
}
