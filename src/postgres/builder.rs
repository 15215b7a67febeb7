use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bb8::Pool;
use bb8_postgres::PostgresConnectionManager;
use tokio::sync::OnceCell;
use tokio_postgres::NoTls;

use super::CustomColumn;
use super::schema::{self, Tables};
use super::store::{Inner, MakeTls, PostgresStore, WriteMethod};
use crate::ConfigError;
use crate::store::EventChannel;

/// Settings of a [`PostgresStore`]: setters that cannot fail, and one [`build`](Self::build)
/// that checks them all.
///
/// ```
/// use tower_csp_reports::postgres::PostgresStore;
///
/// let error = PostgresStore::builder_from_url("postgres://app@localhost/app")
///     .table("reports; DROP TABLE users")
///     .build()
///     .unwrap_err();
/// assert!(matches!(error, tower_csp_reports::ConfigError::InvalidIdentifier { .. }));
/// ```
#[must_use]
pub struct PostgresStoreBuilder<Tls: MakeTls = NoTls> {
    pool: Result<PoolSource<Tls>, ConfigError>,
    table: String,
    partitioned: bool,
    partitions_ahead: u32,
    custom: Vec<CustomColumn>,
    method: WriteMethod,
    violation_tables: bool,
}

impl<Tls: MakeTls> std::fmt::Debug for PostgresStoreBuilder<Tls> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("table", &self.table)
            .field("partitioned", &self.partitioned)
            .field("partitions_ahead", &self.partitions_ahead)
            .field("custom", &self.custom)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Where the pool comes from: given, or made by `build` from a URL.
enum PoolSource<Tls: MakeTls> {
    Pool(Pool<PostgresConnectionManager<Tls>>),
    Manager(Box<PostgresConnectionManager<Tls>>),
}

impl PostgresStoreBuilder<NoTls> {
    /// A store on `url` (`postgres://user:password@host:port/db` or `host=... user=...`),
    /// without TLS, with bb8's default pool (ten connections, 30 s to get one). Connections
    /// are opened when first needed; an unreadable URL fails [`build`](Self::build), which
    /// must run inside a Tokio runtime (the pool's reaper is a task).
    pub fn from_url(url: &str) -> Self {
        let manager = PostgresConnectionManager::new_from_stringlike(url, NoTls)
            .map(|manager| PoolSource::Manager(Box::new(manager)))
            .map_err(|e| ConfigError::Invalid {
                setting: "database URL",
                reason: e.to_string(),
            });
        Self::with_pool(manager)
    }
}

impl<Tls: MakeTls> PostgresStoreBuilder<Tls> {
    /// A store over a pool (any TLS connector, any pool settings).
    pub fn new(pool: Pool<PostgresConnectionManager<Tls>>) -> Self {
        Self::with_pool(Ok(PoolSource::Pool(pool)))
    }

    fn with_pool(pool: Result<PoolSource<Tls>, ConfigError>) -> Self {
        Self {
            pool,
            table: "csp_reports".to_owned(),
            partitioned: false,
            partitions_ahead: 7,
            custom: Vec::new(),
            method: WriteMethod::default(),
            violation_tables: true,
        }
    }

    /// The reports table (default `csp_reports`): a plain SQL identifier of at most 46 bytes
    /// (the names of its violation tables, indexes and partitions add a suffix to it).
    pub fn table(mut self, name: impl Into<String>) -> Self {
        self.table = name.into();
        self
    }

    /// Adds a column of your own, created by [`migrate`](PostgresStore::migrate) and filled
    /// for each report. Its name must not be taken by a built-in column or another custom one.
    pub fn column(mut self, column: CustomColumn) -> Self {
        self.custom.push(column);
        self
    }

    /// Partitions the reports table by day (UTC), so that retention drops whole days instead
    /// of deleting rows. It must be chosen before the table is created:
    /// [`migrate`](PostgresStore::migrate) fails on a table created the other way.
    pub fn partition_by_day(mut self, enabled: bool) -> Self {
        self.partitioned = enabled;
        self
    }

    /// How many days of partitions to create ahead of today (default 7). The sink also creates
    /// a missing day's partition when a report for that day arrives.
    pub fn partitions_ahead(mut self, days: u32) -> Self {
        self.partitions_ahead = days;
        self
    }

    /// How the sink writes batches (default [`WriteMethod::Copy`]).
    pub fn write_method(mut self, method: WriteMethod) -> Self {
        self.method = method;
        self
    }

    /// For benchmarks only: the sink stores the report rows and leaves the violation tables
    /// alone, so the read side no longer describes what is stored. It measures what keeping
    /// them costs (`benches/postgres_ingest.rs`).
    #[doc(hidden)]
    pub fn without_violation_tables(mut self) -> Self {
        self.violation_tables = false;
        self
    }

    /// Checks every setting and makes the store. Nothing is connected yet.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidIdentifier`] for a table or column name that is not a plain SQL
    /// identifier, and [`ConfigError::Invalid`] for a table name longer than 46 bytes, a
    /// column name taken twice or by a built-in column, a column type that is not a plain
    /// type name, or an unreadable database URL (or one given outside a Tokio runtime).
    pub fn build(self) -> Result<PostgresStore<Tls>, ConfigError> {
        let source = self.pool?;
        let table = schema::identifier(self.table)?;
        let custom = self.custom;
        if table.len() > schema::MAX_TABLE_LEN {
            return Err(ConfigError::Invalid {
                setting: "table",
                reason: format!(
                    "{table:?} is longer than {} bytes, leaving no room for index and partition names",
                    schema::MAX_TABLE_LEN
                ),
            });
        }
        let mut names = HashSet::new();
        for column in &custom {
            column.check()?;
            if schema::is_reserved(column.name()) || !names.insert(column.name()) {
                return Err(ConfigError::Invalid {
                    setting: "custom column",
                    reason: format!("the column name {:?} is already taken", column.name()),
                });
            }
        }
        let pool = match source {
            PoolSource::Pool(pool) => pool,
            PoolSource::Manager(manager) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(ConfigError::Invalid {
                        setting: "database URL",
                        reason: "a store on a URL must be built inside a Tokio runtime".to_owned(),
                    });
                }
                Pool::builder().build_unchecked(*manager)
            }
        };
        let mut store = assemble(
            pool,
            &table,
            self.partitioned,
            self.partitions_ahead,
            custom,
            self.method,
        );
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.violation_tables = self.violation_tables;
        }
        Ok(store)
    }
}

/// A store from settings already checked.
pub(crate) fn assemble<Tls: MakeTls>(
    pool: Pool<PostgresConnectionManager<Tls>>,
    table: &str,
    partitioned: bool,
    partitions_ahead: u32,
    custom: Vec<CustomColumn>,
    method: WriteMethod,
) -> PostgresStore<Tls> {
    PostgresStore {
        inner: Arc::new(Inner {
            pool,
            tables: Tables::new(table),
            partitioned,
            partitions_ahead,
            custom,
            method,
            param_types: OnceCell::new(),
            known_days: Mutex::new(HashSet::new()),
            events: EventChannel::new(),
            violation_tables: true,
        }),
    }
}
