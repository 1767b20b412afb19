//! Microsoft Graph and DNS collection as a [`SnapshotSource`]. Without a state store (the
//! `scan` command) every user's per-user data is read once. With one (the daemon), per-user
//! data goes through the [`Sweep`]: the stored reads are loaded before collection, only due
//! reads are sent, and this scan's reads are stored after it, so a restart resumes the sweep.
//!
//! The sweep stops sending reads at three quarters of `scan.timeout`, so a slow sweep (the
//! reports bucket allows 5 method reads per 10 s) never fails the scan: what it did not reach
//! keeps its stored data or is "not collected", and the next scan continues, after
//! `scan.sweep_pause` (60 s) rather than the tenant's interval.

use super::delta::{DeltaCollection, DirectoryCache};
use super::held_report::{HeldReport, HeldReports};
use super::per_user::Kind;
use super::sweep::{stored_form, Coverage, FreshRead, Sweep};
use super::{collect_tenant, collect_tenant_swept, CollectContext, SweepWrites};
use crate::config::TenantConfig;
use crate::scan::{clock_now, CollectedSnapshot, SnapshotSource};
use crate::snapshot::{PerUser, Section, SectionName, TenantSnapshot, Unavailable};
use crate::state::directory_cache::CollectionWrite;
use crate::state::per_user::{PerUserHead, PerUserRead};
use crate::state::Store;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Share of `scan.timeout` the sweep may send reads in; the rest is for the tenant-wide
/// sections still in flight, evaluation and commit.
const SWEEP_SHARE_OF_TIMEOUT: f64 = 0.75;

/// Graph and DNS collection; per-user data swept through `store` when there is one.
pub struct GraphSource {
    ctx: CollectContext,
    store: Option<Store>,
    reports: HeldReports,
}

impl GraphSource {
    /// A source reading everything once per scan (`store` `None`) or sweeping with `store`.
    pub fn new(ctx: CollectContext, store: Option<Store>) -> Self {
        Self {
            ctx,
            store,
            reports: HeldReports::default(),
        }
    }

    async fn swept(
        &self,
        store: &Store,
        tenant: &TenantConfig,
        cancel: &CancellationToken,
    ) -> CollectedSnapshot {
        let config = self.ctx.config();
        let scan = &config.scan;
        let until = tokio::time::Instant::now() + scan.timeout.mul_f64(SWEEP_SHARE_OF_TIMEOUT);
        let reads = load_reads(store, &tenant.name).await;
        let now = clock_now();
        let held = self
            .reports
            .fresh((&tenant.name, &tenant.tenant_id), now, tenant.interval);
        let over = (store.clone(), tenant.name.as_str());
        let mut sweep = Sweep::over_store(reads, over, now, (scan.per_user_max_age, until))
            .continuing_from(held.as_ref().map(|h| Arc::clone(&h.rows)));
        let directory = load_directory(store, &tenant.name).await;
        let (report, writes) = collect_tenant_swept(
            &self.ctx,
            tenant,
            cancel,
            Some(&mut sweep),
            Some(&directory),
        )
        .await;
        drop(sweep);
        save_directory(store, &tenant.name, directory.take_writes()).await;
        let mut snapshot = report.snapshot;
        if let Some(held) = held {
            stamp_held_report(&mut snapshot, &held);
        }
        let (snapshot, sweep_pending) = match writes {
            Some(writes) => {
                self.store_reads(store, &tenant.name, writes, snapshot)
                    .await
            }
            None => (snapshot, false),
        };
        self.reports.keep(&tenant.name, &snapshot, sweep_pending);
        CollectedSnapshot {
            snapshot,
            error: report.error,
            sweep_pending,
        }
    }

    /// Stores a sweep's reads and shows its coverage; returns the snapshot and whether reads
    /// are still pending.
    async fn store_reads(
        &self,
        store: &Store,
        tenant: &str,
        writes: SweepWrites,
        snapshot: TenantSnapshot,
    ) -> (TenantSnapshot, bool) {
        let mut coverage = writes.coverage.clone();
        let (snapshot, unsaved) = save_reads(store, tenant, writes, snapshot).await;
        count_unsaved_as_failed(&mut coverage, &unsaved);
        self.show_coverage(tenant, &coverage);
        (snapshot, coverage.iter().any(|c| c.pending > 0))
    }
}

