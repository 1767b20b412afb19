//! The Prometheus side of the daemon: a collector that computes finding, scan, check, outbox
//! and event metrics from committed state at scrape time (so values survive restarts and a
//! failed scan keeps the last good counts), and the answers to `/metrics`, `/healthz` and
//! `/readyz` (the listener itself is [`super::listener`]).
//!
//! Labels are bounded: configured tenant and sink names, finding ids, categories, severities.

use crate::findings::FindingId;
use crate::metrics::{Metrics, MetricsError};
use crate::state::Store;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, GaugeVec, IntCounterVec, Opts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// What the collector exports: configured tenants (with intervals) and sinks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// Tenant names and their scan interval in seconds.
    pub tenants: Vec<(String, f64)>,
    /// Sink names.
    pub sinks: Vec<String>,
    /// Every finding with its effective severity (config overrides applied), for
    /// `m365_posture_finding_info`.
    pub findings: Vec<(FindingId, crate::findings::Severity)>,
    /// `[scan] per_user_max_age` in seconds, for `m365_posture_per_user_max_age_seconds`: the
    /// stale-data alert's bound follows it.
    pub per_user_max_age: f64,
}

impl Scope {
    /// The scope of a config.
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            tenants: config
                .tenants
                .iter()
                .map(|t| (t.name.clone(), t.interval.as_secs_f64()))
                .collect(),
            sinks: config.sinks.iter().map(|s| s.name.clone()).collect(),
            findings: FindingId::ALL
                .iter()
                .map(|id| (*id, config.severity_of(*id)))
                .collect(),
            per_user_max_age: config.scan.per_user_max_age.as_secs_f64(),
        }
    }
}

/// Families the collector builds fresh on every scrape.
#[derive(Clone)]
struct Families {
    findings: GaugeVec,
    suppressed: GaugeVec,
    newest_first_seen: GaugeVec,
    check_success: GaugeVec,
    scan_success: GaugeVec,
    last_success: GaugeVec,
    last_scan: GaugeVec,
    duration: GaugeVec,
    interval: GaugeVec,
    per_user_max_age: Gauge,
    outbox: GaugeVec,
    events: IntCounterVec,
    build_info: GaugeVec,
    finding_info: GaugeVec,
}

impl Families {
    fn new() -> Result<Self, prometheus::Error> {
        let finding_labels = &["tenant", "category", "severity", "finding"];
        let gauge =
            |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        Ok(Self {
            findings: gauge("m365_posture_findings", "Open unsuppressed finding instances as of the last committed scan of each check (cached between scans).", finding_labels)?,
            suppressed: gauge("m365_posture_findings_suppressed", "Open finding instances covered by a suppression as of the last committed scan (cached between scans).", finding_labels)?,
            newest_first_seen: gauge("m365_posture_findings_newest_first_seen_timestamp_seconds", "When the newest open unsuppressed instance was first seen (Unix time; kept in the state file, so a restart does not move it).", finding_labels)?,
            check_success: gauge("m365_posture_check_success", "Whether the check ran with all its data in the last scan (1) or was skipped or partial (0).", &["tenant", "finding"])?,
            scan_success: gauge("m365_posture_scan_success", "Whether the last scan of the tenant committed (1) or failed (0).", &["tenant"])?,
            last_success: gauge("m365_posture_last_success_timestamp_seconds", "When the last successful scan of the tenant ended (Unix time).", &["tenant"])?,
            last_scan: gauge("m365_posture_last_scan_timestamp_seconds", "When the last scan attempt of the tenant ended (Unix time).", &["tenant"])?,
            duration: gauge("m365_posture_scan_duration_seconds", "Duration of the last scan of the tenant.", &["tenant"])?,
            interval: gauge("m365_posture_scan_interval_seconds", "Configured interval between scans of the tenant.", &["tenant"])?,
            per_user_max_age: Gauge::new("m365_posture_per_user_max_age_seconds", "Configured [scan] per_user_max_age: per-user data older than this is read again.")?,
            outbox: gauge("m365_posture_outbox_events", "Events in the outbox not yet delivered to the sink.", &["sink"])?,
            events: IntCounterVec::new(Opts::new("m365_posture_events_total", "Finding events ever written to the outbox (kept in the state file)."), &["tenant", "finding", "severity", "action"])?,
            build_info: gauge("m365_posture_build_info", "Build information; always 1.", &["version", "revision", "rustversion"])?,
            finding_info: gauge("m365_posture_finding_info", "The catalogue: title, category, effective severity and Microsoft Learn page of every finding; always 1 (join on finding).", &["finding", "title", "category", "severity", "reference"])?,
        })
    }

    fn all(&self) -> [&dyn Collector; 14] {
        [
            &self.findings,
            &self.suppressed,
            &self.newest_first_seen,
            &self.check_success,
            &self.scan_success,
            &self.last_success,
            &self.last_scan,
            &self.duration,
            &self.interval,
            &self.per_user_max_age,
            &self.outbox,
            &self.events,
            &self.build_info,
            &self.finding_info,
        ]
    }
}

/// A Prometheus collector over the committed state.
pub struct StateCollector {
    store: Store,
    scope: Arc<RwLock<Scope>>,
    template: Families,
}

