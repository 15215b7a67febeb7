use std::error::Error;
use std::fmt;

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a sink could not deliver a batch.
///
/// It keeps the underlying error as its [`source`](Error::source) and says whether the same
/// batch may succeed later ([`is_transient`](Self::is_transient)): a dropped connection is
/// transient, a rejected recipient or a malformed row is not.
#[derive(Debug)]
pub struct SinkError {
    kind: Kind,
    message: String,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Transient,
    Permanent,
    TimedOut,
    Panicked,
}

impl SinkError {
    /// A failure worth a retry (connection refused, server restarting, timeout).
    pub fn transient(source: impl Into<BoxError>) -> Self {
        Self::with(Kind::Transient, source.into())
    }

    /// A failure that the same batch will meet again; it is not retried.
    pub fn permanent(source: impl Into<BoxError>) -> Self {
        Self::with(Kind::Permanent, source.into())
    }

    pub(crate) fn timed_out(after: std::time::Duration) -> Self {
        Self {
            kind: Kind::TimedOut,
            message: format!("timed out after {after:?}"),
            source: None,
        }
    }

    pub(crate) fn panicked(message: String) -> Self {
        Self {
            kind: Kind::Panicked,
            message: format!("panicked: {message}"),
            source: None,
        }
    }

    fn with(kind: Kind, source: BoxError) -> Self {
        Self {
            kind,
            message: source.to_string(),
            source: Some(source),
        }
    }

    /// Whether trying the same batch again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, Kind::Transient | Kind::TimedOut)
    }

    /// Whether the sink did not answer within its timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::TimedOut
    }

    /// Whether the sink panicked (the panic was caught; the worker goes on).
    pub fn is_panic(&self) -> bool {
        self.kind == Kind::Panicked
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Transient => "transient sink error",
            Kind::Permanent => "sink error",
            Kind::TimedOut => "sink call",
            Kind::Panicked => "sink",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl Error for SinkError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}
