//! The scheduler and one scan cycle of one tenant.
//!
//! Each tenant runs in its own task: a staggered first scan, then scan, sleep the tenant's
//! interval, repeat (sleeping after the scan, so scans of one tenant never overlap; one slow or
//! failing tenant never delays another). A scan has a deadline; a scan that times out, or is
//! cut short by shutdown, commits nothing. The scan's `now` comes from the one sanctioned clock
//! read here. Collection sits behind [`TenantScanner`] so tests can script outcomes.

use crate::checks::{evaluate_releasing, EvalCtx, Outcome};
use crate::config::{Config, TenantConfig};
use crate::findings::FindingId;
use crate::metrics::Metrics;
use crate::snapshot::TenantSnapshot;
use crate::state::commit::{OutboxLimit, ScanRecord, ScanStatus};
use crate::state::reconcile::{diff_owned, CheckState, DiffInput, Policy};
use crate::state::{StateError, Store};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The one sanctioned wall-clock read: a scan's `now` and its end.
#[allow(clippy::disallowed_methods)]
pub fn clock_now() -> DateTime<Utc> {
    Utc::now()
}

/// What one scan of one tenant produced before reconcile.
#[derive(Debug, Clone, Default)]
pub struct ScanOutput {
    /// Each check's outcome.
    pub outcomes: Vec<(FindingId, Outcome)>,
    /// A scan-level failure (authentication, cancelled collection), without secrets.
    pub error: Option<String>,
    /// The per-user sweep has due reads it did not reach: the next scan comes sooner.
    pub sweep_pending: bool,
}

/// Produces check outcomes for a tenant: collection plus evaluation, or a script in tests.
pub trait TenantScanner: Send + Sync + 'static {
    /// Scans one tenant at `now`; must stop early when `cancel` fires.
    fn scan<'a>(
        &'a self,
        config: &'a Config,
        tenant: &'a TenantConfig,
        now: DateTime<Utc>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ScanOutput>;
}

/// A collected snapshot and a scan-level error, as the collector reports it.
#[derive(Debug, Clone)]
pub struct CollectedSnapshot {
    /// What was collected; failed sections are `Unavailable`.
    pub snapshot: TenantSnapshot,
    /// A scan-level failure, without secrets.
    pub error: Option<String>,
    /// The per-user sweep has due reads it did not reach in this scan.
    pub sweep_pending: bool,
}

/// Collects a tenant's snapshot (the Graph and DNS collector implements this).
pub trait SnapshotSource: Send + Sync + 'static {
    /// Collects one tenant; must stop early when `cancel` fires.
    fn collect<'a>(
        &'a self,
        tenant: &'a TenantConfig,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, CollectedSnapshot>;
}

/// A [`TenantScanner`] that collects with a [`SnapshotSource`] and runs every check.
pub struct CollectAndEvaluate<S>(pub S);

impl<S: SnapshotSource> TenantScanner for CollectAndEvaluate<S> {
    fn scan<'a>(
        &'a self,
        config: &'a Config,
        tenant: &'a TenantConfig,
        now: DateTime<Utc>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ScanOutput> {
        Box::pin(async move {
            let collected = self.0.collect(tenant, cancel).await;
            let ctx = EvalCtx {
                now,
                options: &config.checks,
            };
            ScanOutput {
                outcomes: evaluate_releasing(collected.snapshot, &ctx),
                error: collected.error,
                sweep_pending: collected.sweep_pending,
            }
        })
    }
}

/// What the scan tasks share.
#[derive(Clone)]
pub struct ScanEnv {
    /// The state file.
    pub store: Store,
    /// Process metrics (scans, outbox full).
    pub metrics: Metrics,
    /// Collection and evaluation.
    pub scanner: Arc<dyn TenantScanner>,
    /// The current config (replaced on reload).
    pub config: watch::Receiver<Arc<Config>>,
    /// Woken after a commit that enqueued events, so sink workers deliver at once.
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

/// How one scan attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Committed (or recorded as failed) with this status.
    Finished(ScanStatus),
    /// Committed with this status; the per-user sweep has due reads left.
    SweepPending(ScanStatus),
    /// Shutdown cut it short; nothing was committed.
    Cancelled,
}

