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

use super::builder::{PostgresStoreBuilder, assemble};
use super::schema::{self, Tables};
use super::{CustomColumn, PostgresSink};
use crate::store::{EventChannel, StoreError};

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

/// A Postgres table of reports and its violation tables: their schema, the sink that fills
/// them, and the queries that read them. It implements [`ReportStore`](crate::store::ReportStore).
///
/// Cloning is cheap; clones share the pool, the configuration and the violation events.
pub struct PostgresStore<Tls: MakeTls = NoTls> {
    pub(crate) inner: Arc<Inner<Tls>>,
}

pub(crate) struct Inner<Tls: MakeTls> {
    pub(crate) pool: Pool<PostgresConnectionManager<Tls>>,
    pub(crate) tables: Tables,
    pub(crate) partitioned: bool,
    pub(crate) partitions_ahead: u32,
    pub(crate) custom: Vec<CustomColumn>,
    pub(crate) method: WriteMethod,
    /// The parameter types of the insert statement, learnt once from the server (custom
    /// columns may have any type, even one of the user's own).
    pub(crate) param_types: OnceCell<Vec<Type>>,
    /// The days known to have a partition.
    pub(crate) known_days: Mutex<HashSet<i64>>,
    pub(crate) events: EventChannel,
    /// Whether the sink maintains the violation tables (always, but in benchmarks).
    pub(crate) violation_tables: bool,
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
            .field("table", &self.inner.tables.name)
            .field("partitioned", &self.inner.partitioned)
            .field("partitions_ahead", &self.inner.partitions_ahead)
            .field("custom", &self.inner.custom)
            .field("method", &self.inner.method)
            .finish_non_exhaustive()
    }
}

impl PostgresStore<NoTls> {
    /// The settings of a store on `url`, without TLS: see
    /// [`PostgresStoreBuilder::from_url`].
    pub fn builder_from_url(url: &str) -> PostgresStoreBuilder<NoTls> {
        PostgresStoreBuilder::from_url(url)
    }
}

impl<Tls: MakeTls> PostgresStore<Tls> {
    /// A store over a pool, writing to the table `csp_reports`, not partitioned: the defaults
    /// of [`builder`](Self::builder).
    pub fn new(pool: Pool<PostgresConnectionManager<Tls>>) -> Self {
        assemble(
            pool,
            "csp_reports",
            false,
            7,
            Vec::new(),
            WriteMethod::default(),
        )
    }

    /// The settings of a store over a pool.
    pub fn builder(pool: Pool<PostgresConnectionManager<Tls>>) -> PostgresStoreBuilder<Tls> {
        PostgresStoreBuilder::new(pool)
    }

    /// The reports table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.tables.name
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &Pool<PostgresConnectionManager<Tls>> {
        &self.inner.pool
    }

    /// A sink that writes every report it receives into the tables.
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

    /// Creates the tables, their indexes and custom columns, or brings them up to date.
    ///
    /// It is idempotent, versioned, and safe when several processes run it at once (they take
    /// turns on an advisory lock). With [daily partitions](PostgresStoreBuilder::partition_by_day),
    /// it also creates the partitions from yesterday to
    /// [`partitions_ahead`](PostgresStoreBuilder::partitions_ahead) days from now.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses; a [`Schema`] error when the table exists
    /// with the other partitioning; a [`NewerSchema`] error when a newer version of this crate
    /// migrated it.
    ///
    /// [`Schema`]: crate::store::StoreErrorKind::Schema
    /// [`NewerSchema`]: crate::store::StoreErrorKind::NewerSchema
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let inner = &self.inner;
        schema::migrate(&mut conn, &inner.tables, inner.partitioned, &inner.custom).await?;
        if inner.partitioned {
            let today = schema::day_of(Timestamp::now());
            let days = (today - 1)..=(today + i64::from(inner.partitions_ahead));
            schema::create_partitions(&mut conn, &inner.tables.name, days.clone()).await?;
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
    /// have one too, [`partitions_ahead`](PostgresStoreBuilder::partitions_ahead) days ahead.
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
        schema::create_partitions(conn, &self.inner.tables.name, wanted.iter().copied()).await?;
        self.known_days().extend(wanted);
        Ok(())
    }
}
