//! The process-wide Prometheus metrics that are counted as things happen (Graph requests,
//! deliveries, scans). Gauges over committed state (findings, outbox depth) are not here: the
//! daemon computes them from the state file at scrape time, so they survive restarts.
//!
//! Labels are bounded: tenant names from config, finding ids, sink names, HTTP status codes.
//! Never user, app or domain names.

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use std::collections::HashMap;

/// Errors registering metrics (only on duplicate names, a programming error).
#[derive(Debug, thiserror::Error)]
#[error("metrics registration failed: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Counters and gauges updated by collection, the daemon and the sinks.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` gathers (plus the committed-state collector).
    pub registry: Registry,
    /// `m365_posture_graph_requests_total{tenant,code}`; code `0` for transport errors.
    pub graph_requests: IntCounterVec,
    /// `m365_posture_graph_throttled_total{tenant}`: 429 and 503-with-Retry-After answers.
    pub graph_throttled: IntCounterVec,
    /// `m365_posture_graph_pool_requests_total{tenant,pool}`: Graph HTTP requests (a `$batch`
    /// once) by throttling pool: directory, exchange, reports.
    pub graph_pool_requests: IntCounterVec,
    /// `m365_posture_graph_pool_throttled_total{tenant,pool}`: back-off answers (also inside
    /// `$batch`) by throttling pool.
    pub graph_pool_throttled: IntCounterVec,
    /// `m365_posture_graph_pool_slowed_total{tenant,pool}`: answers warning that more than 0.8
    /// of the pool's budget was used (`x-ms-throttle-limit-percentage`), each holding the pool.
    pub graph_pool_slowed: IntCounterVec,
    /// `m365_posture_scans_total{tenant,status}` with status ok|partial|failed.
    pub scans: IntCounterVec,
    /// `m365_posture_events_delivered_total{sink}`.
    pub events_delivered: IntCounterVec,
    /// `m365_posture_events_failed_total{sink}`: failed delivery attempts.
    pub events_failed: IntCounterVec,
    /// `m365_posture_outbox_full_total`: scans not committed because the outbox was full.
    pub outbox_full: IntCounter,
    /// `m365_posture_credential_expiry_timestamp_seconds{tenant}` when known (certificate).
    pub credential_expiry: IntGaugeVec,
    /// `m365_posture_mailboxes_unreadable{tenant,reason}`: mailbox users of the last scan whose
    /// mailbox Graph answered 404 for (reason `mailbox_not_enabled_for_rest_api`: inactive,
    /// soft-deleted or on premises; `user_not_found`), so the mailbox checks did not see them.
    pub mailboxes_unreadable: IntGaugeVec,
    /// `m365_posture_per_user_oldest_read_timestamp_seconds{tenant,section}`: when the oldest
    /// per-user data the daemon's checks evaluate was read (sections `auth_methods`,
    /// `calendar`, `rules`); `time() -` it is the data's age.
    pub per_user_oldest_read: IntGaugeVec,
    /// `m365_posture_sweep_users{tenant,section,state}`: users of a per-user section by state,
    /// `current` (data younger than `scan.per_user_max_age`), `pending` (due, not yet read)
    /// and `failed` (the read failed in the last scan).
    pub sweep_users: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric, plus process metrics on Linux.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let metrics = Self {
            graph_requests: counter_vec(
                "m365_posture_graph_requests_total",
                "Microsoft Graph and token endpoint HTTP requests by status code (0 = transport error).",
                &["tenant", "code"],
            )?,
            graph_throttled: counter_vec(
                "m365_posture_graph_throttled_total",
                "Graph answers that asked the agent to back off (429, 503 with Retry-After).",
                &["tenant"],
            )?,
            graph_pool_requests: counter_vec(
                "m365_posture_graph_pool_requests_total",
                "Microsoft Graph HTTP requests (a $batch once) by throttling pool (directory, exchange, reports).",
                &["tenant", "pool"],
            )?,
            graph_pool_throttled: counter_vec(
                "m365_posture_graph_pool_throttled_total",
                "Graph answers that asked the agent to back off, also inside $batch, by throttling pool.",
                &["tenant", "pool"],
            )?,
            graph_pool_slowed: counter_vec(
                "m365_posture_graph_pool_slowed_total",
                "Graph answers warning that more than 0.8 of the pool's budget was used (x-ms-throttle-limit-percentage); each holds the pool until the budget is back at 0.8.",
                &["tenant", "pool"],
            )?,
            scans: counter_vec(
                "m365_posture_scans_total",
                "Finished scans by outcome (ok, partial, failed).",
                &["tenant", "status"],
            )?,
            events_delivered: counter_vec(
                "m365_posture_events_delivered_total",
                "Events written to the sink successfully.",
                &["sink"],
            )?,
            events_failed: counter_vec(
                "m365_posture_events_failed_total",
                "Failed attempts to deliver an event to the sink.",
                &["sink"],
            )?,
            outbox_full: IntCounter::new(
                "m365_posture_outbox_full_total",
                "Scans whose results were not committed because the outbox was full.",
            )?,
            credential_expiry: IntGaugeVec::new(
                Opts::new(
                    "m365_posture_credential_expiry_timestamp_seconds",
                    "When the tenant's client certificate expires (Unix time), when known.",
                ),
                &["tenant"],
            )?,
            mailboxes_unreadable: IntGaugeVec::new(
                Opts::new(
                    "m365_posture_mailboxes_unreadable",
                    "Mailboxes of the last scan that Graph could not read (404), by reason; the mailbox checks did not evaluate them.",
                ),
                &["tenant", "reason"],
            )?,
            per_user_oldest_read: IntGaugeVec::new(
                Opts::new(
                    "m365_posture_per_user_oldest_read_timestamp_seconds",
                    "When the oldest per-user data the checks evaluate was read (Unix time), by section.",
                ),
                &["tenant", "section"],
            )?,
            sweep_users: IntGaugeVec::new(
                Opts::new(
                    "m365_posture_sweep_users",
                    "Users of a per-user section by sweep state: current, pending (due, not yet read), failed.",
                ),
                &["tenant", "section", "state"],
            )?,
            registry,
        };
        metrics.register_all()?;
        Ok(metrics)
    }

    /// Creates the labelled counters of every configured tenant and sink at zero, so dashboards
    /// and `increase()` see them before the first throttle, failure or delivery.
    pub fn touch(&self, tenants: &[String], sinks: &[String]) {
        for tenant in tenants {
            self.graph_throttled.with_label_values(&[tenant]);
            for pool in crate::graph::Pool::ALL {
                self.graph_pool_requests
                    .with_label_values(&[tenant, pool.as_str()]);
                self.graph_pool_throttled
                    .with_label_values(&[tenant, pool.as_str()]);
                self.graph_pool_slowed
                    .with_label_values(&[tenant, pool.as_str()]);
            }
            for status in ["ok", "partial", "failed"] {
                self.scans.with_label_values(&[tenant, status]);
            }
        }
        for sink in sinks {
            self.events_delivered.with_label_values(&[sink]);
            self.events_failed.with_label_values(&[sink]);
        }
    }

    /// Removes every series of `tenant` (a tenant removed from the config by a reload), so no
    /// gauge of it stays behind to page: its sweep's data age would otherwise grow until the
    /// stale-coverage alert fired, and its certificate's expiry alert with it.
    pub fn forget_tenant(&self, tenant: &str) {
        remove_series_of(&self.graph_requests, tenant);
        remove_series_of(&self.graph_throttled, tenant);
        remove_series_of(&self.graph_pool_requests, tenant);
        remove_series_of(&self.graph_pool_throttled, tenant);
        remove_series_of(&self.graph_pool_slowed, tenant);
        remove_series_of(&self.scans, tenant);
        remove_series_of(&self.credential_expiry, tenant);
        remove_series_of(&self.mailboxes_unreadable, tenant);
        remove_series_of(&self.per_user_oldest_read, tenant);
        remove_series_of(&self.sweep_users, tenant);
    }

    fn register_all(&self) -> Result<(), MetricsError> {
        let r = &self.registry;
        r.register(Box::new(self.graph_requests.clone()))?;
        r.register(Box::new(self.graph_throttled.clone()))?;
        r.register(Box::new(self.graph_pool_requests.clone()))?;
        r.register(Box::new(self.graph_pool_throttled.clone()))?;
        r.register(Box::new(self.graph_pool_slowed.clone()))?;
        r.register(Box::new(self.scans.clone()))?;
        r.register(Box::new(self.events_delivered.clone()))?;
        r.register(Box::new(self.events_failed.clone()))?;
        r.register(Box::new(self.outbox_full.clone()))?;
        r.register(Box::new(self.credential_expiry.clone()))?;
        r.register(Box::new(self.mailboxes_unreadable.clone()))?;
        r.register(Box::new(self.per_user_oldest_read.clone()))?;
        r.register(Box::new(self.sweep_users.clone()))?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(())
    }
}

