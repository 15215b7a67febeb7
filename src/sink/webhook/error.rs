//! Why a webhook post did not go through.

use std::error::Error;
use std::fmt;

use http::StatusCode;

/// Why a webhook post did not go through, as the source of the
/// [`SinkError`](crate::SinkError) the layer's error hook is told of. It names the
/// endpoint by scheme and host only: webhook URLs carry their secret in the path.
#[derive(Debug)]
pub struct WebhookError {
    endpoint: String,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Connect(std::io::Error),
    Tls(std::io::Error),
    Http(hyper::Error),
    Status(StatusCode),
}

impl WebhookError {
    pub(super) fn connect(endpoint: &str, error: std::io::Error) -> Self {
        Self::new(endpoint, Cause::Connect(error))
    }

    pub(super) fn tls(endpoint: &str, error: std::io::Error) -> Self {
        Self::new(endpoint, Cause::Tls(error))
    }

    pub(super) fn http(endpoint: &str, error: hyper::Error) -> Self {
        Self::new(endpoint, Cause::Http(error))
    }

    pub(super) fn status(endpoint: &str, status: StatusCode) -> Self {
        Self::new(endpoint, Cause::Status(status))
    }

    fn new(endpoint: &str, cause: Cause) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            cause,
        }
    }

    /// The status the endpoint answered, when it answered.
    pub fn status_code(&self) -> Option<StatusCode> {
        match self.cause {
            Cause::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Whether trying again cannot help: a `4xx` answer other than `408` and `429`, or a
    /// redirect (never followed). Connection, TLS and HTTP failures, `5xx`, `408` and `429`
    /// may pass.
    pub fn is_permanent(&self) -> bool {
        match self.cause {
            Cause::Status(status) => {
                !(status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS)
            }
            _ => false,
        }
    }
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = &self.endpoint;
        match &self.cause {
            Cause::Connect(_) => write!(f, "cannot connect to the webhook at {endpoint}"),
            Cause::Tls(_) => write!(f, "TLS with the webhook at {endpoint} failed"),
            Cause::Http(_) => write!(f, "the webhook at {endpoint} broke off the exchange"),
            Cause::Status(status) => {
                write!(f, "the webhook at {endpoint} answered {status}")
            }
        }
    }
}

impl Error for WebhookError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.cause {
            Cause::Connect(error) | Cause::Tls(error) => Some(error),
            Cause::Http(error) => Some(error),
            Cause::Status(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_worth_a_retry() {
        let cases = [
            (StatusCode::INTERNAL_SERVER_ERROR, false),
            (StatusCode::BAD_GATEWAY, false),
            (StatusCode::TOO_MANY_REQUESTS, false),
            (StatusCode::REQUEST_TIMEOUT, false),
            (StatusCode::NOT_FOUND, true),
            (StatusCode::FORBIDDEN, true),
            (StatusCode::MOVED_PERMANENTLY, true),
        ];
        for (status, permanent) in cases {
            let error = WebhookError::status("https://hooks.example", status);
            assert_eq!(error.is_permanent(), permanent, "{status}");
        }
        assert_eq!(
            WebhookError::status("https://hooks.example", StatusCode::NOT_FOUND).to_string(),
            "the webhook at https://hooks.example answered 404 Not Found"
        );
    }
}
