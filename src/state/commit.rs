//! Writing a scan's result: instances, check status, event counts, the outbox rows and the scan
//! row in one SQLite transaction (dropped uncommitted on any error, so a failure or a crash
//! leaves the previous state with its events). When the outbox would exceed its bound the
//! transaction is not committed and [`StateError::OutboxFull`] is returned: state does not
//! advance, and the next scan recomputes the same transitions.

use super::reconcile::{Changes, CheckState};
use super::{outbox, to_ms, StateError, Store};
use crate::events::FindingEvent;
use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStatus {
    /// Every check ran with all its data.
    Ok,
    /// Committed, but some checks or resources failed.
    Partial,
    /// Nothing usable was committed (collection error, deadline, outbox full, store error).
    Failed,
}

impl ScanStatus {
    /// `ok`, `partial` or `failed` (the `status` label of `m365_posture_scans_total`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

/// One row of scan history.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanRecord {
    /// Tenant name.
    pub tenant: String,
    /// The scan's start (its `now`).
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: DateTime<Utc>,
    /// How it ended.
    pub status: ScanStatus,
    /// Why it failed or was partial, without secrets.
    pub error: Option<String>,
}

/// The outbox bound: sinks and the most pending events any one of them may have.
#[derive(Debug, Clone, Copy)]
pub struct OutboxLimit<'a> {
    /// Configured sink names.
    pub sinks: &'a [String],
    /// `[state] outbox_max_events`.
    pub max: usize,
}

impl Store {
    /// Commits a reconciled scan atomically, or nothing at all.
    pub fn apply(
        &self,
        tenant: &str,
        changes: &Changes,
        scan: &ScanRecord,
        limit: OutboxLimit<'_>,
    ) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        if !changes.events.is_empty()
            && outbox::would_overflow(&tx, limit.sinks, changes.events.len(), limit.max)?
        {
            let pending = outbox::pending_by_sink(&tx, limit.sinks)?;
            return Err(StateError::OutboxFull {
                pending: pending.values().copied().max().unwrap_or(0),
                adding: changes.events.len(),
                max: limit.max,
            });
        }
        write_instances(&tx, tenant, changes)?;
        write_checks(&tx, tenant, changes, scan.started)?;
        count_events(&tx, &changes.events)?;
        outbox::enqueue(&tx, &changes.events)?;
        insert_scan(&tx, scan)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a scan that committed nothing else (failed before or at reconcile).
    pub fn record_scan(&self, scan: &ScanRecord) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        insert_scan(&tx, scan)?;
        tx.commit()?;
        Ok(())
    }
}

fn write_instances(
    tx: &Transaction<'_>,
    tenant: &str,
    changes: &Changes,
) -> Result<(), StateError> {
    let mut upsert = tx.prepare_cached(
        "INSERT OR REPLACE INTO instances (tenant, finding, resource_id, fingerprint,
             resource_name, severity, first_seen_ms, last_seen_ms, resolved_at_ms, suppressed,
             announced, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for row in &changes.instances {
        upsert.execute(params![
            tenant,
            row.finding.as_str(),
            row.resource_id,
            row.fingerprint,
            row.resource_name,
            row.severity.as_str(),
            to_ms(row.first_seen),
            to_ms(row.last_seen),
            row.resolved_at.map(to_ms),
            row.suppressed,
            row.announced,
            serde_json::to_string(&row.details)?,
        ])?;
    }
    Ok(())
}

fn write_checks(
    tx: &Transaction<'_>,
    tenant: &str,
    changes: &Changes,
    at: DateTime<Utc>,
) -> Result<(), StateError> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO check_status (tenant, finding, status, reason, severity, at_ms,
             evaluated_at_ms, first_evaluated_ms, baseline_ended_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
         ON CONFLICT (tenant, finding) DO UPDATE SET status = excluded.status,
             reason = excluded.reason, severity = excluded.severity, at_ms = excluded.at_ms,
             evaluated_at_ms = COALESCE(excluded.evaluated_at_ms, check_status.evaluated_at_ms),
             first_evaluated_ms =
                 COALESCE(check_status.first_evaluated_ms, excluded.first_evaluated_ms),
             baseline_ended_ms =
                 COALESCE(check_status.baseline_ended_ms, excluded.baseline_ended_ms)",
    )?;
    for check in &changes.checks {
        let evaluated = (check.state != CheckState::Skipped).then_some(to_ms(at));
        let baseline_ended = evaluated.filter(|_| check.all_collected);
        upsert.execute(params![
            tenant,
            check.finding.as_str(),
            check.state.as_str(),
            check.reason,
            check.severity.as_str(),
            to_ms(at),
            evaluated,
            baseline_ended,
        ])?;
    }
    Ok(())
}

fn count_events(tx: &Transaction<'_>, events: &[FindingEvent]) -> Result<(), StateError> {
    let mut bump = tx.prepare_cached(
        "INSERT INTO event_counts (tenant, finding, severity, action, count) VALUES (?1, ?2, ?3, ?4, 1)
         ON CONFLICT (tenant, finding, severity, action) DO UPDATE SET count = count + 1",
    )?;
    for event in events {
        bump.execute(params![
            event.tenant,
            event.finding.as_str(),
            event.severity.as_str(),
            event.action.as_str(),
        ])?;
    }
    Ok(())
}

fn insert_scan(tx: &Transaction<'_>, scan: &ScanRecord) -> Result<(), StateError> {
    let duration = (scan.finished - scan.started)
        .to_std()
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    tx.execute(
        "INSERT INTO scans (tenant, started_ms, finished_ms, status, duration_seconds, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            scan.tenant,
            to_ms(scan.started),
            to_ms(scan.finished),
            scan.status.as_str(),
            duration,
            scan.error,
        ],
    )?;
    Ok(())
}
