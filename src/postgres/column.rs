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
/// use tower_csp_reports::postgres::CustomColumn;
///
/// let host = CustomColumn::new("document_host", "text", |report| {
///     let host = report
///         .document_uri
///         .as_deref()
///         .and_then(|uri| uri.split("://").nth(1))
///         .and_then(|rest| rest.split(['/', '?', '#']).next())
///         .map(str::to_owned);
///     Box::new(host)
/// })
/// .unwrap();
/// assert_eq!(host.name(), "document_host");
/// assert!(CustomColumn::new("bad name", "text", |_| Box::new(None::<String>)).is_err());
/// assert!(CustomColumn::new("n", "text; DROP TABLE x", |_| Box::new(None::<String>)).is_err());
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
    /// # Errors
    ///
    /// [`ConfigError::InvalidIdentifier`] when `name` is not a plain SQL identifier, and
    /// [`ConfigError::Invalid`] when `sql_type` holds anything but letters, digits, spaces,
    /// `_`, `,`, `(`, `)`, `[` and `]`.
    pub fn new<F>(
        name: impl Into<String>,
        sql_type: impl Into<String>,
        extract: F,
    ) -> Result<Self, ConfigError>
    where
        F: Fn(&Report) -> ColumnValue + Send + Sync + 'static,
    {
        let name = super::schema::identifier(name.into())?;
        let sql_type = sql_type.into();
        let allowed = |c: char| c.is_ascii_alphanumeric() || " _,()[]".contains(c);
        if sql_type.trim().is_empty() || !sql_type.chars().all(allowed) {
            return Err(ConfigError::Invalid {
                setting: "custom column type",
                reason: format!("{sql_type:?} is not a plain SQL type name"),
            });
        }
        Ok(Self {
            name,
            sql_type,
            extract: Arc::new(extract),
        })
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
