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

use crate::Failure;

/// The store of every command: over TLS when the database URL says `sslmode=require`.
pub(crate) type Store = PostgresStore<MakeRustlsConnect>;

#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct DbArgs {
    /// The PostgreSQL database (postgres://user:password@host:port/db). Add
    /// ?sslmode=require to connect over TLS; the server's certificate is then verified.
    #[arg(long, env = "CSP_REPORTS_DATABASE_URL")]
    pub(crate) database_url: Option<String>,

    /// PEM file of the authority that signed the database server's certificate, when it is
    /// not a public one (a private or cloud provider's CA); only it is trusted then.
    #[arg(long, env = "CSP_REPORTS_DATABASE_CA", value_name = "PEM")]
    pub(crate) database_ca: Option<PathBuf>,

    /// The reports table.
    #[arg(long, env = "CSP_REPORTS_TABLE", default_value = "csp_reports")]
    pub(crate) table: String,

    /// Partition the table by day, so retention drops whole days (set at migration).
    #[arg(long, env = "CSP_REPORTS_PARTITION_BY_DAY")]
    pub(crate) partition_by_day: bool,
}

impl DbArgs {
    /// The store, when a database URL was given.
    pub(crate) async fn store(&self) -> Result<Option<Store>, Failure> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
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
        let store = PostgresStore::new(pool)
            .table(&self.table)?
            .partition_by_day(self.partition_by_day);
        Ok(Some(store))
    }

    /// The store; a command that needs one fails without it.
    pub(crate) async fn required_store(&self) -> Result<Store, Failure> {
        self.store().await?.ok_or_else(|| {
            Failure::usage("this command needs a database: give --database-url or set CSP_REPORTS_DATABASE_URL")
        })
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
