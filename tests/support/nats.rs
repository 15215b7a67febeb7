//! A real NATS server with JetStream for tests and benchmarks.
//!
//! Each [`NatsServer`] is a `nats-server` process of its own, on a free loopback port, with
//! its JetStream store in a temporary directory; [`stop`](NatsServer::stop) and
//! [`start`](NatsServer::start) restart it on the same port and store, as an operator would.
//!
//! Stopping: a `Drop` does not run when a test process is killed, so each server gets a
//! watchdog, a small shell loop started beside it that polls this process's pid; once the
//! process is gone, whether it ended normally, panicked or was killed, the watchdog kills the
//! server (whose pid it reads from the server's pid file, rewritten on each restart) and
//! removes its directory. A `Drop` stops it too.
//!
//! A missing `nats-server` binary is a failure with install instructions, never a skip.
#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tower_csp_reports::Report;
use tower_csp_reports::nats::async_nats;
use tower_csp_reports::nats::async_nats::jetstream;
use tower_csp_reports::nats::async_nats::jetstream::consumer::{AckPolicy, pull};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `nats-server` binary: `NATS_SERVER` if set, else from `PATH` or Debian's `/usr/sbin`.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(path);
    }
    let dirs = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .collect::<Vec<_>>();
    if let Some(path) = dirs
        .iter()
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
    {
        return path;
    }
    panic!(
        "nats-server was not found: install it (`apt-get install -y nats-server` on \
         Debian/Ubuntu, `brew install nats-server` on macOS, or a release from the NATS \
         project), or set NATS_SERVER to its path; scripts/test installs it"
    );
}

/// A `nats-server -js` started by this process.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl NatsServer {
    /// A server of its own, started and accepting clients.
    pub fn start_new() -> Self {
        Self::with_config("")
    }

    /// A server whose configuration file also holds `extra` (e.g. `max_payload: 8192`).
    pub fn with_config(extra: &str) -> Self {
        let bin = binary();
        let dir = std::env::temp_dir().join(format!(
            "tower-csp-reports-nats_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port")
            .port();
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             server_name: \"test_{port}\"\n\
             jetstream {{ store_dir: {store:?} }}\n\
             pid_file: {pid:?}\n\
             log_file: {log:?}\n\
             {extra}\n",
            store = dir.join("store").display().to_string(),
            pid = dir.join("nats.pid").display().to_string(),
            log = dir.join("server.log").display().to_string(),
        );
        std::fs::write(dir.join("nats.conf"), config).expect("write nats.conf");
        let server = Self {
            bin,
            dir,
            port,
            child: Mutex::new(None),
        };
        server.watchdog();
        server.start();
        server
    }

    fn watchdog(&self) {
        let script = r#"owner="$1"; dir="$2"
while kill -0 "$owner" 2>/dev/null; do sleep 0.5; done
[ -f "$dir/nats.pid" ] && kill -9 "$(cat "$dir/nats.pid")" 2>/dev/null
rm -rf "$dir""#;
        // Never waited on: it must outlive this process to clean up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("watchdog")
            .arg(std::process::id().to_string())
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server watchdog");
    }

    /// Starts the server (again) and waits until it takes clients.
    pub fn start(&self) {
        let mut child = self.child.lock().unwrap();
        assert!(child.is_none(), "the server is running");
        // The log is appended to on each start: look for readiness after what is there.
        let logged = self.log().len();
        let started = Command::new(&self.bin)
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        *child = Some(started);
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(status) = child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nats-server exited at once ({status}):\n{}", self.log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && self
                    .log()
                    .get(logged..)
                    .is_some_and(|l| l.contains("Server is ready"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start within 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server gracefully (SIGTERM: it closes connections and flushes its store),
    /// as a restart in production does.
    pub fn stop(&self) {
        self.signal("TERM");
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&self) {
        self.signal("KILL");
    }

    fn signal(&self, signal: &str) {
        let mut child = self.child.lock().unwrap();
        let Some(mut running) = child.take() else {
            return;
        };
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{signal} {}", running.id()))
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while running.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = running.kill();
                let _ = running.wait();
                panic!("nats-server did not stop within 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its directory (configuration, store, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A plain client, for checking what the stream holds.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to nats-server")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.get_mut().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Every message in `stream`, in order: its subject and the report it holds (read with an
/// ephemeral consumer that acknowledges nothing, so other consumers are not disturbed).
pub async fn stream_reports(client: &async_nats::Client, stream: &str) -> Vec<(String, Report)> {
    let js = jetstream::new(client.clone());
    let mut stream = js.get_stream(stream).await.expect("the stream exists");
    let total = stream.info().await.expect("stream info").state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .expect("an ephemeral consumer");
    let mut out = Vec::with_capacity(total);
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < total {
        assert!(
            Instant::now() < deadline,
            "read {} of {total} messages",
            out.len()
        );
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("fetch");
        while let Some(message) = futures_util::StreamExt::next(&mut batch).await {
            let message = message.expect("a message");
            let report: Report = serde_json::from_slice(&message.payload)
                .unwrap_or_else(|e| panic!("not a report ({e}): {:?}", message.payload));
            out.push((message.subject.to_string(), report));
        }
    }
    out
}
