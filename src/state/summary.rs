//! Read-only views of committed state for `/metrics` and `report`: finding counts per check,
//! check status, last scans and event counts. Everything here is computed from the file, so values survive
//! restarts and a failed scan leaves the last committed counts in place.

use super::{from_ms, StateError, Store};
use crate::findings::{FindingId, Severity};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};
use std::collections::BTreeMap;

/// One check of one tenant as last recorded, with its instance counts.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSummary {
    /// Which check.
    pub finding: FindingId,
    /// Severity at the last scan.
    pub severity: Severity,
    /// Whether the last scan evaluated it fully.
    pub success: bool,
    /// Whether it has ever been evaluated (only then are finding counts exported).
    pub ever_evaluated: bool,
    /// Open unsuppressed instances.
    pub active: u64,
    /// Open suppressed instances.
    pub suppressed: u64,
    /// When the newest open unsuppressed instance was first seen (None when there is none):
    /// it moves only when an instance opens, so alerts on it fire for the first scan's
    /// findings and once per new instance, not once per restart.
    pub newest_first_seen: Option<DateTime<Utc>>,
}

/// How one check of a tenant ended at the last committed scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    /// Which check.
    pub finding: FindingId,
    /// `ok`, `partial` or `skipped`.
    pub status: String,
    /// Why it was skipped or partial.
    pub reason: Option<String>,
    /// When it was last evaluated (partly or fully); `None` if never.
    pub evaluated_at: Option<DateTime<Utc>>,
}

/// Open instances of one finding: counts and the newest first-seen time.
#[derive(Debug, Clone, Copy, Default)]
struct OpenCounts {
    active: u64,
    suppressed: u64,
    newest_first_seen_ms: Option<i64>,
}

/// The last scan of a tenant and its last success.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanSummary {
    /// Whether the last scan committed (ok or partial).
    pub last_success: bool,
    /// Duration of the last scan.
    pub last_duration_seconds: f64,
    /// When the last scan ended.
    pub last_finished: DateTime<Utc>,
    /// When the last successful scan ended, if any.
    pub last_success_finished: Option<DateTime<Utc>>,
}

/// Event count key: tenant, finding, severity, action.
pub type EventCountKey = (String, String, String, String);

impl Store {
    /// Per-check summary of a tenant.
    pub fn check_summaries(&self, tenant: &str) -> Result<Vec<CheckSummary>, StateError> {
        let conn = self.lock()?;
        let counts = open_counts(&conn, tenant)?;
        let mut stmt = conn.prepare_cached(
            "SELECT finding, severity, status, evaluated_at_ms IS NOT NULL
             FROM check_status WHERE tenant = ?1",
        )?;
        let mut rows = stmt.query([tenant])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let (finding, severity): (String, String) = (row.get(0)?, row.get(1)?);
            let (Ok(finding), Ok(severity)) = (finding.parse::<FindingId>(), severity.parse())
            else {
                continue;
            };
            let open = counts.get(&finding).copied().unwrap_or_default();
            found.push(CheckSummary {
                finding,
                severity,
                success: row.get::<_, String>(2)? == "ok",
                ever_evaluated: row.get(3)?,
                active: open.active,
                suppressed: open.suppressed,
                newest_first_seen: open.newest_first_seen_ms.map(from_ms),
            });
        }
        Ok(found)
    }

    /// How each check of a tenant ended at the last committed scan, in catalogue order.
    pub fn check_records(&self, tenant: &str) -> Result<Vec<CheckRecord>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT finding, status, reason, evaluated_at_ms FROM check_status WHERE tenant = ?1",
        )?;
        let mut rows = stmt.query([tenant])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let Ok(finding) = row.get::<_, String>(0)?.parse::<FindingId>() else {
                continue;
            };
            found.push(CheckRecord {
                finding,
                status: row.get(1)?,
                reason: row.get(2)?,
                evaluated_at: row.get::<_, Option<i64>>(3)?.map(from_ms),
            });
        }
        found.sort_by_key(|record| record.finding);
        Ok(found)
    }

    /// The last scan of a tenant, if it was ever scanned.
    pub fn scan_summary(&self, tenant: &str) -> Result<Option<ScanSummary>, StateError> {
        let conn = self.lock()?;
        let last = conn
            .query_row(
                "SELECT status, duration_seconds, finished_ms FROM scans
                 WHERE tenant = ?1 ORDER BY id DESC LIMIT 1",
                [tenant],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, f64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                },
            )
            .optional()?;
        let Some((status, duration, finished)) = last else {
            return Ok(None);
        };
        let success: Option<i64> = conn.query_row(
            "SELECT MAX(finished_ms) FROM scans WHERE tenant = ?1 AND status != 'failed'",
            [tenant],
            |row| row.get(0),
        )?;
        Ok(Some(ScanSummary {
            last_success: status != "failed",
            last_duration_seconds: duration,
            last_finished: from_ms(finished),
            last_success_finished: success.map(from_ms),
        }))
    }

    /// Events ever written, by tenant, finding, severity and action.
    pub fn event_counts(&self) -> Result<BTreeMap<EventCountKey, u64>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached("SELECT tenant, finding, severity, action, count FROM event_counts")?;
        let mut rows = stmt.query([])?;
        let mut found = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let key = (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            found.insert(key, u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0));
        }
        Ok(found)
    }

    /// Pending outbox events per sink.
    pub fn outbox_pending(&self, sinks: &[String]) -> Result<BTreeMap<String, u64>, StateError> {
        let conn = self.lock()?;
        Ok(super::outbox::pending_by_sink(&conn, sinks)?)
    }
}

/// Open instances per finding.
fn open_counts(
    conn: &Connection,
    tenant: &str,
) -> Result<BTreeMap<FindingId, OpenCounts>, StateError> {
    let mut stmt = conn.prepare_cached(
        "SELECT finding, SUM(suppressed = 0), SUM(suppressed != 0),
                MAX(CASE WHEN suppressed = 0 THEN first_seen_ms END)
         FROM instances WHERE tenant = ?1 AND resolved_at_ms IS NULL GROUP BY finding",
    )?;
    let mut rows = stmt.query([tenant])?;
    let mut counts = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let Ok(finding) = row.get::<_, String>(0)?.parse::<FindingId>() else {
            continue;
        };
        let active = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
        let suppressed = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
        let newest_first_seen_ms = row.get(3)?;
        counts.insert(
            finding,
            OpenCounts {
                active,
                suppressed,
                newest_first_seen_ms,
            },
        );
    }
    Ok(counts)
}