/// Runs one scan of `tenant`: collect and evaluate under the deadline, reconcile, commit.
pub async fn scan_once(env: &ScanEnv, tenant: &str, cancel: &CancellationToken) -> ScanEnd {
    let config = env.config.borrow().clone();
    let Some(tenant_config) = config.tenants.iter().find(|t| t.name == tenant) else {
        return ScanEnd::Cancelled;
    };
    let started = clock_now();
    let scan_cancel = cancel.child_token();
    let attempt = tokio::time::timeout(
        config.scan.timeout,
        env.scanner
            .scan(&config, tenant_config, started, &scan_cancel),
    );
    let result = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        result = attempt => Some(result),
    };
    scan_cancel.cancel();
    // A collector that stops on shutdown returns early; its partial result must not commit.
    let status = match result.filter(|_| !cancel.is_cancelled()) {
        None => {
            tracing::info!(tenant, "Scan cut short by shutdown; nothing committed");
            return ScanEnd::Cancelled;
        }
        Some(Err(_elapsed)) => {
            let error = format!("deadline of {:?} exceeded", config.scan.timeout);
            record_failure(env, tenant, started, error).await
        }
        Some(Ok(output)) => {
            let pending = output.sweep_pending;
            let status = commit(env, &config, tenant_config, started, output).await;
            if pending {
                count_scan(env, tenant, status);
                return ScanEnd::SweepPending(status);
            }
            status
        }
    };
    count_scan(env, tenant, status);
    ScanEnd::Finished(status)
}

fn count_scan(env: &ScanEnv, tenant: &str, status: ScanStatus) {
    env.metrics
        .scans
        .with_label_values(&[tenant, status.as_str()])
        .inc();
}

async fn record_failure(
    env: &ScanEnv,
    tenant: &str,
    started: DateTime<Utc>,
    error: String,
) -> ScanStatus {
    tracing::warn!(tenant, error = %error, "Scan failed; state unchanged");
    let record = ScanRecord {
        tenant: tenant.to_owned(),
        started,
        finished: clock_now(),
        status: ScanStatus::Failed,
        error: Some(error),
    };
    let store = env.store.clone();
    let written = tokio::task::spawn_blocking(move || store.record_scan(&record)).await;
    if let Ok(Err(err)) = written {
        tracing::error!(tenant, error = %err, "Cannot record a failed scan");
    }
    ScanStatus::Failed
}

async fn commit(
    env: &ScanEnv,
    config: &Arc<Config>,
    tenant: &TenantConfig,
    started: DateTime<Utc>,
    output: ScanOutput,
) -> ScanStatus {
    let store = env.store.clone();
    let job = CommitJob {
        config: Arc::clone(config),
        tenant: tenant.clone(),
        started,
        output,
    };
    match tokio::task::spawn_blocking(move || job.run(&store)).await {
        Ok(Ok((status, events))) => {
            tracing::info!(tenant = %tenant.name, status = status.as_str(), events, "Scan committed");
            if events > 0 {
                env.outbox_wake.notify_waiters();
            }
            status
        }
        Ok(Err(StateError::OutboxFull {
            pending,
            adding,
            max,
        })) => {
            env.metrics.outbox_full.inc();
            let error = format!("outbox_full: {pending} pending plus {adding} exceed {max}");
            record_failure(env, &tenant.name, started, error).await
        }
        Ok(Err(err)) => record_failure(env, &tenant.name, started, err.to_string()).await,
        Err(join) => record_failure(env, &tenant.name, started, join.to_string()).await,
    }
}

/// Reconcile and commit, on a blocking thread.
struct CommitJob {
    config: Arc<Config>,
    tenant: TenantConfig,
    started: DateTime<Utc>,
    output: ScanOutput,
}

