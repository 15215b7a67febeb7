//! The database options shared by every command, and `csp-reports migrate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args as ClapArgs;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;
use tower_csp_reports::error::chain;
use tower_csp_reports::postgres::bb8_postgres::PostgresConnectionManager;
use tower_csp_reports::postgres::tokio_postgres::Config;
use tower_csp_reports::postgres::tokio_postgres::config::SslMode;
use tower_csp_reports::postgres::{PostgresStore, bb8};
use tower_csp_reports::sqlite::SqliteStore;
use tower_csp_reports::store::{ReportStore, StoreError, StoreErrorKind};

use crate::Failure;

/// The database every command uses when none is given.
pub(crate) const DEFAULT_DATABASE: &str = "sqlite://./csp-reports.db";

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct DbArgs {
    /// The database: sqlite://PATH (a file, created when needed) or
    /// postgres://user:password@host:port/db (add ?sslmode=require to connect over TLS; the
    /// server's certificate is then verified). Default: sqlite://./csp-reports.db.
    #[arg(long, env = "CSP_REPORTS_DATABASE_URL")]
    pub(crate) database_url: Option<String>,

    /// PEM file of the authority that signed the database server's certificate, when it is
    /// not a public one (a private or cloud provider's CA); only it is trusted then (Postgres).
    #[arg(long, env = "CSP_REPORTS_DATABASE_CA", value_name = "PEM")]
    pub(crate) database_ca: Option<PathBuf>,

    /// The reports table.
    #[arg(long, env = "CSP_REPORTS_TABLE", default_value = "csp_reports")]
    pub(crate) table: String,

    /// Partition the table by day, so retention drops whole days (Postgres, set at migration).
    #[arg(long, env = "CSP_REPORTS_PARTITION_BY_DAY")]
    pub(crate) partition_by_day: bool,
}

/// A store, and what to call it in logs and messages.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn ReportStore>,
    pub(crate) description: String,
    /// The SQLite file, when it is one.
    pub(crate) file: Option<PathBuf>,
}

impl DbArgs {
    /// The store, migrated, or only checked to answer when `no_migrate` (the schema is
    /// then someone else's job): what a process that writes reports needs first.
    pub(crate) async fn open_for_writing(&self, no_migrate: bool) -> Result<Opened, Failure> {
        let opened = self.open().await?;
        if no_migrate {
            opened
                .store
                .ping()
                .await
                .map_err(failed("cannot use the database"))?;
        } else {
            opened
                .store
                .migrate()
                .await
                .map_err(failed("cannot migrate the database"))?;
        }
        Ok(opened)
    }

