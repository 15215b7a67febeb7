//! Why an email did not go out.

use std::error::Error;
use std::fmt;

use lettre::transport::smtp;

/// Why an email did not go out, as the source of the [`SinkError`](crate::SinkError) the
/// layer's error hook is told of (it says whether the failure is transient: a retry follows).
///
/// Its [`source`](Error::source) is lettre's error, which carries the SMTP status code when
/// the server answered.
#[derive(Debug)]
pub struct DeliveryError {
    what: String,
    cause: Cause,
}

#[derive(Debug)]
enum Cause {
    Smtp(smtp::Error),
    Message(lettre::error::Error),
}

impl DeliveryError {
    pub(super) fn smtp(what: String, error: smtp::Error) -> Self {
        Self {
            what,
            cause: Cause::Smtp(error),
        }
    }

    pub(super) fn message(what: String, error: lettre::error::Error) -> Self {
        Self {
            what,
            cause: Cause::Message(error),
        }
    }

    /// The SMTP error, when the server or the connection failed.
    pub fn smtp_error(&self) -> Option<&smtp::Error> {
        match &self.cause {
            Cause::Smtp(error) => Some(error),
            Cause::Message(_) => None,
        }
    }

    /// Whether the server refused for good (a 5xx answer, or an email it cannot take).
    pub fn is_permanent(&self) -> bool {
        match &self.cause {
            Cause::Smtp(error) => is_permanent(error),
            Cause::Message(_) => true,
        }
    }
}

/// A 5xx answer or a client-side error will fail again; a 4xx answer, a connection, TLS or
/// time-out failure may not.
pub(super) fn is_permanent(error: &smtp::Error) -> bool {
    error.is_permanent() || error.is_client()
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Message(_) => write!(f, "could not build the {}", self.what),
            Cause::Smtp(error) if is_permanent(error) => {
                write!(f, "the mail server refused the {}", self.what)?;
                if let Some(code) = error.status() {
                    write!(f, " ({code})")?;
                }
                Ok(())
            }
            Cause::Smtp(_) => write!(f, "the mail server could not take the {} now", self.what),
        }
    }
}

impl Error for DeliveryError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.cause {
            Cause::Smtp(error) => Some(error),
            Cause::Message(error) => Some(error),
        }
    }
}
