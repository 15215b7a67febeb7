//! A running `csp-reports serve`, started as a user would, for the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_csp-reports");

/// `csp-reports serve`, its log lines and its address.
#[derive(Debug)]
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
    pub addr: SocketAddr,
}

impl Served {
    /// `csp-reports --log-format json serve --listen 127.0.0.1:0` with more options.
    pub fn start(options: &[&str]) -> Self {
        Self::spawn(Command::new(BIN), options)
    }

    /// `csp-reports --log-format json consume` with `options`, once it is reading the
    /// stream (its address is unspecified: it listens on nothing).
    pub fn consume(options: &[&str]) -> Self {
        let mut command = Command::new(BIN);
        command.args(["--log-format", "json", "consume"]);
        Self::spawn_ready(command, options, "consuming stream")
    }

    /// The same, with these environment variables (beside no other `CSP_REPORTS_*` ones).
    pub fn start_with_env(env: &[(&str, &str)], options: &[&str]) -> Self {
        let mut command = Command::new(BIN);
        command.envs(env.iter().copied());
        Self::spawn(command, options)
    }

    /// The same, under an open-file limit of `files` (soft and hard, so that the collector
    /// cannot raise it): `sh -c 'ulimit -n FILES; exec csp-reports ...'`.
    pub fn start_with_file_limit(files: u64, options: &[&str]) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(BIN);
        Self::spawn(command, options)
    }

    fn spawn(mut command: Command, options: &[&str]) -> Self {
        command.args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"]);
        let mut served = Self::spawn_ready(command, options, "listening on");
        let line = served.wait_for_line("listening on").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        served.addr = event["address"].as_str().unwrap().parse().unwrap();
        served
    }

    /// Starts `command` with `options` and waits for the log line that says it is ready.
    fn spawn_ready(mut command: Command, options: &[&str], ready: &str) -> Self {
        // Its own working directory: the default store is a file there.
        static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        let dir = DIR.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("csp-reports-served-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("a working directory");
            dir
        });
        command.current_dir(dir);
        let given: Vec<_> = command.get_envs().map(|(key, _)| key.to_owned()).collect();
        for (key, _) in std::env::vars() {
            if key.starts_with("CSP_REPORTS_") && !given.iter().any(|g| *g == *key.as_str()) {
                command.env_remove(key);
            }
        }
        let mut child = command
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start csp-reports serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut served = Self {
            child,
            lines,
            log: Vec::new(),
            addr: ([0, 0, 0, 0], 0).into(),
        };
        if served.wait_for_line(ready).is_none() {
            let exit = served.child.try_wait().ok().flatten();
            panic!(
                "csp-reports did not start ({exit:?}); its log:\n{}",
                served.log.join("\n")
            );
        }
        served
    }

    /// The first log line (from now on, or already read) that contains `needle`.
    pub fn wait_for_line(&mut self, needle: &str) -> Option<String> {
        if let Some(line) = self.log.iter().find(|line| line.contains(needle)) {
            return Some(line.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many files (sockets included) the process has open, from `/proc`.
    pub fn open_files(&self) -> usize {
        open_files(self.pid())
    }

    /// SIGTERM, then waits for a clean exit and returns the whole log.
    pub fn stop(mut self) -> Vec<String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "serve exited with {exit:?}");
        let rest: Vec<String> = self.lines.try_iter().collect();
        self.log.extend(rest);
        std::mem::take(&mut self.log)
    }
}

impl Served {
    /// SIGKILL, as a crash or the OOM killer would, and waits for the process to be gone.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How many files (sockets included) process `pid` has open, from `/proc`.
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the server's /proc/PID/fd")
        .count()
}

impl Drop for Served {
    fn drop(&mut self) {
        // A test that failed midway leaves no server behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