    /// The store of `--database-url`, or of the default SQLite file.
    pub(crate) async fn open(&self) -> Result<Opened, Failure> {
        let url = self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE);
        if let Some(rest) = url.strip_prefix("sqlite:") {
            return self.sqlite(rest);
        }
        let store = self.postgres(url).await?;
        Ok(Opened {
            description: format!("Postgres table {}", store.table_name()),
            store: Arc::new(store),
            file: None,
        })
    }

    fn sqlite(&self, rest: &str) -> Result<Opened, Failure> {
        // sqlite://./reports.db, sqlite:///var/lib/reports.db and sqlite:reports.db.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(Failure::usage(
                "invalid --database-url: sqlite:// needs a file, e.g. sqlite://./csp-reports.db",
            ));
        }
        if self.database_ca.is_some() {
            return Err(Failure::usage(
                "--database-ca is for Postgres over TLS, not SQLite",
            ));
        }
        if self.partition_by_day {
            return Err(Failure::usage(
                "--partition-by-day is for Postgres, not SQLite",
            ));
        }
        let path = PathBuf::from(path);
        let store = SqliteStore::builder(&path).table(&self.table).build()?;
        Ok(Opened {
            description: format!("SQLite file {}", path.display()),
            store: Arc::new(store),
            file: Some(path),
        })
    }

    async fn postgres(&self, url: &str) -> Result<PostgresStore<MakeRustlsConnect>, Failure> {
        let mut config: Config = url
            .parse()
            .map_err(|e| Failure::usage(format!("invalid --database-url: {}", chain(&e))))?;
        // TLS when the URL asks for it. `prefer`, the default, connects in clear as before:
        // trying TLS there would turn a server with a self-signed certificate (the default
        // on Debian) from working into failing verification.
        let tls = match config.get_ssl_mode() {
            SslMode::Require => tls_connector(self.database_ca.as_deref())?,
            _ if self.database_ca.is_some() => {
                return Err(Failure::usage(
                    "--database-ca is for TLS: add sslmode=require to the database URL",
                ));
            }
            _ => {
                // Never used with TLS disabled; it only gives both cases one store type.
                config.ssl_mode(SslMode::Disable);
                tls_connector(None)?
            }
        };
        // One direct connection first: the pool would only say that it timed out, where this
        // says why (refused, unknown host, bad password, an untrusted certificate).
        match tokio::time::timeout(Duration::from_secs(10), config.connect(tls.clone())).await {
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
            .build(PostgresConnectionManager::new(config, tls))
            .await
            .map_err(|e| Failure::runtime(format!("cannot reach the database: {e}")))?;
        let store = PostgresStore::builder(pool)
            .table(&self.table)
            .partition_by_day(self.partition_by_day)
            .build()?;
        Ok(store)
    }

    /// The store of a command that reads an existing database: a missing SQLite file is an
    /// error that names it, rather than an empty database made on the spot.
    pub(crate) async fn existing(&self) -> Result<Opened, Failure> {
        let opened = self.open().await?;
        if let Some(file) = &opened.file
            && !file.exists()
        {
            return Err(Failure::usage(format!(
                "no database at {}: give --database-url (sqlite://PATH or postgres://...), \
                     or run `csp-reports migrate` or `serve` first",
                file.display()
            )));
        }
        Ok(opened)
    }
}

/// What verifies the database server: the authority in `ca`, else the public ones.
fn tls_connector(ca: Option<&Path>) -> Result<MakeRustlsConnect, Failure> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let unreadable = |e: &dyn std::fmt::Display| {
                Failure::usage(format!(
                    "cannot read the database CA {}: {e}",
                    path.display()
                ))
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                roots
                    .add(cert.map_err(|e| unreadable(&e))?)
                    .map_err(|e| unreadable(&e))?;
            }
            if roots.is_empty() {
                return Err(unreadable(&"no certificate in it"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::usage(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Turns a store error into a failure that says what could not be done: exit 2 when the
/// database named is wrong (a file that cannot be created, one that is not a database),
/// 1 for the rest.
pub(crate) fn failed(doing: &str) -> impl FnOnce(StoreError) -> Failure + '_ {
    move |error| {
        let message = format!("{doing}: {}", chain(&error));
        match error.kind() {
            StoreErrorKind::Open | StoreErrorKind::NotADatabase => Failure::usage(message),
            _ => Failure::runtime(message),
        }
    }
}

/// `csp-reports migrate`: creates or upgrades the schema.
pub(crate) async fn migrate(args: &DbArgs) -> Result<(), Failure> {
    let opened = args.open().await?;
    eprintln!("migrating the schema of {} ...", opened.description);
    opened
        .store
        .migrate()
        .await
        .map_err(failed("cannot migrate the database"))?;
    println!("schema of {} is up to date", opened.description);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> DbArgs {
        DbArgs {
            database_url: Some(url.to_owned()),
            database_ca: None,
            table: "csp_reports".to_owned(),
            partition_by_day: false,
        }
    }

    #[tokio::test]
    async fn sqlite_urls() {
        for (url, path) in [
            ("sqlite://./a.db", "./a.db"),
            ("sqlite:///var/lib/a.db", "/var/lib/a.db"),
            ("sqlite:a.db", "a.db"),
        ] {
            let opened = args(url)
                .open()
                .await
                .unwrap_or_else(|e| panic!("{url}: {}", e.message));
            assert_eq!(opened.file.as_deref(), Some(Path::new(path)), "{url}");
            assert_eq!(opened.store.name(), "sqlite");
        }
        for bad in ["sqlite://", "sqlite:"] {
            assert!(args(bad).open().await.is_err(), "{bad}");
        }
        let mut partitioned = args("sqlite://a.db");
        partitioned.partition_by_day = true;
        assert_eq!(partitioned.open().await.err().map(|f| f.code), Some(2));
    }
}