impl GraphSource {
    /// Sets the freshness gauges of `tenant` from a scan's coverage.
    fn show_coverage(&self, tenant: &str, coverage: &[Coverage]) {
        let metrics = &self.ctx.metrics;
        for section in coverage {
            let states = [
                ("current", section.current),
                ("pending", section.pending),
                ("failed", section.failed),
            ];
            for (state, users) in states {
                metrics
                    .sweep_users
                    .with_label_values(&[tenant, section.section, state])
                    .set(i64::try_from(users).unwrap_or(i64::MAX));
            }
            let oldest = metrics
                .per_user_oldest_read
                .with_label_values(&[tenant, section.section]);
            match section.oldest {
                Some(at) => oldest.set(at.timestamp()),
                // No data in the section: the series goes rather than claim a time.
                None => {
                    let _ = metrics
                        .per_user_oldest_read
                        .remove_label_values(&[tenant, section.section]);
                }
            }
        }
    }
}

impl SnapshotSource for GraphSource {
    fn collect<'a>(
        &'a self,
        tenant: &'a TenantConfig,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, CollectedSnapshot> {
        Box::pin(async move {
            match &self.store {
                Some(store) => self.swept(store, tenant, cancel).await,
                None => {
                    let report = collect_tenant(&self.ctx, tenant, cancel).await;
                    CollectedSnapshot {
                        snapshot: report.snapshot,
                        error: report.error,
                        sweep_pending: false,
                    }
                }
            }
        })
    }

    fn forget(&self, tenant: &str) {
        self.reports.forget(tenant);
        self.ctx.forget_tenant(tenant);
    }

    fn reconfigure(&self, config: Arc<crate::config::Config>) {
        self.ctx.reconfigure(config);
    }
}

/// The stored reads of a tenant, without their items' texts; none (everything is due) when the
/// state file cannot be read.
async fn load_reads(store: &Store, tenant: &str) -> Vec<PerUserHead> {
    let (store, name) = (store.clone(), tenant.to_owned());
    match tokio::task::spawn_blocking(move || store.load_per_user_heads(&name)).await {
        Ok(Ok(reads)) => reads,
        Ok(Err(err)) => {
            tracing::warn!(tenant, error = %err, "Cannot read stored per-user data; reading every user");
            Vec::new()
        }
        Err(err) => {
            tracing::warn!(tenant, error = %err, "Cannot read stored per-user data; reading every user");
            Vec::new()
        }
    }
}

/// The stored directory of a tenant; empty (a full resync) when the state file cannot be read.
async fn load_directory(store: &Store, tenant: &str) -> DirectoryCache {
    let store_for_reads = store.clone();
    let (store, name) = (store.clone(), tenant.to_owned());
    let loaded = tokio::task::spawn_blocking(move || {
        DeltaCollection::ALL
            .into_iter()
            .map(|c| Ok((c, store.load_directory_head(&name, c.name())?)))
            .collect::<Result<Vec<_>, crate::state::StateError>>()
    })
    .await;
    match loaded {
        Ok(Ok(heads)) => DirectoryCache::in_store(store_for_reads, tenant, heads),
        Ok(Err(err)) => {
            tracing::warn!(tenant, error = %err, "Cannot read the stored directory; resynchronising");
            DirectoryCache::default()
        }
        Err(err) => {
            tracing::warn!(tenant, error = %err, "Cannot read the stored directory; resynchronising");
            DirectoryCache::default()
        }
    }
}

/// Stores the completed delta rounds; a failure is logged and the rounds replay next scan.
async fn save_directory(store: &Store, tenant: &str, writes: Vec<CollectionWrite>) {
    if writes.is_empty() {
        return;
    }
    let (store, name) = (store.clone(), tenant.to_owned());
    let now = clock_now();
    let saved =
        tokio::task::spawn_blocking(move || store.save_directory(&name, &writes, now)).await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(tenant, error = %err, "Cannot store the directory"),
        Err(err) => tracing::warn!(tenant, error = %err, "Cannot store the directory"),
    }
}

