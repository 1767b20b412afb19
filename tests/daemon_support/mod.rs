//! Shared helpers for the daemon tests: a config, a scripted scanner, a tiny HTTP client, a
//! metrics text parser and the daemon binary as a child process.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod binary;
#[allow(unused_imports)] // not every test runs the binary
pub use binary::Daemon;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use graph_sim::{start, Faults, SimHandle, SimOptions, TenantFile};
use m365_posture::checks::{CheckOptions, Evaluation, Outcome};
use m365_posture::config::*;
use m365_posture::findings::{Finding, FindingId};
use m365_posture::metrics::Metrics;
use m365_posture::scan::{ScanOutput, TenantScanner};
use m365_posture::state::Store;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// A config with the given tenants scanning every `interval`, state at `state`.
pub fn config(state: &Path, tenants: &[&str], interval: Duration) -> Config {
    Config {
        tenants: tenants
            .iter()
            .enumerate()
            .map(|(i, name)| TenantConfig {
                name: (*name).to_owned(),
                tenant_id: format!("00000000-0000-0000-0000-00000000000{i}"),
                client_id: "11111111-1111-1111-1111-111111111111".into(),
                auth: TenantAuth::ClientSecret {
                    secret_file: "/nonexistent".into(),
                },
                authority_url: "http://127.0.0.1:1".into(),
                graph_url: "http://127.0.0.1:1".into(),
                interval,
            })
            .collect(),
        dns: DnsConfig {
            servers: vec![],
            timeout: Duration::from_secs(1),
        },
        scan: ScanConfig {
            interval,
            timeout: Duration::from_secs(5),
            first_scan: FirstScan::Emit,
            directory_concurrency: 4,
            mailbox_concurrency: 4,
            reports_per_10s: 5,
            per_user_max_age: Duration::from_secs(7 * 24 * 3600),
            sweep_pause: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        },
        state: StateConfig {
            path: state.to_owned(),
            outbox_max_events: 10_000,
        },
        metrics: MetricsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
        // A SIEM that is down: events stay in the outbox, where the tests read them.
        sinks: vec![SinkConfig {
            name: "siem".into(),
            payload: Payload::Cef,
            kind: SinkKind::Syslog(SyslogSink {
                transport: Transport::Tcp,
                address: "127.0.0.1:1".into(),
                format: SyslogFormat::Rfc5424,
                framing: Framing::OctetCounting,
                tls: None,
                max_message_bytes: 8192,
            }),
        }],
        checks: CheckOptions::default(),
        severity_overrides: BTreeMap::new(),
        suppressions: vec![],
    }
}

/// What the scripted tenant looks like right now.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Instances of each finding (resource ids); findings absent run clean.
    pub findings: BTreeMap<FindingId, Vec<String>>,
    /// Findings whose check is skipped (a 403 on its source).
    pub skipped: Vec<FindingId>,
    /// A whole-scan failure (Graph outage): every check skipped, error set.
    pub outage: bool,
    /// Scans sleep this long (to test deadlines and shutdown).
    pub delay: Duration,
}

