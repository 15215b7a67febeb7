//! Postgres errors as the crate's [`StoreError`].

use std::error::Error;

use crate::store::{StoreError, StoreErrorKind};

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        let code = e.code().map(|c| c.code().to_owned());
        let message = match e.as_db_error() {
            Some(db) => format!("Postgres error {}: {}", db.code().code(), db.message()),
            None => format!("Postgres error: {e}"),
        };
        let unavailable = e.is_closed()
            || code
                .as_deref()
                .is_some_and(|c| ["08", "53", "57P", "58"].iter().any(|p| c.starts_with(p)))
            || (code.is_none()
                && e.source()
                    .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some()));
        let kind = if unavailable {
            StoreErrorKind::Unavailable
        } else {
            StoreErrorKind::Query
        };
        let transient = is_transient(&e);
        let error = Self::new(kind, message)
            .with_transient(transient)
            .with_source(e);
        match code {
            Some(code) => error.with_code(code),
            None => error,
        }
    }
}

impl From<bb8::RunError<tokio_postgres::Error>> for StoreError {
    fn from(e: bb8::RunError<tokio_postgres::Error>) -> Self {
        match e {
            bb8::RunError::TimedOut => Self::new(
                StoreErrorKind::Unavailable,
                "timed out waiting for a Postgres connection",
            ),
            bb8::RunError::User(e) => {
                let inner = Self::from(e);
                let message = format!("cannot connect to Postgres: {inner}");
                let transient = inner.is_transient();
                Self::new(StoreErrorKind::Unavailable, message)
                    .with_transient(transient)
                    .with_source(inner)
            }
        }
    }
}

/// Whether trying again later may succeed: the server is unreachable, restarting, or refused
/// for lack of resources, the connection broke, or the transaction met a deadlock or a
/// serialization failure.
fn is_transient(e: &tokio_postgres::Error) -> bool {
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
