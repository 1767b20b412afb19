//! The daemon binary as a child process for the end-to-end tests: spawn (ready when it logs
//! "Daemon ready"), SIGKILL, SIGTERM with a clean exit, resident memory from /proc.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One run of the binary (`m365-posture run`, JSON logs at info), its log and its `/metrics`
/// address.
pub struct Daemon {
    child: tokio::process::Child,
    pub pid: u32,
    pub metrics: SocketAddr,
    pub log: PathBuf,
    pub started: Instant,
}

impl Daemon {
    /// Starts the daemon and waits for its "Daemon ready" log line (JSON logs).
    pub async fn spawn(config: &Path, log: PathBuf) -> Daemon {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        for _ in 0..600 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let ready = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|l| l["fields"]["message"] == "Daemon ready");
            if let Some(line) = ready {
                let metrics = line["fields"]["metrics"].as_str().unwrap().parse().unwrap();
                let started = Instant::now();
                return Daemon {
                    child,
                    pid,
                    metrics,
                    log,
                    started,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("daemon exited with {status}: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "daemon not ready: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    }

    /// Panics when the daemon exited by itself.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the daemon exited by itself ({status}): {}",
                tail(&self.log, 40)
            );
        }
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub async fn kill(mut self) {
        self.assert_alive();
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM and a clean exit (code 0) within 15 s.
    pub async fn stop(mut self) {
        self.assert_alive();
        let pid = self.pid.to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("daemon did not stop within 15 s of SIGTERM")
            .unwrap();
        assert_eq!(status.code(), Some(0), "clean stop exits 0");
    }

    /// Resident memory (VmRSS) in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

/// The last `lines` lines of a log file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
