use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use bb8::{Pool, PooledConnection};
use bb8_postgres::PostgresConnectionManager;
use jiff::Timestamp;
use tokio::sync::OnceCell;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::types::Type;
use tokio_postgres::{NoTls, Socket};

use super::schema::{self, quote};
use super::{CustomColumn, PostgresSink, StoreError, Summary};
use crate::ConfigError;

/// The TLS connectors a store can use: [`NoTls`], or any connector bb8-postgres accepts
/// (`postgres-native-tls`, `tokio-postgres-rustls`, ...).
pub trait MakeTls:
    MakeTlsConnect<Socket, Stream: Send + Sync, TlsConnect: Send + TlsConnect<Socket, Future: Send>>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> MakeTls for T where
    T: MakeTlsConnect<
            Socket,
            Stream: Send + Sync,
            TlsConnect: Send + TlsConnect<Socket, Future: Send>,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// How a [`PostgresSink`] writes a batch. With both, a report already stored is skipped, so a
/// retried batch never duplicates rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteMethod {
    /// A binary `COPY` straight into the table, the fastest way into Postgres. When a report
    /// of the batch is already stored (a retry whose first attempt committed), the `COPY`
    /// fails as a whole, writing nothing, and the batch is written again the
    /// [`Unnest`](Self::Unnest) way. The default, as it measured fastest (see
    /// `benches/postgres_ingest.rs`).
    #[default]
    Copy,
    /// One `INSERT ... SELECT FROM unnest($1, $2, ...) ON CONFLICT DO NOTHING` with one array
    /// parameter per column: a single statement and round trip per batch, however large.
    Unnest,
}

/// A Postgres table of reports: its schema, the sink that fills it, and the queries that
/// read it (summaries, retention).
///
/// Cloning is cheap; clones share the pool and the configuration.
pub struct PostgresStore<Tls: MakeTls = NoTls> {
    pub(crate) inner: Arc<Inner<Tls>>,
}

pub(crate) struct Inner<Tls: MakeTls> {
    pub(crate) pool: Pool<PostgresConnectionManager<Tls>>,
    pub(crate) table: String,
    pub(crate) partitioned: bool,
    pub(crate) partitions_ahead: u32,
    pub(crate) custom: Vec<CustomColumn>,
    pub(crate) method: WriteMethod,
    /// The parameter types of the insert statement, learnt once from the server (custom
    /// columns may have any type, even one of the user's own).
    pub(crate) param_types: OnceCell<Vec<Type>>,
    /// The days known to have a partition.
    pub(crate) known_days: Mutex<HashSet<i64>>,
}

impl<Tls: MakeTls> Clone for PostgresStore<Tls> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<Tls: MakeTls> fmt::Debug for PostgresStore<Tls> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.inner.table)
            .field("partitioned", &self.inner.partitioned)
            .field("partitions_ahead", &self.inner.partitions_ahead)
            .field("custom", &self.inner.custom)
            .field("method", &self.inner.method)
            .finish_non_exhaustive()
    }
}

impl PostgresStore<NoTls> {
    /// A store on `url` (`postgres://user:password@host:port/db` or `host=... user=...`),
    /// without TLS, with bb8's default pool (ten connections, 30 s to get one).
    ///
    /// Connections are opened when first needed, so the server may still be down; call
    /// [`migrate`](Self::migrate) to find out at once. For TLS or other pool settings, build
    /// the pool yourself and use [`new`](Self::new).
    ///
    /// # Errors
    ///
    /// When the URL cannot be parsed.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let manager = PostgresConnectionManager::new_from_stringlike(url, NoTls)?;
        let pool = Pool::builder().build(manager).await?;
        Ok(Self::new(pool))
    }
}

