//! Helpers of the chaos soak (`tests/chaos_soak.rs`): read-only reads of the daemon's state
//! file and its `/metrics` open-finding gauges (the daemon process is
//! `daemon_support::Daemon`). The tenant's ground truth is in `truth.rs`,
//! the random faults in `chaos.rs`, the delivery checks in `delivery.rs`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod chaos;
pub mod delivery;
pub mod truth;

use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

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
pub async fn gauges(metrics: SocketAddr) -> Option<BTreeMap<String, u64>> {
    let body = scrape(metrics).await?;
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
pub async fn metrics_match_state(metrics: SocketAddr, state: &Path) -> Result<bool, String> {
    for _ in 0..20 {
        let before = open_by_finding(state);
        let scraped = gauges(metrics).await;
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
