//! One scan cycle of one tenant, and the scheduler that runs them ([`scheduler`]).
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
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod scheduler;

pub use scheduler::{run_scheduler, stagger};

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

    /// Lets go of what is kept for `tenant` between scans: it was removed from the config.
    fn forget(&self, _tenant: &str) {}

    /// A reloaded config: collection settings (`[scan]`, `[dns]`, `[checks]`) take effect for
    /// the next scans.
    fn reconfigure(&self, _config: Arc<Config>) {}
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

    /// Lets go of what is kept for `tenant` between scans (a held registration report, a
    /// token cache): it was removed from the config.
    fn forget(&self, _tenant: &str) {}

    /// A reloaded config takes effect for the next collections.
    fn reconfigure(&self, _config: Arc<Config>) {}
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

    fn forget(&self, tenant: &str) {
        self.0.forget(tenant);
    }

    fn reconfigure(&self, config: Arc<Config>) {
        self.0.reconfigure(config);
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
    if let Err(error) = bind_tenant_id(env, tenant_config).await {
        let status = record_failure(env, tenant, started, error).await;
        count_scan(env, tenant, status);
        return ScanEnd::Finished(status);
    }
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

/// Refuses to scan a tenant name whose state belongs to another Entra tenant id, before any
/// collection reads or writes its stored directory and per-user reads. A state file that
/// cannot be read here is left to the scan, whose commit reports it.
async fn bind_tenant_id(env: &ScanEnv, tenant: &TenantConfig) -> Result<(), String> {
    let store = env.store.clone();
    let (name, id) = (tenant.name.clone(), tenant.tenant_id.clone());
    match tokio::task::spawn_blocking(move || store.bind_tenant_id(&name, &id)).await {
        Ok(Err(refused @ StateError::TenantIdChanged { .. })) => Err(refused.to_string()),
        Ok(Err(err)) => {
            tracing::warn!(tenant = %tenant.name, error = %err, "Cannot check the tenant id in the state file");
            Ok(())
        }
        Ok(Ok(())) | Err(_) => Ok(()),
    }
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
        // A baseline lasts until the check's data is complete: for a per-user check, the
        // tenant's first sweep; at most `per_user_max_age`, the age every read is due by.
        let longest = chrono::Duration::from_std(self.config.scan.per_user_max_age)
            .unwrap_or(chrono::Duration::MAX);
        let baseline_over: BTreeSet<FindingId> = store
            .baseline_over(name, self.started, longest)?
            .into_iter()
            .collect();
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
                baseline_over: &baseline_over,
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