impl StateCollector {
    /// Builds the collector and registers it into `metrics.registry`; returns the shared scope
    /// to update on config reload.
    pub fn register(
        store: Store,
        scope: Scope,
        metrics: &Metrics,
    ) -> Result<Arc<RwLock<Scope>>, MetricsError> {
        let scope = Arc::new(RwLock::new(scope));
        let collector = Self {
            store,
            scope: Arc::clone(&scope),
            template: Families::new()?,
        };
        metrics.registry.register(Box::new(collector))?;
        Ok(scope)
    }

    fn fill(&self, families: &Families, scope: &Scope) -> Result<(), crate::state::StateError> {
        fill_catalogue(families, scope);
        families.per_user_max_age.set(scope.per_user_max_age);
        for (tenant, interval) in &scope.tenants {
            families
                .interval
                .with_label_values(&[tenant])
                .set(*interval);
            self.fill_tenant(families, tenant)?;
        }
        for (sink, pending) in self.store.outbox_pending(&scope.sinks)? {
            families
                .outbox
                .with_label_values(&[&sink])
                .set(pending as f64);
        }
        for ((tenant, finding, severity, action), count) in self.store.event_counts()? {
            if scope.tenants.iter().any(|(name, _)| *name == tenant) {
                families
                    .events
                    .with_label_values(&[&tenant, &finding, &severity, &action])
                    .inc_by(count);
            }
        }
        Ok(())
    }

    fn fill_tenant(
        &self,
        families: &Families,
        tenant: &str,
    ) -> Result<(), crate::state::StateError> {
        for check in self.store.check_summaries(tenant)? {
            let finding = check.finding.as_str();
            let success = if check.success { 1.0 } else { 0.0 };
            families
                .check_success
                .with_label_values(&[tenant, finding])
                .set(success);
            if check.ever_evaluated {
                // Event counters exist at 0 from the first evaluation, so `increase()` and the
                // new-finding alerts see the first event of every finding.
                for action in ["new", "resolved"] {
                    families.events.with_label_values(&[
                        tenant,
                        finding,
                        check.severity.as_str(),
                        action,
                    ]);
                }
                let labels = finding_labels(tenant, check.finding, check.severity.as_str());
                families
                    .findings
                    .with_label_values(&labels)
                    .set(check.active as f64);
                families
                    .suppressed
                    .with_label_values(&labels)
                    .set(check.suppressed as f64);
                if let Some(at) = check.newest_first_seen {
                    families
                        .newest_first_seen
                        .with_label_values(&labels)
                        .set(seconds(at));
                }
            }
        }
        if let Some(scan) = self.store.scan_summary(tenant)? {
            let success = if scan.last_success { 1.0 } else { 0.0 };
            families
                .scan_success
                .with_label_values(&[tenant])
                .set(success);
            families
                .duration
                .with_label_values(&[tenant])
                .set(scan.last_duration_seconds);
            families
                .last_scan
                .with_label_values(&[tenant])
                .set(seconds(scan.last_finished));
            if let Some(at) = scan.last_success_finished {
                families
                    .last_success
                    .with_label_values(&[tenant])
                    .set(seconds(at));
            }
        }
        Ok(())
    }
}

/// The build and the finding catalogue: `m365_posture_build_info`, `m365_posture_finding_info`.
fn fill_catalogue(families: &Families, scope: &Scope) {
    families
        .build_info
        .with_label_values(&[
            crate::build_info::VERSION,
            crate::build_info::REVISION,
            crate::build_info::RUSTC_VERSION,
        ])
        .set(1.0);
    for (finding, severity) in &scope.findings {
        let meta = finding.meta();
        families
            .finding_info
            .with_label_values(&[
                meta.id,
                meta.title,
                meta.category.as_str(),
                severity.as_str(),
                crate::references::primary_url(*finding).unwrap_or_default(),
            ])
            .set(1.0);
    }
}

fn finding_labels<'a>(tenant: &'a str, finding: FindingId, severity: &'static str) -> [&'a str; 4] {
    [
        tenant,
        finding.meta().category.as_str(),
        severity,
        finding.as_str(),
    ]
}

fn seconds(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

impl Collector for StateCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.template
            .all()
            .into_iter()
            .flat_map(|c| c.desc())
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(families) = Families::new() else {
            return Vec::new();
        };
        let scope = match self.scope.read() {
            Ok(scope) => scope.clone(),
            Err(_) => return Vec::new(),
        };
        if let Err(err) = self.fill(&families, &scope) {
            tracing::warn!(error = %err, "Cannot read state for metrics; serving what was read");
        }
        families
            .all()
            .into_iter()
            .flat_map(|c| c.collect())
            .collect()
    }
}

/// The answer to one (authorized) request: `/metrics`, `/healthz`, `/readyz` (200 while
/// `ready` is set) or `/`.
pub(super) fn route(
    request: &Request<hyper::body::Incoming>,
    metrics: &Metrics,
    ready: &AtomicBool,
) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match request.uri().path() {
        "/metrics" => exposition(metrics),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if ready.load(Ordering::SeqCst) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/" => text(
            StatusCode::OK,
            "m365-posture: see /metrics, /healthz, /readyz\n",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The text exposition (format 0.0.4) of every registered metric.
pub fn render(metrics: &Metrics) -> Result<String, prometheus::Error> {
    prometheus::TextEncoder::new().encode_to_string(&metrics.registry.gather())
}

fn exposition(metrics: &Metrics) -> Response<Full<Bytes>> {
    match render(metrics) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            if let Ok(value) = hyper::header::HeaderValue::from_str(prometheus::TEXT_FORMAT) {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "Cannot encode metrics");
            text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n")
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
