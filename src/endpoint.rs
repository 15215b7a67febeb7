//! The other end: the headers and directives that send reports here.
//!
//! Browsers that know `report-to` use it and ignore `report-uri` in the same policy; older
//! ones use `report-uri`. A policy should carry both, pointing at the same endpoint, and the
//! response should name the endpoint in a `Reporting-Endpoints` header.
//!
//! ```
//! use tower_csp_reports::ReportingEndpoint;
//!
//! let endpoint = ReportingEndpoint::new("csp", "https://example.com/csp-report").unwrap();
//! assert_eq!(endpoint.reporting_endpoints_header().to_str().unwrap(), r#"csp="https://example.com/csp-report""#);
//! assert_eq!(endpoint.directives(), "report-uri https://example.com/csp-report; report-to csp");
//! let policy = format!("default-src 'self'; {}", endpoint.directives());
//! assert!(policy.ends_with("report-to csp"));
//! ```

use http::HeaderValue;

use crate::error::ConfigError;

/// A named reporting endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportingEndpoint {
    name: String,
    url: String,
}

impl ReportingEndpoint {
    /// An endpoint `name` (a token: letters, digits, `-`, `_`) at an absolute `url`.
    ///
    /// Browsers send `report-to` reports only to `https` URLs; `report-uri` also takes a
    /// path (`/csp-report`), which this accepts too.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Result<Self, ConfigError> {
        let (name, url) = (name.into(), url.into());
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        if !valid_name {
            return Err(ConfigError::InvalidEndpoint {
                value: name,
                reason: "a name is a letter followed by letters, digits, '-' or '_' (at most 64)",
            });
        }
        let valid_url =
            (url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/'))
                && url
                    .chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | ';' | ',' | '\\'));
        if !valid_url {
            return Err(ConfigError::InvalidEndpoint {
                value: url,
                reason: "a URL is http(s)://... or /path, with no white space, quotes, ';' or ','",
            });
        }
        Ok(Self { name, url })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The value of a `Reporting-Endpoints` response header: `name="url"`.
    pub fn reporting_endpoints_header(&self) -> HeaderValue {
        reporting_endpoints(std::slice::from_ref(self))
    }

    /// The `report-uri` directive.
    pub fn report_uri_directive(&self) -> String {
        format!("report-uri {}", self.url)
    }

    /// The `report-to` directive.
    pub fn report_to_directive(&self) -> String {
        format!("report-to {}", self.name)
    }

    /// Both directives, for the end of a policy: `report-uri URL; report-to NAME`.
    pub fn directives(&self) -> String {
        format!(
            "{}; {}",
            self.report_uri_directive(),
            self.report_to_directive()
        )
    }
}

/// The value of one `Reporting-Endpoints` header naming several endpoints.
///
/// ```
/// use tower_csp_reports::endpoint::{reporting_endpoints, ReportingEndpoint};
/// let a = ReportingEndpoint::new("csp", "https://a.example/r").unwrap();
/// let b = ReportingEndpoint::new("default", "https://b.example/r").unwrap();
/// assert_eq!(reporting_endpoints(&[a, b]).to_str().unwrap(), r#"csp="https://a.example/r", default="https://b.example/r""#);
/// ```
pub fn reporting_endpoints(endpoints: &[ReportingEndpoint]) -> HeaderValue {
    let value = endpoints
        .iter()
        .map(|e| format!("{}=\"{}\"", e.name, e.url))
        .collect::<Vec<_>>()
        .join(", ");
    HeaderValue::try_from(value).expect("names and URLs were checked to be header-safe")
}
