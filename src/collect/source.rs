//! Microsoft Graph and DNS collection as a [`SnapshotSource`]. Without a state store (the
//! `scan` command) every user's per-user data is read once. With one (the daemon), per-user
//! data goes through the [`Sweep`]: the stored reads are loaded before collection, only due
//! reads are sent, and this scan's reads are stored after it, so a restart resumes the sweep.
//!
//! The sweep stops sending reads at three quarters of `scan.timeout`, so a slow sweep (the
//! reports bucket allows 5 method reads per 10 s) never fails the scan: what it did not reach
//! keeps its stored data or is "not collected", and the next scan continues, after
//! [`SWEEP_PAUSE`](crate::scan::SWEEP_PAUSE) rather than the tenant's interval.

use super::delta::{DeltaCollection, DirectoryCache};
use super::sweep::{Coverage, Sweep};
use super::{collect_tenant, collect_tenant_swept, CollectContext, SweepWrites};
use crate::config::TenantConfig;
use crate::scan::{clock_now, CollectedSnapshot, SnapshotSource};
use crate::state::directory_cache::CollectionWrite;
use crate::state::per_user::PerUserRead;
use crate::state::Store;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// Share of `scan.timeout` the sweep may send reads in; the rest is for the tenant-wide
/// sections still in flight, evaluation and commit.
const SWEEP_SHARE_OF_TIMEOUT: f64 = 0.75;

/// Graph and DNS collection; per-user data swept through `store` when there is one.
pub struct GraphSource {
    ctx: CollectContext,
    store: Option<Store>,
}

impl GraphSource {
    /// A source reading everything once per scan (`store` `None`) or sweeping with `store`.
    pub fn new(ctx: CollectContext, store: Option<Store>) -> Self {
        Self { ctx, store }
    }

    async fn swept(
        &self,
        store: &Store,
        tenant: &TenantConfig,
        cancel: &CancellationToken,
    ) -> CollectedSnapshot {
        let scan = &self.ctx.config.scan;
        let until = tokio::time::Instant::now() + scan.timeout.mul_f64(SWEEP_SHARE_OF_TIMEOUT);
        let reads = load_reads(store, &tenant.name).await;
        let sweep = Sweep::new(reads, clock_now(), scan.per_user_max_age, until);
        let directory = load_directory(store, &tenant.name).await;
        let (report, writes) =
            collect_tenant_swept(&self.ctx, tenant, cancel, Some(&sweep), Some(&directory)).await;
        save_directory(store, &tenant.name, directory.take_writes()).await;
        let mut sweep_pending = false;
        if let Some(writes) = writes {
            self.show_coverage(&tenant.name, &writes.coverage);
            sweep_pending = writes.coverage.iter().any(|c| c.pending > 0);
            save_reads(store, &tenant.name, writes).await;
        }
        CollectedSnapshot {
            snapshot: report.snapshot,
            error: report.error,
            sweep_pending,
        }
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
}

/// The stored reads of a tenant; none (everything is due) when the state file cannot be read.
async fn load_reads(store: &Store, tenant: &str) -> Vec<PerUserRead> {
    let (store, name) = (store.clone(), tenant.to_owned());
    match tokio::task::spawn_blocking(move || store.load_per_user_reads(&name)).await {
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
    let (store, name) = (store.clone(), tenant.to_owned());
    let loaded = tokio::task::spawn_blocking(move || {
        DeltaCollection::ALL
            .into_iter()
            .map(|c| Ok((c, store.load_directory(&name, c.name())?)))
            .collect::<Result<Vec<_>, crate::state::StateError>>()
    })
    .await;
    match loaded {
        Ok(Ok(stored)) => DirectoryCache::new(stored),
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

/// Stores a scan's reads; a failure is logged and the reads are made again when due.
async fn save_reads(store: &Store, tenant: &str, writes: SweepWrites) {
    let (store, name) = (store.clone(), tenant.to_owned());
    let saved = tokio::task::spawn_blocking(move || {
        store.save_per_user_reads(&name, &writes.reads, &writes.deleted)
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(tenant, error = %err, "Cannot store per-user data"),
        Err(err) => tracing::warn!(tenant, error = %err, "Cannot store per-user data"),
    }
}