/// Stores a scan's reads, their items written from the snapshot's per-user sections (so they
/// are never held twice). Returns the snapshot and the reads it could not store.
///
/// When they cannot be stored, this scan's reads are taken out of the snapshot as not
/// collected: evaluated and committed, a read the state file does not hold would be followed
/// by a scan that falls back to the older stored read, and resolve on it what this scan
/// reported. The reads are made again when due.
async fn save_reads(
    store: &Store,
    tenant: &str,
    writes: SweepWrites,
    snapshot: TenantSnapshot,
) -> (TenantSnapshot, Vec<FreshRead>) {
    let (store, name) = (store.clone(), tenant.to_owned());
    let tenant_id = snapshot.tenant_id.clone();
    let saved = tokio::task::spawn_blocking(move || {
        let rows = writes
            .reads
            .iter()
            .filter_map(|read| stored_read(&snapshot, read));
        let result = store.save_per_user_reads(&name, rows, &writes.deleted);
        (snapshot, writes.reads, result)
    })
    .await;
    match saved {
        Ok((snapshot, _, Ok(()))) => (snapshot, Vec::new()),
        Ok((mut snapshot, reads, Err(err))) => {
            tracing::warn!(tenant, error = %err, reads = reads.len(), "Cannot store per-user data; this scan's reads count as not collected");
            let marked = unsaved_reads_not_collected(&mut snapshot, reads);
            (snapshot, marked)
        }
        Err(err) => {
            tracing::warn!(tenant, error = %err, "Cannot store per-user data");
            // The blocking task panicked with the snapshot: the scan reports every section
            // as failed rather than evaluate nothing as clean.
            let empty = TenantSnapshot::empty(&tenant_id, "per-user data could not be stored");
            (empty, Vec::new())
        }
    }
}

/// A snapshot that used `held` carries the time that report was read, not this scan's.
fn stamp_held_report(snapshot: &mut TenantSnapshot, held: &HeldReport) {
    let used = snapshot
        .registration_details
        .as_ref()
        .is_ok_and(|rows| Arc::ptr_eq(rows, &held.rows));
    if used {
        snapshot
            .read_at
            .insert(SectionName::RegistrationDetails, held.read_at);
    }
}

/// Counts the reads that could not be stored as failed rather than current (failed, not
/// pending: a state file that keeps refusing writes must not turn every scan into a
/// continuation `scan.sweep_pause` later that reads them all again). `unsaved` holds only
/// reads of listed users.
fn count_unsaved_as_failed(coverage: &mut [Coverage], unsaved: &[FreshRead]) {
    for read in unsaved {
        let name = read.kind.name();
        if let Some(section) = coverage.iter_mut().find(|c| c.section == name) {
            section.current = section.current.saturating_sub(1);
            section.failed += 1;
        }
    }
}

/// Marks each of `reads` as not collected in the snapshot: nothing of those users' sections is
/// evaluated, so their instances keep their state. Returns the reads marked (those of users
/// in the sections).
fn unsaved_reads_not_collected(
    snapshot: &mut TenantSnapshot,
    reads: Vec<FreshRead>,
) -> Vec<FreshRead> {
    fn mark<T>(section: &mut Section<PerUser<T>>, user: &str) -> bool {
        let read = section.as_mut().ok().and_then(|map| map.get_mut(user));
        read.map(|read| {
            *read = Err(Unavailable::NotCollected {
                detail: "this scan's read could not be stored in the state file".to_owned(),
            });
        })
        .is_some()
    }
    reads
        .into_iter()
        .filter(|read| {
            let user = &*read.user_id;
            match read.kind {
                Kind::AuthMethods => mark(&mut snapshot.auth_methods, user),
                Kind::Calendar => mark(&mut snapshot.calendar_permissions, user),
                Kind::Rules => mark(&mut snapshot.message_rules, user),
            }
        })
        .collect()
}

/// The row of one fresh read, its items taken from the snapshot; `None` when the section is
/// not there (nothing is stored, and the read is made again when due).
fn stored_read(snapshot: &TenantSnapshot, read: &FreshRead) -> Option<PerUserRead> {
    fn items<T: serde::Serialize>(section: &Section<PerUser<T>>, user: &str) -> Option<String> {
        section
            .as_ref()
            .ok()
            .and_then(|map| map.get(user))
            .and_then(stored_form)
    }
    let user = &*read.user_id;
    let items = match read.kind {
        Kind::AuthMethods => items(&snapshot.auth_methods, user),
        Kind::Calendar => items(&snapshot.calendar_permissions, user),
        Kind::Rules => items(&snapshot.message_rules, user),
    }?;
    Some(PerUserRead {
        user_id: read.user_id.to_string(),
        kind: read.kind.name().to_owned(),
        read_at: read.read_at,
        registration: read.registration.as_deref().map(str::to_owned),
        items,
    })
}
