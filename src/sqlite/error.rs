//! SQLite errors as the crate's [`StoreError`], naming the file.

use std::path::Path;

use rusqlite::ErrorCode;

use crate::store::{StoreError, StoreErrorKind};

/// A SQLite error while working on `path`.
pub(crate) fn sqlite_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error_code();
    let (kind, transient) = match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            (StoreErrorKind::Unavailable, true)
        }
        Some(ErrorCode::NotADatabase) => (StoreErrorKind::NotADatabase, false),
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            (StoreErrorKind::Open, false)
        }
        // A full disk or an I/O error may pass once space is freed or the disk recovers.
        Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure) => {
            (StoreErrorKind::Unavailable, true)
        }
        _ => (StoreErrorKind::Query, false),
    };
    let message = match kind {
        StoreErrorKind::NotADatabase => {
            format!("{} is not a SQLite database", path.display())
        }
        StoreErrorKind::Open => {
            format!("cannot open the SQLite database {}: {e}", path.display())
        }
        _ => format!("SQLite error on {}: {e}", path.display()),
    };
    let error = StoreError::new(kind, message).with_transient(transient);
    let error = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => {
            error.with_code(format!("{:?}", failure.code))
        }
        _ => error,
    };
    error.with_source(e)
}

/// The writer thread or a reader task went away (the runtime is shutting down).
pub(crate) fn gone(path: &Path) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("the SQLite writer of {} has stopped", path.display()),
    )
}
