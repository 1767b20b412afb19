//! Shared helpers of the collection tests: a simulator, a config pointing at it, a context.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use graph_sim::{
    start, SimHandle, SimOptions, TenantFile, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
use m365_posture::checks::CheckOptions;
use m365_posture::collect::{collect_tenant, CollectContext, CollectReport};
use m365_posture::config::*;
use m365_posture::graph::auth::NoRefreshTokens;
use m365_posture::graph::RefreshTokenStore;
use m365_posture::metrics::Metrics;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The sim's own fixture tenant.
pub fn contoso() -> TenantFile {
    TenantFile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap()
}

/// A tenant fixture of this crate (`tests/fixtures/collect/<name>`).
pub fn fixture(name: &str) -> TenantFile {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/collect"
    ))
    .join(name);
    TenantFile::load(&path).unwrap()
}

pub async fn sim(tenant: TenantFile) -> SimHandle {
    start(tenant, SimOptions::default()).await.unwrap()
}

/// Files that must outlive the config (secret, keys).
pub struct Files {
    pub dir: tempfile::TempDir,
}

impl Files {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn secret(&self) -> TenantAuth {
        TenantAuth::ClientSecret {
            secret_file: self.write("secret", &format!("{DEFAULT_CLIENT_SECRET}\n")),
        }
    }
}

pub fn tenant_config(sim: &SimHandle, auth: TenantAuth) -> TenantConfig {
    TenantConfig {
        name: "contoso".into(),
        tenant_id: sim.tenant_id(),
        client_id: DEFAULT_CLIENT_ID.into(),
        auth,
        authority_url: sim.base_url(),
        graph_url: sim.base_url(),
        interval: Duration::from_secs(3600),
    }
}

pub fn config(sim: &SimHandle, auth: TenantAuth) -> Config {
    Config {
        tenants: vec![tenant_config(sim, auth)],
        dns: DnsConfig {
            servers: vec![sim.dns_addr()],
            timeout: Duration::from_millis(500),
        },
        scan: ScanConfig {
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(120),
            first_scan: FirstScan::Emit,
            directory_concurrency: 4,
            mailbox_concurrency: 4,
            reports_per_10s: 5,
            per_user_max_age: Duration::from_secs(7 * 24 * 3600),
            sweep_pause: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        },
        state: StateConfig {
            path: PathBuf::from("unused.db"),
            outbox_max_events: 1000,
        },
        metrics: MetricsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
        sinks: Vec::new(),
        checks: CheckOptions::default(),
        severity_overrides: BTreeMap::new(),
        suppressions: Vec::new(),
    }
}

pub fn context(config: Config) -> CollectContext {
    context_with(config, Arc::new(NoRefreshTokens))
}

pub fn context_with(config: Config, tokens: Arc<dyn RefreshTokenStore>) -> CollectContext {
    CollectContext::new(Arc::new(config), Metrics::new().unwrap(), tokens).unwrap()
}

pub async fn collect(ctx: &CollectContext) -> CollectReport {
    let tenant = ctx.config().tenants[0].clone();
    collect_tenant(ctx, &tenant, &CancellationToken::new()).await
}

/// One collection by the daemon's own snapshot source with the state file at `state`, as a
/// fresh process: the state file is all that carries over from earlier cycles.
pub async fn daemon_cycle(
    config: &Config,
    state: &std::path::Path,
) -> (m365_posture::scan::CollectedSnapshot, Metrics) {
    use m365_posture::scan::SnapshotSource;
    let store = m365_posture::state::Store::open(state).unwrap();
    let ctx = context(config.clone());
    let metrics = ctx.metrics.clone();
    let source = m365_posture::collect::source::GraphSource::new(ctx, Some(store));
    let snap = source
        .collect(&config.tenants[0], &CancellationToken::new())
        .await;
    (snap, metrics)
}

/// `m365_posture_graph_requests_total` summed over codes.
pub fn counted_requests(ctx: &CollectContext) -> u64 {
    metric_sum(ctx, "m365_posture_graph_requests_total")
}

/// Sum of every series of a metric in the context's registry.
pub fn metric_sum(ctx: &CollectContext, name: &str) -> u64 {
    let text = prometheus::TextEncoder::new()
        .encode_to_string(&ctx.metrics.registry.gather())
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A refresh-token store in memory that records every save.
#[derive(Default)]
pub struct MemoryTokens {
    pub tokens: Mutex<BTreeMap<String, Secret>>,
    pub saves: Mutex<Vec<String>>,
}

impl RefreshTokenStore for MemoryTokens {
    fn load(&self, tenant: &str) -> Option<Secret> {
        self.tokens.lock().unwrap().get(tenant).cloned()
    }
    fn save(&self, tenant: &str, token: &Secret) -> Result<(), String> {
        self.tokens
            .lock()
            .unwrap()
            .insert(tenant.to_owned(), token.clone());
        self.saves.lock().unwrap().push(token.expose().to_owned());
        Ok(())
    }
}

/// A generated tenant (seed 11) whose reports bucket admits `per_10s` requests per 10 s on
/// both sides (Graph: 5), and a config for it.
pub async fn reports_bucket_tenant(
    users: usize,
    per_10s: u32,
    files: &Files,
) -> (SimHandle, Config) {
    let mut tenant: TenantFile = graph_sim::generate(users, 11);
    tenant.faults.throttle.reports_per_10s = per_10s;
    let sim = sim(tenant).await;
    let mut config = config(&sim, files.secret());
    config.scan.reports_per_10s = per_10s;
    (sim, config)
}