/// A scanner that answers from a shared, mutable [`Script`] and counts its scans per tenant.
#[derive(Clone, Default)]
pub struct ScriptedScanner {
    pub script: Arc<Mutex<BTreeMap<String, Script>>>,
    pub started: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl ScriptedScanner {
    pub fn set(&self, tenant: &str, script: Script) {
        self.script
            .lock()
            .unwrap()
            .insert(tenant.to_owned(), script);
    }

    pub fn edit(&self, tenant: &str, edit: impl FnOnce(&mut Script)) {
        edit(
            self.script
                .lock()
                .unwrap()
                .entry(tenant.to_owned())
                .or_default(),
        );
    }

    pub fn started(&self, tenant: &str) -> usize {
        self.started
            .lock()
            .unwrap()
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }
}

fn outcome(script: &Script, id: FindingId) -> Outcome {
    if script.outage || script.skipped.contains(&id) {
        return Outcome::Skipped {
            reason: "permission_denied: User.Read.All".into(),
        };
    }
    let findings = script
        .findings
        .get(&id)
        .map(|ids| {
            ids.iter()
                .map(|r| Finding {
                    finding: id,
                    resource_id: r.clone(),
                    resource_name: format!("{r}@contoso.example"),
                    details: Default::default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Outcome::Evaluated(Evaluation {
        findings,
        failed_resources: Default::default(),
        ..Evaluation::default()
    })
}

impl TenantScanner for ScriptedScanner {
    fn scan<'a>(
        &'a self,
        _config: &'a Config,
        tenant: &'a TenantConfig,
        _now: DateTime<Utc>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ScanOutput> {
        Box::pin(async move {
            *self
                .started
                .lock()
                .unwrap()
                .entry(tenant.name.clone())
                .or_default() += 1;
            let script = self
                .script
                .lock()
                .unwrap()
                .get(&tenant.name)
                .cloned()
                .unwrap_or_default();
            tokio::select! {
                () = cancel.cancelled() => return ScanOutput { outcomes: vec![], error: Some("cancelled".into()), sweep_pending: false },
                () = tokio::time::sleep(script.delay) => {}
            }
            ScanOutput {
                outcomes: FindingId::ALL
                    .iter()
                    .map(|id| (*id, outcome(&script, *id)))
                    .collect(),
                error: script.outage.then(|| "graph unavailable".to_owned()),
                sweep_pending: false,
            }
        })
    }
}

/// `GET path` over HTTP/1.1; returns status and body.
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Samples of the exposition, `name{labels}` -> value, without process metrics.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with("m365_posture_"))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Sum of samples whose key starts with `prefix` and contains every `needle`.
pub fn sum(samples: &BTreeMap<String, f64>, prefix: &str, needles: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && needles.iter().all(|n| k.contains(n)))
        .map(|(_, v)| v)
        .sum()
}

/// Waits until `done` holds, checking every 20 ms, for at most 60 s.
pub async fn wait_until(what: &str, done: impl FnMut() -> bool) {
    wait_until_within(what, Duration::from_secs(60), done).await;
}

/// Waits until `done` holds, checking every 20 ms, for at most `limit`.
pub async fn wait_until_within(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + limit;
    while std::time::Instant::now() < until {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what} ({limit:?})");
}

/// Outbox events (action, finding, resource id) in order, read from the state file.
pub fn outbox(state: &Path) -> Vec<(String, String, String, String)> {
    let conn = rusqlite::Connection::open(state).unwrap();
    let mut stmt = conn
        .prepare("SELECT event FROM outbox ORDER BY seq")
        .unwrap();
    let rows = stmt.query_map([], |row| row.get::<_, String>(0)).unwrap();
    rows.map(|body| {
        let event: m365_posture::events::FindingEvent =
            serde_json::from_str(&body.unwrap()).unwrap();
        (
            event.tenant,
            event.action.as_str().to_owned(),
            event.finding.as_str().to_owned(),
            event.resource_id,
        )
    })
    .collect()
}

/// How often a config written by [`write_sim_config`] scans: once an hour.
pub const HOURLY: &str = "interval = \"1h\"";

/// Writes `dir/name`, a config for the real binary against graph-sim: one tenant with a client
/// secret read from `secret`, the sim's DNS, state at `state`, `scan` as the `[scan]` table,
/// metrics on port 0 and events on standard output as JSON. Returns the config's path.
pub fn write_sim_config(
    dir: &Path,
    name: &str,
    sim: &graph_sim::SimHandle,
    files: (&Path, &Path),
    scan: &str,
) -> std::path::PathBuf {
    let stdout = "[[sinks]]\ntype = \"stdout\"\npayload = \"json\"\n";
    write_sim_config_with_sinks(dir, name, sim, files, (scan, stdout))
}

/// [`write_sim_config`] with `sinks` (TOML `[[sinks]]` tables) instead of the stdout sink.
pub fn write_sim_config_with_sinks(
    dir: &Path,
    name: &str,
    sim: &graph_sim::SimHandle,
    (secret, state): (&Path, &Path),
    (scan, sinks): (&str, &str),
) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format!(
        r#"
[[tenants]]
name = "contoso"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "{secret}"
authority_url = "{base}"
graph_url = "{base}"

[dns]
servers = ["{dns}"]
timeout = "500ms"

[scan]
{scan}

[state]
path = "{state}"

[metrics]
listen = "127.0.0.1:0"

{sinks}"#,
        tenant = sim.tenant_id(),
        client = graph_sim::DEFAULT_CLIENT_ID,
        secret = secret.display(),
        base = sim.base_url(),
        dns = sim.dns_addr(),
        state = state.display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Scans recorded in a state file (0 while it does not exist yet).
pub fn recorded_scans(state: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(state) else {
        return 0;
    };
    conn.query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Scans every 100 ms read the registration report ten times a second; Graph's reports bucket
/// (5 per 10 s) would hold each scan for seconds. Both sides get a wider bucket here.
pub const WIDE_REPORTS: u32 = 1_000;

pub fn wide_reports(mut faults: Faults) -> Faults {
    faults.throttle.reports_per_10s = WIDE_REPORTS;
    faults
}

pub fn finished(metrics: &Metrics) -> u64 {
    ["ok", "partial", "failed"]
        .iter()
        .map(|s| metrics.scans.with_label_values(&["contoso", s]).get())
        .sum()
}

/// Waits until two more scans finished, so at least one started after the caller's change.
pub async fn fresh_scan(metrics: &Metrics) {
    let target = finished(metrics) + 2;
    wait_until("a fresh scan", || finished(metrics) >= target).await;
}

/// A tenant in graph-sim and a daemon scanning it every 100 ms.
pub struct Running {
    pub sim: SimHandle,
    pub daemon: m365_posture::daemon::Daemon,
    pub metrics: Metrics,
    pub state: std::path::PathBuf,
    pub _dir: tempfile::TempDir,
}

/// A config for tenant `contoso` in graph-sim scanning every `interval`: the default client's
/// secret in `dir/secret`, state at `dir/state.db`, the sim's DNS.
pub fn graph_sim_config(sim: &SimHandle, dir: &Path, interval: Duration) -> Config {
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let mut cfg = config(&dir.join("state.db"), &["contoso"], interval);
    cfg.dns = DnsConfig {
        servers: vec![sim.dns_addr()],
        timeout: Duration::from_millis(500),
    };
    let tenant = &mut cfg.tenants[0];
    tenant.tenant_id = sim.tenant_id();
    tenant.client_id = graph_sim::DEFAULT_CLIENT_ID.into();
    tenant.auth = TenantAuth::ClientSecret {
        secret_file: secret,
    };
    tenant.authority_url = sim.base_url();
    tenant.graph_url = sim.base_url();
    cfg
}

/// Events of one finding in the outbox: (action, resource).
pub fn events_of(state: &Path, finding: &str) -> Vec<(String, String)> {
    outbox(state)
        .into_iter()
        .filter(|(_, _, f, _)| f == finding)
        .map(|(_, action, _, resource)| (action, resource))
        .collect()
}

/// Starts `tenant` in graph-sim (reports buckets wide) and the real daemon with the real
/// collector on it, as tenant `contoso`.
pub async fn run_daemon(mut tenant: TenantFile) -> Running {
    tenant.faults = wide_reports(Faults::default());
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let mut cfg = graph_sim_config(&sim, dir.path(), Duration::from_millis(100));
    cfg.scan.reports_per_10s = WIDE_REPORTS;
    // These tests follow each scan's per-user reads: every stored read is due at once (the
    // sweep's age rule is tested in daemon_sweep.rs).
    cfg.scan.per_user_max_age = Duration::from_millis(1);
    // Retries against a Graph that keeps failing outlast this deadline: such a scan fails.
    cfg.scan.timeout = Duration::from_secs(4);

    let store = Store::open(&state).unwrap();
    let metrics = Metrics::new().unwrap();
    let scanner = m365_posture::commands::run::graph_scanner(&cfg, &store, &metrics).unwrap();
    let daemon = m365_posture::daemon::Daemon::start(cfg, store, metrics.clone(), scanner)
        .await
        .unwrap();
    Running {
        sim,
        daemon,
        metrics,
        state,
        _dir: dir,
    }
}
