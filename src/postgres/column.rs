use std::fmt;
use std::sync::Arc;

use tokio_postgres::types::ToSql;

use crate::{ConfigError, Report};

/// A value for one custom column of one row.
pub type ColumnValue = Box<dyn ToSql + Sync + Send>;

type Extract = dyn Fn(&Report) -> ColumnValue + Send + Sync;

/// A column of your own, added to the reports table and filled from each report.
///
/// The report carries the request facts too ([`user_agent`](Report::user_agent),
/// [`client_ip`](Report::client_ip)), so a column can hold anything known when the report came in.
///
/// ```
/// use tower_csp_reports::postgres::{CustomColumn, PostgresStore};
///
/// let host = CustomColumn::new("document_host", "text", |report| {
///     let host = report
///         .document_uri
///         .as_deref()
///         .and_then(|uri| uri.split("://").nth(1))
///         .and_then(|rest| rest.split(['/', '?', '#']).next())
///         .map(str::to_owned);
///     Box::new(host)
/// });
/// assert_eq!(host.name(), "document_host");
///
/// // Names and types are checked when the store is built.
/// let bad = CustomColumn::new("n", "text; DROP TABLE x", |_| Box::new(None::<String>));
/// let error = PostgresStore::builder_from_url("postgres://app@localhost/app")
///     .column(bad)
///     .build()
///     .unwrap_err();
/// assert!(error.to_string().contains("not a plain SQL type name"), "{error}");
/// ```
#[derive(Clone)]
pub struct CustomColumn {
    name: String,
    sql_type: String,
    extract: Arc<Extract>,
}

impl CustomColumn {
    /// A column `name` of SQL type `sql_type` (`text`, `integer`, `varchar(64)`, `inet`,
    /// `timestamp with time zone`, ...), whose value for each report `extract` returns.
    ///
    /// The value's Rust type must convert to the SQL type (`Option<String>` for a nullable
    /// `text`, `Option<i32>` for `integer`, ...); a mismatch fails the batch.
    ///
    /// The name must be a plain SQL identifier, and the type hold only letters, digits,
    /// spaces, `_`, `,`, `(`, `)`, `[` and `]`: [`PostgresStoreBuilder::build`] checks
    /// both.
    ///
    /// [`PostgresStoreBuilder::build`]: super::PostgresStoreBuilder::build
    pub fn new<F>(name: impl Into<String>, sql_type: impl Into<String>, extract: F) -> Self
    where
        F: Fn(&Report) -> ColumnValue + Send + Sync + 'static,
    {
        Self {
            name: name.into(),
            sql_type: sql_type.into(),
            extract: Arc::new(extract),
        }
    }

    /// Checks the name and the type.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        super::schema::identifier(self.name.clone())?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || " _,()[]".contains(c);
        if self.sql_type.trim().is_empty() || !self.sql_type.chars().all(allowed) {
            return Err(ConfigError::Invalid {
                setting: "custom column type",
                reason: format!("{:?} is not a plain SQL type name", self.sql_type),
            });
        }
        Ok(())
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's SQL type, as given.
    pub fn sql_type(&self) -> &str {
        &self.sql_type
    }

    pub(crate) fn value(&self, report: &Report) -> ColumnValue {
        (self.extract)(report)
    }
}

impl fmt::Debug for CustomColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomColumn")
            .field("name", &self.name)
            .field("sql_type", &self.sql_type)
            .finish_non_exhaustive()
    }
}
