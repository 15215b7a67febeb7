//! A real PostgreSQL server for tests and benchmarks.
//!
//! With `DATABASE_URL` set, tests use that server. Otherwise the first test of the process
//! starts a throwaway server: `initdb` into a temporary directory, `pg_ctl start` on a free
//! loopback port (as the `postgres` user when running as root, since the server refuses to run
//! as root). Every test gets a database of its own, so tests run in parallel.
//!
//! Stopping: a `Drop` on a static never runs, so each server gets a watchdog, a small shell
//! loop started beside it that polls this process's pid; once the process is gone, whether it
//! ended normally, panicked or was killed, the watchdog stops the server (`pg_ctl stop -m
//! immediate`) and removes its directory. A dedicated server (for tests that stop and restart
//! it) is also stopped when dropped.
//!
//! Missing server binaries are a failure with install instructions, never a silent skip.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tower_csp_reports::postgres::bb8::Pool;
use tower_csp_reports::postgres::bb8_postgres::PostgresConnectionManager;
use tower_csp_reports::postgres::tokio_postgres::{self, Config, NoTls};

/// A server started by this process.
#[derive(Debug)]
pub struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    tls: bool,
}

static SHARED: OnceLock<Server> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The directory of `initdb`, `pg_ctl` and `postgres`.
fn bindir() -> PathBuf {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return dir;
        }
    }
    // Debian and Ubuntu keep the server binaries out of PATH, one directory per version.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return dir;
    }
    if let Some(dir) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_server(dir))
    {
        return dir;
    }
    panic!(
        "the PostgreSQL server binaries (initdb, pg_ctl) were not found: install them \
         (`apt-get install postgresql` on Debian/Ubuntu, `brew install postgresql` on macOS), \
         set PG_BINDIR to their directory, or set DATABASE_URL to a server where the user may \
         create databases"
    );
}

fn run(mut command: Command, what: &str) {
    let out = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// A server of its own, for tests that stop and start it.
    pub fn dedicated() -> Self {
        let server = Self::initialized();
        server.watchdog();
        server.start();
        server
    }

    /// A server of its own that takes TCP connections over TLS only (`hostssl` in
    /// `pg_hba.conf`, no `host` line), with the given PEM certificate and key.
    pub fn tls_only(cert_pem: &str, key_pem: &str) -> Self {
        let mut server = Self::initialized();
        server.tls = true;
        let data = server.data();
        std::fs::write(data.join("server.crt"), cert_pem).expect("write the certificate");
        std::fs::write(data.join("server.key"), key_pem).expect("write the key");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        let key = data.join("server.key");
        let mut chmod = Command::new("chmod");
        chmod.arg("600").arg(&key);
        run(chmod, "chmod");
        if is_root() {
            let mut chown = Command::new("chown");
            chown
                .arg("postgres:")
                .arg(&key)
                .arg(data.join("server.crt"))
                .arg(data.join("pg_hba.conf"));
            run(chown, "chown");
        }
        server.watchdog();
        server.start();
        server
    }

    /// A new data directory, not started yet.
    fn initialized() -> Self {
        let bin = bindir();
        let dir = std::env::temp_dir().join(unique("tower-csp-reports-pg"));
        std::fs::create_dir_all(&dir).expect("create the server directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let server = Self {
            bin,
            dir,
            port,
            tls: false,
        };
        if is_root() {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg("postgres:").arg(&server.dir);
            run(chown, "chown");
        }
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(server.data()).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-locale",
        ]);
        run(initdb, "initdb");
        server
    }

    /// The server shared by every test of this process.
    pub fn shared() -> &'static Self {
        SHARED.get_or_init(Self::dedicated)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command for one of the server binaries, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn watchdog(&self) {
        let stop = self.command("pg_ctl");
        let mut argv: Vec<String> = std::iter::once(stop.get_program())
            .chain(stop.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        argv.extend(["stop", "-m", "immediate", "-D"].map(str::to_owned));
        argv.push(self.data().display().to_string());
        let script = r#"owner="$1"; dir="$2"; shift 2
while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
"$@" >/dev/null 2>&1
rm -rf "$dir""#;
        // Never waited on: it must outlive this process to clean up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.dir)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server watchdog");
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200 -c ssl={}",
            self.port,
            self.dir.display(),
            if self.tls { "on" } else { "off" }
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("start")
            .arg("-w")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .arg("-o")
            .arg(options)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run(start, "pg_ctl start");
    }

    /// Stops the server (fast shutdown: open connections are cut, like a restart in production).
    pub fn stop(&self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-w", "-m", "fast", "-D"])
            .arg(self.data());
        run(stop, "pg_ctl stop");
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection settings for one of its databases.
    pub fn config(&self, dbname: &str) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname(dbname);
        config
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.args(["stop", "-m", "immediate", "-D"])
            .arg(self.data())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh, empty database for one test.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// How to connect to it.
    pub config: Config,
}

impl TestDb {
    /// A new database on `DATABASE_URL`'s server, or on the shared throwaway server.
    pub async fn new() -> Self {
        let admin = match std::env::var("DATABASE_URL") {
            Ok(url) => url
                .parse::<Config>()
                .expect("DATABASE_URL is not a Postgres URL"),
            Err(_) => Server::shared().config("postgres"),
        };
        Self::on(admin).await
    }

    /// A new database on the server `admin` connects to.
    pub async fn on(admin: Config) -> Self {
        let name = unique("csp_test");
        let (client, connection) = admin.connect(NoTls).await.expect("connect to Postgres");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        let mut config = admin;
        config.dbname(&name);
        Self { config }
    }

    /// Its URL, for a command's `--database-url`.
    pub fn url(&self) -> String {
        let config = &self.config;
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("unexpected host {other:?}"),
        };
        format!(
            "postgres://{}@{}:{}/{}",
            config.get_user().unwrap_or("postgres"),
            host,
            config.get_ports()[0],
            config.get_dbname().unwrap_or("postgres")
        )
    }

    /// A pool of connections to it.
    pub async fn pool(&self) -> Pool<PostgresConnectionManager<NoTls>> {
        Pool::builder()
            .max_size(8)
            .build(PostgresConnectionManager::new(self.config.clone(), NoTls))
            .await
            .expect("connect to the test database")
    }

    /// How many rows a table has.
    pub async fn count(&self, table: &str) -> i64 {
        self.client()
            .await
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .expect("count rows")
            .get(0)
    }

    /// One plain connection, for checking what was written.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = self.config.connect(NoTls).await.expect("connect");
        tokio::spawn(connection);
        client
    }
}

/// For tests that stop and start the server: a dedicated server (even when `DATABASE_URL` is
/// set), a fresh database on it, and a pool that gives up on a connection within 500 ms, so
/// that an outage shows as errors rather than waits.
pub async fn restartable() -> (
    std::sync::Arc<Server>,
    TestDb,
    Pool<PostgresConnectionManager<NoTls>>,
) {
    let server = std::sync::Arc::new(
        tokio::task::spawn_blocking(Server::dedicated)
            .await
            .expect("start a dedicated server"),
    );
    let db = TestDb::on(server.config("postgres")).await;
    let pool = Pool::builder()
        .max_size(4)
        .connection_timeout(std::time::Duration::from_millis(500))
        .build(PostgresConnectionManager::new(db.config.clone(), NoTls))
        .await
        .expect("a pool on the dedicated server");
    (server, db, pool)
}
