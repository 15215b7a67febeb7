//! Headless Chromium and Firefox for the integration tests: finding them, a throwaway
//! profile, the command line, and a process that takes its whole process group with it.
//!
//! Needs `chromium`, `firefox-esr` and `certutil` (Debian: `apt-get install chromium
//! firefox-esr libnss3-tools`). Without them a test fails and says so, unless
//! `CSP_REPORTS_SKIP_BROWSERS=1` is set (see [`programs_or_skip`]).
#![allow(dead_code, unreachable_pub)]

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    Chromium,
    Firefox,
}

/// Both browsers, in the order the tests run them.
pub const BROWSERS: [Browser; 2] = [Browser::Chromium, Browser::Firefox];

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "csp-reports-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A browser started in its own process group; dropping it kills the whole group (the
/// Debian `chromium` wrapper script, the browser and its helper processes).
pub struct Running {
    child: Child,
}

impl Running {
    pub fn spawn(mut command: Command) -> Self {
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Self { child }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The group's id is the child's id (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The programs a browser run needs, or why they are missing.
pub fn find_programs(browser: Browser) -> Result<(PathBuf, Option<PathBuf>), String> {
    const INSTALL: &str = "install them with `apt-get install chromium firefox-esr libnss3-tools` \
                           (or set CSP_REPORTS_SKIP_BROWSERS=1 to skip these tests)";
    let names: &[&str] = match browser {
        Browser::Chromium => &["chromium", "chromium-browser"],
        Browser::Firefox => &["firefox-esr", "firefox"],
    };
    let binary = names
        .iter()
        .find_map(|name| which(name))
        .ok_or_else(|| format!("{browser:?} not found (looked for {names:?}); {INSTALL}"))?;
    let certutil = match browser {
        Browser::Chromium => None,
        Browser::Firefox => Some(
            which("certutil")
                .ok_or_else(|| format!("certutil (libnss3-tools) not found; {INSTALL}"))?,
        ),
    };
    Ok((binary, certutil))
}

/// [`find_programs`], or `None` (and a line saying so) when they are missing and
/// `CSP_REPORTS_SKIP_BROWSERS=1` is set; a panic saying how to install them otherwise.
pub fn programs_or_skip(browser: Browser) -> Option<(PathBuf, Option<PathBuf>)> {
    match find_programs(browser) {
        Ok(programs) => Some(programs),
        Err(why) if std::env::var("CSP_REPORTS_SKIP_BROWSERS").is_ok_and(|v| v == "1") => {
            eprintln!("SKIPPED (CSP_REPORTS_SKIP_BROWSERS=1): {why}");
            None
        }
        Err(why) => panic!("{why}"),
    }
}

pub fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A certificate authority for the browser to trust, for pages served over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    /// The authority's certificate, PEM (Firefox: added to the profile with `certutil`).
    pub ca_pem: &'a str,
    /// base64 of the SHA-256 of the leaf's SubjectPublicKeyInfo (Chromium:
    /// `--ignore-certificate-errors-spki-list`).
    pub spki_sha256: &'a str,
}

/// Prefs for a fresh Firefox profile: no first-run pages, no background traffic.
const FIREFOX_PREFS: &str = r#"
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.disabledForTesting", true);
user_pref("app.normandy.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.region.network.url", "");
"#;

pub fn browser_command(
    browser: Browser,
    binary: &Path,
    certutil: Option<&Path>,
    profile: &Path,
    trust: Option<Trust<'_>>,
    url: &str,
) -> Command {
    let mut command = Command::new(binary);
    match browser {
        Browser::Chromium => {
            command.args([
                "--headless",
                // Root in a container has no user namespaces for the sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                // Otherwise Reporting API reports wait about a minute before upload.
                "--short-reporting-delay",
            ]);
            command.arg(format!("--user-data-dir={}", profile.display()));
            if let Some(trust) = trust {
                command.arg(format!(
                    "--ignore-certificate-errors-spki-list={}",
                    trust.spki_sha256
                ));
            }
        }
        Browser::Firefox => {
            std::fs::write(profile.join("user.js"), FIREFOX_PREFS).expect("write user.js");
            if let (Some(trust), Some(certutil)) = (trust, certutil) {
                let ca = profile.join("ca.pem");
                std::fs::write(&ca, trust.ca_pem).expect("write the CA");
                let db = format!("sql:{}", profile.display());
                let run = |args: &[&str]| {
                    let out = Command::new(certutil)
                        .args(args)
                        .output()
                        .expect("run certutil");
                    assert!(out.status.success(), "certutil {args:?}: {out:?}");
                };
                run(&["-N", "-d", &db, "--empty-password"]);
                let ca = ca.to_str().expect("a UTF-8 temporary path");
                run(&[
                    "-A",
                    "-d",
                    &db,
                    "-n",
                    "csp-reports-test-ca",
                    "-t",
                    "C,,",
                    "-i",
                    ca,
                ]);
            }
            command.args(["--headless", "--no-remote", "--profile"]);
            command.arg(profile);
        }
    }
    command.arg(url);
    command
}

/// How long a test waits for its turn before it gives up.
const TURN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One browser at a time: two cores cannot run two browsers and keep their timing sane.
/// Held until dropped.
///
/// On Linux the turn is a listening socket in the abstract namespace, which only one
/// process can hold and which the kernel frees when the holder ends however it ends: so
/// tests in other test binaries (or run as separate processes, as cargo-nextest does) wait
/// too. Elsewhere, a lock within the process.
pub struct OneAtATime {
    #[cfg(target_os = "linux")]
    _held: std::os::unix::net::UnixListener,
    #[cfg(not(target_os = "linux"))]
    _held: tokio::sync::MutexGuard<'static, ()>,
}

#[cfg(target_os = "linux")]
pub async fn one_at_a_time() -> OneAtATime {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::net::{SocketAddr, UnixListener};

    let name = SocketAddr::from_abstract_name(b"tower-csp-reports-browser-tests")
        .expect("an abstract socket name");
    let deadline = std::time::Instant::now() + TURN_TIMEOUT;
    loop {
        match UnixListener::bind_addr(&name) {
            Ok(held) => return OneAtATime { _held: held },
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "another browser test held the browser for {TURN_TIMEOUT:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("taking the browser lock: {e}"),
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub async fn one_at_a_time() -> OneAtATime {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    OneAtATime {
        _held: LOCK.lock().await,
    }
}
