use std::path::PathBuf;
use std::time::Duration;

use super::store::SqliteStore;
use crate::ConfigError;

/// Settings of a [`SqliteStore`]: setters that cannot fail, and one [`build`](Self::build)
/// that checks them all.
///
/// ```
/// use tower_csp_reports::sqlite::SqliteStore;
///
/// let error = SqliteStore::builder("reports.db").table("x; DROP TABLE y").build().unwrap_err();
/// assert!(matches!(error, tower_csp_reports::ConfigError::InvalidIdentifier { .. }));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SqliteStoreBuilder {
    pub(crate) path: PathBuf,
    pub(crate) table: String,
    pub(crate) busy_timeout: Duration,
    pub(crate) readers: usize,
}

impl SqliteStoreBuilder {
    /// A store in the file at `path` (created by the first write or migration).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            table: "csp_reports".to_owned(),
            busy_timeout: Duration::from_secs(5),
            readers: 4,
        }
    }

    /// The reports table (default `csp_reports`): a plain SQL identifier of at most 46 bytes.
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// How long a statement waits for a lock another process holds on the file (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How many reading connections are kept open between reads (default 4).
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers;
        self
    }

    /// Checks every setting and makes the store. No file is opened yet.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidIdentifier`] for a table name that is not a plain SQL
    /// identifier, [`ConfigError::Invalid`] for one longer than 46 bytes or an empty path.
    pub fn build(self) -> Result<SqliteStore, ConfigError> {
        let table = crate::store::identifier(self.table.clone())?;
        if table.len() > 46 {
            return Err(ConfigError::Invalid {
                setting: "table",
                reason: format!("{table:?} is longer than 46 bytes"),
            });
        }
        if self.path.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                setting: "SQLite path",
                reason: "the path is empty".to_owned(),
            });
        }
        Ok(SqliteStore::from_builder(self))
    }
}
