//! The scheduler: one task per configured tenant, each scanning on its interval (sooner while
//! the per-user sweep has due reads), started and stopped as config reloads add and remove
//! tenants. A removed tenant's task lets go of what the daemon kept for it: its held
//! registration report, its token cache and credential, and its process metrics, so nothing
//! of it stays behind in memory or pages.

use super::{scan_once, ScanEnd, ScanEnv};
use crate::config::{Config, TenantConfig};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Runs every configured tenant on its interval until `cancel`; follows config reloads
/// (new tenants start, removed tenants stop after their current scan is cut short).
pub async fn run_scheduler(env: ScanEnv, cancel: CancellationToken, tracker: TaskTracker) {
    let mut config_rx = env.config.clone();
    let mut tasks = TenantTasks::default();
    loop {
        let config = config_rx.borrow_and_update().clone();
        tasks.sync(&env, &config, &cancel, &tracker);
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = config_rx.changed() => if changed.is_err() { return },
        }
    }
}

/// The scan task of each configured tenant, and the tasks of removed tenants still ending.
#[derive(Default)]
struct TenantTasks {
    running: BTreeMap<String, (CancellationToken, JoinHandle<()>)>,
    stopping: BTreeMap<String, JoinHandle<()>>,
}

impl TenantTasks {
    /// Stops the tasks of tenants `config` no longer has and starts the new ones. A tenant
    /// added back while its old task is still ending starts once that task has ended (and
    /// forgotten it), so two tasks of one tenant never overlap.
    fn sync(
        &mut self,
        env: &ScanEnv,
        config: &Config,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        self.stopping.retain(|_, task| !task.is_finished());
        let removed: Vec<String> = self
            .running
            .keys()
            .filter(|name| !config.tenants.iter().any(|t| &t.name == *name))
            .cloned()
            .collect();
        for name in removed {
            if let Some((token, task)) = self.running.remove(&name) {
                tracing::info!(tenant = %name, "Tenant removed from config; stopping its scans");
                token.cancel();
                self.stopping.insert(name, task);
            }
        }
        let starting: Vec<&TenantConfig> = config
            .tenants
            .iter()
            .filter(|t| !self.running.contains_key(&t.name))
            .collect();
        let count = u32::try_from(starting.len()).unwrap_or(u32::MAX);
        for (index, tenant) in starting.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(0);
            let first_delay = stagger(tenant.interval, index, count);
            let token = cancel.child_token();
            let start = TaskStart {
                tenant: tenant.name.clone(),
                first_delay,
                after: self.stopping.remove(&tenant.name),
            };
            let task = tracker.spawn(tenant_loop(env.clone(), start, token.clone()));
            self.running.insert(tenant.name.clone(), (token, task));
        }
    }
}

/// How a tenant's task starts: after `first_delay`, and after its previous task ended.
struct TaskStart {
    tenant: String,
    first_delay: Duration,
    after: Option<JoinHandle<()>>,
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

/// Scans the tenant until cancelled or removed; a tenant no longer configured at the end is
/// forgotten (a shutdown forgets nothing: the tenant is still configured).
async fn tenant_loop(env: ScanEnv, start: TaskStart, cancel: CancellationToken) {
    let tenant = start.tenant;
    if let Some(previous) = start.after {
        // Ends soon: it was cancelled. Its own end (a panic included) is not this task's.
        let _ = previous.await;
        // It may have forgotten the counters the reload created at zero.
        env.metrics.touch(std::slice::from_ref(&tenant), &[]);
    }
    scan_on_interval(&env, &tenant, start.first_delay, &cancel).await;
    let configured = env.config.borrow().tenants.iter().any(|t| t.name == tenant);
    if !configured {
        env.scanner.forget(&tenant);
        env.metrics.forget_tenant(&tenant);
        tracing::info!(tenant = %tenant, "Removed tenant's held data and metrics released");
    }
}

async fn scan_on_interval(
    env: &ScanEnv,
    tenant: &str,
    first_delay: Duration,
    cancel: &CancellationToken,
) {
    if !sleep_or_cancel(first_delay, cancel).await {
        return;
    }
    loop {
        let span = tracing::info_span!("scan", tenant = %tenant);
        let end = tracing::Instrument::instrument(scan_once(env, tenant, cancel), span).await;
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
        if !sleep_or_cancel(pause, cancel).await {
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
