use std::error::Error;
use std::fmt;

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why connecting to NATS, setting up the stream or consumer, publishing or reading failed.
///
/// It keeps the client's error as its [`source`](Error::source), says what failed
/// ([`kind`](Self::kind)) and whether the same operation may succeed later
/// ([`is_transient`](Self::is_transient)): a server that does not answer is transient, a
/// stream that exists with other subjects is not.
#[derive(Debug)]
pub struct NatsError {
    kind: NatsErrorKind,
    transient: bool,
    message: String,
    source: Option<BoxError>,
}

/// What a [`NatsError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsErrorKind {
    /// No server could be reached, or it refused the connection (authentication, TLS).
    Connect,
    /// A JetStream API request failed: JetStream is not enabled, the server did not answer
    /// in time, or it refused the stream's or consumer's settings.
    JetStream,
    /// The stream exists, but does not take the subjects reports are published to.
    StreamSubjects,
    /// The durable consumer exists with settings the consumer cannot work with.
    Consumer,
    /// Some publishes of a batch were not acknowledged by the stream.
    Publish,
    /// Reports too large for the server's largest message were not published.
    TooLarge,
    /// A message read from the stream is not a report.
    Decode,
    /// Asking the durable consumer for messages failed.
    Fetch,
}

impl NatsError {
    pub(crate) fn new(
        kind: NatsErrorKind,
        transient: bool,
        message: impl Into<String>,
        source: Option<BoxError>,
    ) -> Self {
        Self {
            kind,
            transient,
            message: message.into(),
            source,
        }
    }

    pub(crate) fn connect(error: async_nats::ConnectError) -> Self {
        use async_nats::ConnectErrorKind as K;
        let transient = matches!(
            error.kind(),
            K::Dns | K::TimedOut | K::Io | K::MaxReconnects
        );
        Self::new(
            NatsErrorKind::Connect,
            transient,
            "cannot connect to NATS",
            Some(Box::new(error)),
        )
    }

    /// A failed JetStream API request. `answer` is the server's error answer, if it gave
    /// one: an answer is final unless it says the server is busy or timed out; no answer
    /// (no responders, a time-out, a broken connection) is worth another try.
    pub(crate) fn jetstream(
        what: impl Into<String>,
        answer: Option<&async_nats::jetstream::Error>,
        source: BoxError,
    ) -> Self {
        let transient = answer.is_none_or(|error| matches!(error.code(), 408 | 503));
        Self::new(NatsErrorKind::JetStream, transient, what, Some(source))
    }

    /// What failed.
    pub fn kind(&self) -> NatsErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for NatsError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}