/// Removes the series of `vec` whose `tenant` label is `tenant`, whatever its other labels.
fn remove_series_of<T: MetricVecBuilder>(vec: &MetricVec<T>, tenant: &str) {
    for family in vec.collect() {
        for metric in family.get_metric() {
            let labels: HashMap<&str, &str> = metric
                .get_label()
                .iter()
                .map(|pair| (pair.name(), pair.value()))
                .collect();
            if labels.get("tenant") == Some(&tenant) {
                // Absent already (a concurrent removal) is what was wanted.
                let _ = vec.remove(&labels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_series_are_exported_at_zero() {
        use prometheus::Encoder;
        let metrics = Metrics::new().unwrap();
        metrics.touch(&["contoso".to_owned()], &["siem".to_owned()]);
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("m365_posture_graph_throttled_total{tenant=\"contoso\"} 0"));
        assert!(text.contains("m365_posture_scans_total{status=\"failed\",tenant=\"contoso\"} 0"));
        assert!(text.contains("m365_posture_events_failed_total{sink=\"siem\"} 0"));
    }

    #[test]
    fn a_forgotten_tenant_has_no_series_left_and_the_others_keep_theirs() {
        let metrics = Metrics::new().unwrap();
        let tenants = ["contoso".to_owned(), "fabrikam".to_owned()];
        metrics.touch(&tenants, &["siem".to_owned()]);
        for tenant in &tenants {
            metrics
                .graph_requests
                .with_label_values(&[tenant, "429"])
                .inc();
            metrics
                .credential_expiry
                .with_label_values(&[tenant])
                .set(1);
            metrics
                .sweep_users
                .with_label_values(&[tenant, "rules", "pending"])
                .set(3);
            metrics
                .per_user_oldest_read
                .with_label_values(&[tenant, "auth_methods"])
                .set(1);
        }
        metrics.forget_tenant("contoso");
        let labelled = |tenant: &str| {
            metrics
                .registry
                .gather()
                .iter()
                .flat_map(|family| family.get_metric().to_vec())
                .filter(|metric| {
                    metric
                        .get_label()
                        .iter()
                        .any(|pair| pair.name() == "tenant" && pair.value() == tenant)
                })
                .count()
        };
        assert_eq!(labelled("contoso"), 0);
        // 1 + 3 x 3 pools + 3 statuses touched, 1 code, 1 expiry, 1 sweep, 1 oldest read.
        assert_eq!(labelled("fabrikam"), 17);
        assert_eq!(
            metrics.events_delivered.with_label_values(&["siem"]).get(),
            0,
            "sink series stay"
        );
    }
}
