//! The registration report kept from one daemon scan of a tenant to the next while the
//! per-user sweep continues: a scan that continues the sweep (`scan.sweep_pause` after the
//! last, instead of `scan.interval`) reuses the report the sweep started from when it is
//! younger than the interval, rather than read every page again in the reports bucket its
//! method reads share.
//! At 100,000 users that is about 100 pages, some 200 s of the bucket's 5 requests per 10 s,
//! on every continuation (issue 10: tenant-wide sections run every interval, the per-user sweep
//! continuously).
//!
//! Held only while reads are pending: once the sweep is current the report is dropped, and the
//! next scan (an interval later) reads it again.

use crate::snapshot::{SectionName, TenantSnapshot, UserRegistrationDetails};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A report's relevant rows, shared with the snapshots that use them.
pub type ReportRows = Arc<Vec<UserRegistrationDetails>>;

/// One tenant's held report and when it was read.
#[derive(Debug, Clone)]
pub struct HeldReport {
    /// The rows.
    pub rows: ReportRows,
    /// When it was read (the start of the scan that read it).
    pub read_at: DateTime<Utc>,
    /// The tenant id it was read from (a reload may give a tenant name another id).
    pub tenant_id: String,
}

/// The held reports of every tenant, by tenant name.
#[derive(Debug, Default)]
pub struct HeldReports(Mutex<HashMap<String, HeldReport>>);

impl HeldReports {
    /// `tenant`'s held report if it was read from `tenant_id` less than `interval` before
    /// `now`.
    pub fn fresh(
        &self,
        (tenant, tenant_id): (&str, &str),
        now: DateTime<Utc>,
        interval: Duration,
    ) -> Option<HeldReport> {
        let held = self.lock().get(tenant).cloned()?;
        let age = now.signed_duration_since(held.read_at).to_std().ok()?;
        (age < interval && held.tenant_id == tenant_id).then_some(held)
    }

    /// After a scan: holds its report when reads are still `pending` (and the report arrived),
    /// else lets it go.
    pub fn keep(&self, tenant: &str, snapshot: &TenantSnapshot, pending: bool) {
        let mut held = self.lock();
        let rows = snapshot.registration_details.as_ref().ok();
        let read_at = snapshot.read_at.get(&SectionName::RegistrationDetails);
        match (pending, rows, read_at) {
            (true, Some(rows), Some(read_at)) => {
                let report = HeldReport {
                    rows: Arc::clone(rows),
                    read_at: *read_at,
                    tenant_id: snapshot.tenant_id.clone(),
                };
                held.insert(tenant.to_owned(), report);
            }
            _ => {
                held.remove(tenant);
            }
        }
    }

    /// Lets `tenant`'s report go (the tenant was removed from the config).
    pub fn forget(&self, tenant: &str) {
        self.lock().remove(tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HeldReport>> {
        // A panic while holding the lock leaves a plain map: still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn snapshot(read_at: DateTime<Utc>) -> TenantSnapshot {
        let mut snapshot = TenantSnapshot::empty("t", "not collected");
        snapshot.registration_details = Ok(Arc::new(Vec::new()));
        snapshot
            .read_at
            .insert(SectionName::RegistrationDetails, read_at);
        snapshot
    }

    #[test]
    fn a_report_is_held_while_reads_are_pending_and_for_less_than_the_interval() {
        let read = DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let hour = Duration::from_secs(3600);
        let held = HeldReports::default();
        held.keep("a", &snapshot(read), true);
        let later = read + chrono::Duration::minutes(59);
        assert_eq!(held.fresh(("a", "t"), later, hour).unwrap().read_at, read);
        assert!(held.fresh(("b", "t"), later, hour).is_none());
        assert!(
            held.fresh(("a", "u"), later, hour).is_none(),
            "another tenant id"
        );
        assert!(held
            .fresh(("a", "t"), read + chrono::Duration::hours(1), hour)
            .is_none());
        held.keep("a", &snapshot(read), false);
        assert!(
            held.fresh(("a", "t"), later, hour).is_none(),
            "the sweep is current"
        );
        held.keep("a", &snapshot(read), true);
        let mut failed = snapshot(read);
        failed.registration_details =
            Err(crate::snapshot::Unavailable::NotCollected { detail: "x".into() });
        held.keep("a", &failed, true);
        assert!(
            held.fresh(("a", "t"), later, hour).is_none(),
            "a failed report"
        );
        held.keep("a", &snapshot(read), true);
        held.forget("a");
        assert!(held.fresh(("a", "t"), later, hour).is_none(), "forgotten");
    }
}