impl CommitJob {
    /// Returns the scan status and how many events were enqueued.
    fn run(self, store: &Store) -> Result<(ScanStatus, usize), StateError> {
        let name = self.tenant.name.as_str();
        let stored = store.load_instances(name)?;
        let evaluated: BTreeSet<FindingId> = store.evaluated_findings(name)?.into_iter().collect();
        let ScanOutput {
            outcomes, error, ..
        } = self.output;
        // The outcomes are taken by the diff: their findings move into the rows written, and
        // each is freed once diffed; the stored rows are freed before the write (at 100,000
        // users each is tens of megabytes).
        let changes = diff_owned(
            &DiffInput {
                tenant: name,
                tenant_id: &self.tenant.tenant_id,
                now: self.started,
                stored: &stored,
                evaluated_before: &evaluated,
                outcomes: &[],
                policy: Policy {
                    suppressions: &self.config.suppressions,
                    severity_overrides: &self.config.severity_overrides,
                    first_scan: self.config.scan.first_scan,
                },
            },
            outcomes,
        );
        drop(stored);
        let all_ok = changes.checks.iter().all(|c| c.state == CheckState::Ok);
        let status = match (&error, all_ok) {
            (Some(_), _) => ScanStatus::Failed,
            (None, true) => ScanStatus::Ok,
            (None, false) => ScanStatus::Partial,
        };
        let record = ScanRecord {
            tenant: name.to_owned(),
            started: self.started,
            finished: clock_now(),
            status,
            error,
        };
        let sinks: Vec<String> = self.config.sinks.iter().map(|s| s.name.clone()).collect();
        let limit = OutboxLimit {
            sinks: &sinks,
            max: self.config.state.outbox_max_events,
        };
        store.apply(name, &changes, &record, limit)?;
        Ok((status, changes.events.len()))
    }
}

/// Runs every configured tenant on its interval until `cancel`; follows config reloads
/// (new tenants start, removed tenants stop after their current scan is cut short).
pub async fn run_scheduler(env: ScanEnv, cancel: CancellationToken, tracker: TaskTracker) {
    let mut config_rx = env.config.clone();
    let mut running: BTreeMap<String, CancellationToken> = BTreeMap::new();
    loop {
        let config = config_rx.borrow_and_update().clone();
        sync_tenants(&env, &config, &mut running, &cancel, &tracker);
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = config_rx.changed() => if changed.is_err() { return },
        }
    }
}

fn sync_tenants(
    env: &ScanEnv,
    config: &Config,
    running: &mut BTreeMap<String, CancellationToken>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) {
    running.retain(|name, token| {
        let keep = config.tenants.iter().any(|t| &t.name == name);
        if !keep {
            tracing::info!(tenant = %name, "Tenant removed from config; stopping its scans");
            token.cancel();
        }
        keep
    });
    let starting: Vec<&TenantConfig> = config
        .tenants
        .iter()
        .filter(|t| !running.contains_key(&t.name))
        .collect();
    let count = u32::try_from(starting.len()).unwrap_or(u32::MAX);
    for (index, tenant) in starting.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(0);
        let delay = stagger(tenant.interval, index, count);
        let token = cancel.child_token();
        running.insert(tenant.name.clone(), token.clone());
        tracker.spawn(tenant_loop(env.clone(), tenant.name.clone(), delay, token));
    }
}

/// The first-scan offset of tenant `index` of `count`: spread over at most a minute (and never
/// more than the interval), so many tenants do not start together.
pub fn stagger(interval: Duration, index: u32, count: u32) -> Duration {
    let spread = interval.min(Duration::from_secs(60));
    if count == 0 {
        return Duration::ZERO;
    }
    spread.saturating_mul(index) / count
}

async fn tenant_loop(
    env: ScanEnv,
    tenant: String,
    first_delay: Duration,
    cancel: CancellationToken,
) {
    if !sleep_or_cancel(first_delay, &cancel).await {
        return;
    }
    loop {
        let span = tracing::info_span!("scan", tenant = %tenant);
        let end = tracing::Instrument::instrument(scan_once(&env, &tenant, &cancel), span).await;
        let (interval, sweep_pause) = {
            let config = env.config.borrow();
            let this_tenant = config.tenants.iter().find(|t| t.name == tenant);
            (this_tenant.map(|t| t.interval), config.scan.sweep_pause)
        };
        let Some(interval) = interval else { return };
        let pause = match end {
            // The sweep continues soon (`scan.sweep_pause`) rather than a whole interval later.
            ScanEnd::SweepPending(_) => interval.min(sweep_pause),
            ScanEnd::Finished(_) | ScanEnd::Cancelled => interval,
        };
        if !sleep_or_cancel(pause, &cancel).await {
            return;
        }
    }
}

/// Sleeps unless cancelled first; `false` when cancelled.
async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stagger_spreads_within_a_minute_and_the_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(stagger(hour, 0, 4), Duration::ZERO);
        assert_eq!(stagger(hour, 2, 4), Duration::from_secs(30));
        assert_eq!(
            stagger(Duration::from_secs(8), 1, 2),
            Duration::from_secs(4)
        );
        assert_eq!(stagger(hour, 0, 0), Duration::ZERO);
    }
}
