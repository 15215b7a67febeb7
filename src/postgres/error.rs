use std::error::Error;
use std::fmt;

use tokio_postgres::error::SqlState;

/// Why a store operation (migration, summary, retention, a write) failed.
///
/// It keeps the underlying error as its [`source`](Error::source) and says whether the same
/// operation may succeed later ([`is_transient`](Self::is_transient)).
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// No connection could be taken from the pool (the server is down, or the pool timed out).
    Pool(bb8::RunError<tokio_postgres::Error>),
    /// The server refused a statement, or the connection broke while it ran.
    Postgres(tokio_postgres::Error),
    /// The table exists but does not have the shape this store was configured for (for
    /// example, daily partitioning was asked for on a table created without it).
    Schema {
        /// What does not match.
        reason: String,
    },
    /// A value could not be written in its column's binary form: a custom column whose value
    /// does not convert to the column's SQL type. (With [`WriteMethod::Unnest`] the driver
    /// encodes the values and the same mistake is a [`Postgres`](Self::Postgres) error.)
    ///
    /// [`WriteMethod::Unnest`]: super::WriteMethod::Unnest
    Encode {
        /// The column.
        column: String,
        /// Why the value does not fit.
        source: Box<dyn Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether trying again later may succeed: the server is unreachable, restarting, or
    /// refused for lack of resources, or the connection broke.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Pool(bb8::RunError::TimedOut) => true,
            Self::Pool(bb8::RunError::User(e)) | Self::Postgres(e) => is_transient(e),
            Self::Schema { .. } | Self::Encode { .. } => false,
        }
    }

    /// The SQLSTATE code the server answered with, if it answered.
    pub fn code(&self) -> Option<&SqlState> {
        match self {
            Self::Pool(bb8::RunError::User(e)) | Self::Postgres(e) => e.code(),
            _ => None,
        }
    }
}

pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // 08: connection exception, 53: insufficient resources, 57P0x: shutting down or
        // starting up, 40: serialization failure or deadlock, 58: system (I/O) error.
        Some(code) => {
            let code = code.code();
            ["08", "53", "57P", "40", "58"]
                .iter()
                .any(|prefix| code.starts_with(prefix))
        }
        // No SQLSTATE: the error came from the socket, not the server.
        None => e
            .source()
            .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some()),
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pool(bb8::RunError::TimedOut) => {
                f.write_str("timed out waiting for a Postgres connection")
            }
            Self::Pool(bb8::RunError::User(e)) => write!(f, "cannot connect to Postgres: {e}"),
            Self::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "Postgres error {}: {}", db.code().code(), db.message()),
                None => write!(f, "Postgres error: {e}"),
            },
            Self::Schema { reason } => write!(f, "unexpected table shape: {reason}"),
            Self::Encode { column, .. } => write!(f, "cannot encode the value of column {column}"),
        }
    }
}

impl Error for StoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Pool(e) => Some(e),
            Self::Postgres(e) => Some(e),
            Self::Schema { .. } => None,
            Self::Encode { source, .. } => Some(source.as_ref()),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for StoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        Self::Pool(e)
    }
}
