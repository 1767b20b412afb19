//! Helpers of the chaos soak (`tests/chaos_soak.rs`): the daemon binary as a child process
//! (spawn, ready, SIGKILL, SIGTERM, resident memory from /proc), read-only reads of its state
//! file, and its `/metrics` open-finding gauges. The tenant's ground truth is in `truth.rs`,
//! the random faults in `chaos.rs`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod chaos;
pub mod truth;

use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// One run of `m365-posture run`, its log and its `/metrics` address.
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
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The state file opened read-only (it may not exist yet).
fn read_only(state: &Path) -> Option<Connection> {
    Connection::open_with_flags(state, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// Recorded scans (any status).
pub fn scans(state: &Path) -> i64 {
    read_only(state)
        .and_then(|c| {
            c.query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0))
                .ok()
        })
        .unwrap_or(0)
}

/// Open unsuppressed instances per finding, as the state file has them.
pub fn open_by_finding(state: &Path) -> Option<BTreeMap<String, u64>> {
    let conn = read_only(state)?;
    let mut stmt = conn
        .prepare(
            "SELECT finding, COUNT(*) FROM instances
             WHERE resolved_at_ms IS NULL AND suppressed = 0 GROUP BY finding",
        )
        .ok()?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).ok()?;
    rows.collect::<Result<_, _>>().ok()
}

/// Committed events per (finding, action), summed over severities: the daemon's own count.
pub fn event_counts(state: &Path) -> BTreeMap<(String, String), u64> {
    let conn = read_only(state).unwrap();
    let mut stmt = conn
        .prepare("SELECT finding, action, SUM(count) FROM event_counts GROUP BY finding, action")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).filter(|(_, n)| *n > 0).collect()
}

/// Event ids in the outbox right now (committed, not yet delivered to every sink).
pub fn outbox_ids(state: &Path) -> BTreeSet<String> {
    let Some(conn) = read_only(state) else {
        return BTreeSet::new();
    };
    let Ok(mut stmt) = conn.prepare("SELECT event FROM outbox") else {
        return BTreeSet::new();
    };
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.filter_map(Result::ok)
        .map(|body| {
            let event: serde_json::Value = serde_json::from_str(&body).unwrap();
            event["event_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// Every instance: (finding, resource id) -> open and announced.
pub fn instances(state: &Path) -> BTreeMap<(String, String), bool> {
    let conn = read_only(state).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT finding, resource_id, resolved_at_ms IS NULL AND announced = 1 FROM instances",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// `m365_posture_findings` per finding (summed over severities), zeros left out.
pub async fn gauges(daemon: &Daemon) -> Option<BTreeMap<String, u64>> {
    let body = scrape(daemon.metrics).await?;
    let mut open = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| l.starts_with("m365_posture_findings{"))
    {
        let (key, value) = line.rsplit_once(' ')?;
        let finding = key.split("finding=\"").nth(1)?.split('"').next()?;
        let value: f64 = value.parse().ok()?;
        if value > 0.0 {
            *open.entry(finding.to_owned()).or_insert(0) += value as u64;
        }
    }
    Some(open)
}

/// `GET /metrics`; `None` when the listener does not answer 200 within 5 s.
async fn scrape(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// Compares the gauges with the state file: a state read before and after the scrape must
/// agree with each other (no commit in between) and with the scrape. `Ok(false)` when a commit
/// fell in between every time.
pub async fn metrics_match_state(daemon: &Daemon, state: &Path) -> Result<bool, String> {
    for _ in 0..20 {
        let before = open_by_finding(state);
        let scraped = gauges(daemon).await;
        let after = open_by_finding(state);
        match (before, scraped, after) {
            (Some(b), Some(s), Some(a)) if a == b => {
                return if s == a {
                    Ok(true)
                } else {
                    Err(format!("gauges {s:?} but the state file has {a:?}"))
                };
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Ok(false)
}

/// Recorded scans per status with their mean duration in seconds.
pub fn scan_summary(state: &Path) -> Vec<(String, i64, f64)> {
    let conn = read_only(state).unwrap();
    let mut stmt = conn
        .prepare("SELECT status, COUNT(*), AVG(duration_seconds) FROM scans GROUP BY status")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}
