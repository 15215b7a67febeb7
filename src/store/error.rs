use std::error::Error;
use std::fmt;

type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a store operation (opening, migrating, writing, reading, pruning) failed, whatever the
/// database.
///
/// It says what kind of failure it is ([`kind`](Self::kind)), whether the same operation may
/// succeed later ([`is_transient`](Self::is_transient)), and keeps the database's own error as
/// its [`source`](Error::source).
///
/// ```
/// use tower_csp_reports::store::{StoreError, StoreErrorKind};
///
/// fn explain(error: &StoreError) -> &'static str {
///     match error.kind() {
///         StoreErrorKind::Unavailable => "try again later",
///         StoreErrorKind::NewerSchema => "upgrade csp-reports",
///         _ => "look at the message",
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Debug)]
pub struct StoreError {
    kind: StoreErrorKind,
    transient: bool,
    message: String,
    code: Option<String>,
    source: Option<BoxError>,
}

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The database cannot be reached or used right now: a connection refused or lost, a pool
    /// that timed out, a server shutting down, a file locked by another process. Transient.
    Unavailable,
    /// The database cannot be opened at all: a file that cannot be created or read, a
    /// directory that does not exist. The message names the file.
    Open,
    /// The file exists but is not a database of this kind.
    NotADatabase,
    /// The schema was written by a newer version of this crate than the running one. The
    /// message names both versions.
    NewerSchema,
    /// The schema is missing or has another shape than the store was configured for (for
    /// example daily partitions asked of a table made without them).
    Schema,
    /// A value could not be written in its column (a custom column whose value does not fit
    /// its SQL type). The message names the column.
    Encode,
    /// The database refused a statement.
    Query,
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            transient: kind == StoreErrorKind::Unavailable,
            message: message.into(),
            code: None,
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn with_transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    pub(crate) fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// A schema that is missing or has another shape.
    pub(crate) fn schema(message: impl Into<String>) -> Self {
        Self::new(StoreErrorKind::Schema, message)
    }

    /// The same failure again, without its source: for each of several operations that one
    /// failure ended (a group of writes whose commit failed).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn copied(&self) -> Self {
        Self {
            kind: self.kind,
            transient: self.transient,
            message: self.message.clone(),
            code: self.code.clone(),
            source: None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether trying the same operation again later may succeed (a lost connection, a
    /// server restarting, a deadlock or serialization failure, a busy file).
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The database's own code for the error, when it gave one: the SQLSTATE for Postgres
    /// (`23505`), the extended result code's name for SQLite (`SQLITE_BUSY`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<StoreError> for crate::SinkError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            Self::transient(error)
        } else {
            Self::permanent(error)
        }
    }
}