impl<Tls: MakeTls> PostgresStore<Tls> {
    /// A store over a pool, writing to the table `csp_reports`, not partitioned.
    pub fn new(pool: Pool<PostgresConnectionManager<Tls>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                pool,
                table: "csp_reports".to_owned(),
                partitioned: false,
                partitions_ahead: 7,
                custom: Vec::new(),
                method: WriteMethod::default(),
                param_types: OnceCell::new(),
                known_days: Mutex::new(HashSet::new()),
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Inner<Tls>)) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            pool: shared.pool.clone(),
            table: shared.table.clone(),
            partitioned: shared.partitioned,
            partitions_ahead: shared.partitions_ahead,
            custom: shared.custom.clone(),
            method: shared.method,
            param_types: OnceCell::new(),
            known_days: Mutex::new(HashSet::new()),
        });
        let mut inner = Inner {
            param_types: OnceCell::new(),
            ..inner
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Uses another table (default `csp_reports`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidIdentifier`] when `name` is not a plain SQL identifier, and
    /// [`ConfigError::Invalid`] when it is longer than 46 bytes (the names of its indexes and
    /// partitions add a suffix to it).
    pub fn table(self, name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = schema::identifier(name.into())?;
        if name.len() > schema::MAX_TABLE_LEN {
            return Err(ConfigError::Invalid {
                setting: "table",
                reason: format!(
                    "{name:?} is longer than {} bytes, leaving no room for index and partition names",
                    schema::MAX_TABLE_LEN
                ),
            });
        }
        Ok(self.with(|inner| inner.table = name))
    }

    /// Adds a column of your own, created by [`migrate`](Self::migrate) and filled for each
    /// report.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when the name is taken by a built-in column or by another
    /// custom column.
    pub fn column(self, column: CustomColumn) -> Result<Self, ConfigError> {
        let taken = schema::is_reserved(column.name())
            || self.inner.custom.iter().any(|c| c.name() == column.name());
        if taken {
            return Err(ConfigError::Invalid {
                setting: "custom column",
                reason: format!("the column name {:?} is already taken", column.name()),
            });
        }
        Ok(self.with(|inner| inner.custom.push(column)))
    }

    /// Partitions the table by day (UTC), so that retention drops whole days instead of
    /// deleting rows. It must be chosen before the table is created: [`migrate`](Self::migrate)
    /// fails on a table created the other way.
    #[must_use]
    pub fn partition_by_day(self, enabled: bool) -> Self {
        self.with(|inner| inner.partitioned = enabled)
    }

    /// How many days of partitions to create ahead of today (default 7). The sink also creates
    /// a missing day's partition when a report for that day arrives.
    #[must_use]
    pub fn partitions_ahead(self, days: u32) -> Self {
        self.with(|inner| inner.partitions_ahead = days)
    }

    /// How the sink writes batches (default [`WriteMethod::Copy`]).
    #[must_use]
    pub fn write_method(self, method: WriteMethod) -> Self {
        self.with(|inner| inner.method = method)
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &Pool<PostgresConnectionManager<Tls>> {
        &self.inner.pool
    }

    /// A sink that writes every report it receives into the table.
    pub fn sink(&self) -> PostgresSink<Tls> {
        PostgresSink {
            store: self.clone(),
        }
    }

    pub(crate) async fn conn(
        &self,
    ) -> Result<PooledConnection<'_, PostgresConnectionManager<Tls>>, StoreError> {
        Ok(self.inner.pool.get().await?)
    }

    /// Creates the table, its indexes and custom columns, or brings them up to date.
    ///
    /// It is idempotent, versioned, and safe when several processes run it at once (they take
    /// turns on an advisory lock). With [daily partitions](Self::partition_by_day), it also
    /// creates the partitions from yesterday to [`partitions_ahead`](Self::partitions_ahead)
    /// days from now.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses, and [`StoreError::Schema`] when the table
    /// exists with the other partitioning.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let inner = &self.inner;
        schema::migrate(&mut conn, &inner.table, inner.partitioned, &inner.custom).await?;
        if inner.partitioned {
            let today = schema::day_of(Timestamp::now());
            let days = (today - 1)..=(today + i64::from(inner.partitions_ahead));
            schema::create_partitions(&mut conn, &inner.table, days.clone()).await?;
            self.known_days().extend(days);
        }
        Ok(())
    }

    pub(crate) fn known_days(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        // The set only caches what the catalog holds; a poisoned one is still correct.
        self.inner
            .known_days
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes sure every given day has a partition, and that the days after the newest of them
    /// have one too, [`partitions_ahead`](Self::partitions_ahead) days ahead.
    pub(crate) async fn ensure_partitions(
        &self,
        conn: &mut tokio_postgres::Client,
        days: &[i64],
        force: bool,
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self.known_days();
            days.iter()
                .copied()
                .filter(|day| force || !known.contains(day))
                .collect()
        };
        let Some(&last) = missing.iter().max() else {
            return Ok(());
        };
        let ahead = (last + 1)..=(last + i64::from(self.inner.partitions_ahead));
        let mut wanted: Vec<i64> = missing.iter().copied().chain(ahead).collect();
        wanted.sort_unstable();
        wanted.dedup();
        schema::create_partitions(conn, &self.inner.table, wanted.iter().copied()).await?;
        self.known_days().extend(wanted);
        Ok(())
    }

    /// Counts and figures for the half-open time range `[since, to)`: totals, and the `top`
    /// most frequent sources, blocked URIs, directives and fingerprints, and the first `top`
    /// invalid reports. Everything is computed by the server.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses.
    pub async fn summary(
        &self,
        since: Timestamp,
        to: Timestamp,
        top: usize,
    ) -> Result<Summary, StoreError> {
        let mut conn = self.conn().await?;
        super::summary::summary(&mut conn, &quote(&self.inner.table), since, to, top).await
    }

    /// Deletes the reports received before `before` and returns how many there were; with
    /// `dry_run`, only counts them.
    ///
    /// On a partitioned table, the days entirely before `before` are dropped whole, and only
    /// the rows of the day it falls in are deleted one by one.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses.
    pub async fn delete_older_than(
        &self,
        before: Timestamp,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn().await?;
        let deleted = super::retention::delete_older_than(
            &mut conn,
            &self.inner.table,
            self.inner.partitioned,
            before,
            dry_run,
        )
        .await?;
        if self.inner.partitioned && !dry_run {
            let first_kept = schema::day_of(before);
            self.known_days().retain(|day| *day >= first_kept);
        }
        Ok(deleted)
    }
}
