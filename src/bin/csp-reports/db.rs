//! The database options shared by every command, and `csp-reports migrate`.

use clap::Args as ClapArgs;
use std::time::Duration;

use tower_csp_reports::postgres::bb8_postgres::PostgresConnectionManager;
use tower_csp_reports::postgres::tokio_postgres::{self, NoTls};
use tower_csp_reports::postgres::{PostgresStore, bb8};

use crate::Failure;

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct DbArgs {
    /// The PostgreSQL database (postgres://user:password@host:port/db).
    #[arg(long, env = "CSP_REPORTS_DATABASE_URL")]
    pub(crate) database_url: Option<String>,

    /// The reports table.
    #[arg(long, env = "CSP_REPORTS_TABLE", default_value = "csp_reports")]
    pub(crate) table: String,

    /// Partition the table by day, so retention drops whole days (set at migration).
    #[arg(long, env = "CSP_REPORTS_PARTITION_BY_DAY")]
    pub(crate) partition_by_day: bool,
}

impl DbArgs {
    /// The store, when a database URL was given.
    pub(crate) async fn store(&self) -> Result<Option<PostgresStore>, Failure> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
        let manager = PostgresConnectionManager::new_from_stringlike(url.as_str(), NoTls)
            .map_err(|e| Failure::usage(format!("invalid --database-url: {e}")))?;
        // One direct connection first: the pool would only say that it timed out, where this
        // says why (refused, unknown host, bad password).
        match tokio::time::timeout(Duration::from_secs(10), tokio_postgres::connect(url, NoTls))
            .await
        {
            Ok(Ok((_client, connection))) => drop(connection),
            Ok(Err(e)) => {
                return Err(Failure::runtime(format!(
                    "cannot reach the database: {}",
                    chain(&e)
                )));
            }
            Err(_) => {
                return Err(Failure::runtime(
                    "cannot reach the database: no answer within 10 s",
                ));
            }
        }
        let pool = bb8::Pool::builder()
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .await
            .map_err(|e| Failure::runtime(format!("cannot reach the database: {e}")))?;
        let store = PostgresStore::new(pool)
            .table(&self.table)?
            .partition_by_day(self.partition_by_day);
        Ok(Some(store))
    }

    /// The store; a command that needs one fails without it.
    pub(crate) async fn required_store(&self) -> Result<PostgresStore, Failure> {
        self.store().await?.ok_or_else(|| {
            Failure::usage("this command needs a database: give --database-url or set CSP_REPORTS_DATABASE_URL")
        })
    }
}

/// Turns a store error into a failure that says what could not be done.
pub(crate) fn failed(
    doing: &str,
) -> impl FnOnce(tower_csp_reports::postgres::StoreError) -> Failure + '_ {
    move |error| Failure::runtime(format!("{doing}: {}", chain(&error)))
}

/// `csp-reports migrate`: creates or upgrades the schema.
pub(crate) async fn migrate(args: &DbArgs) -> Result<(), Failure> {
    let store = args.required_store().await?;
    eprintln!("migrating the schema of table {} ...", store.table_name());
    store
        .migrate()
        .await
        .map_err(failed("cannot migrate the database"))?;
    println!("schema of {} is up to date", store.table_name());
    Ok(())
}

/// An error with its causes: "error connecting to server: Connection refused (os error 111)".
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
