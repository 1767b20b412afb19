//! Bench: a full collection (`collect::collect_tenant`) of graph-sim tenants of 1k and 10k users,
//! with graph-sim in-process on port 0; and the graph-sim generator at 100k users. Each case
//! runs in its own child process so its peak RSS is its own.
//!
//! Run: `cargo bench --bench scan`. Prints markdown tables for BENCHMARKS.md.

mod common;

use common::BenchError;
use graph_sim::{SimHandle, SimOptions, TenantFile, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use m365_posture::checks::CheckOptions;
use m365_posture::collect::{collect_tenant, CollectContext, CollectReport};
use m365_posture::config::{
    Config, DnsConfig, FirstScan, MetricsConfig, ScanConfig, StateConfig, TenantAuth, TenantConfig,
};
use m365_posture::graph::auth::NoRefreshTokens;
use m365_posture::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SEED: u64 = 42;
/// The config default of `scan.directory_concurrency` and `scan.mailbox_concurrency`.
const CONCURRENCY: usize = 8;

fn config(sim: &SimHandle, secret_file: std::path::PathBuf) -> Config {
    let tenant = TenantConfig {
        name: "bench".into(),
        tenant_id: sim.tenant_id(),
        client_id: DEFAULT_CLIENT_ID.into(),
        auth: TenantAuth::ClientSecret { secret_file },
        authority_url: sim.base_url(),
        graph_url: sim.base_url(),
        interval: Duration::from_secs(3600),
    };
    Config {
        tenants: vec![tenant],
        dns: DnsConfig {
            servers: vec![sim.dns_addr()],
            timeout: Duration::from_secs(2),
        },
        scan: ScanConfig {
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(3600),
            first_scan: FirstScan::Emit,
            directory_concurrency: CONCURRENCY,
            mailbox_concurrency: CONCURRENCY,
            reports_per_10s: 5,
            per_user_max_age: Duration::from_secs(7 * 24 * 3600),
            sweep_pause: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        },
        state: StateConfig {
            path: "unused.db".into(),
            outbox_max_events: 100_000,
        },
        metrics: MetricsConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        },
        sinks: Vec::new(),
        checks: CheckOptions::default(),
        severity_overrides: BTreeMap::new(),
        suppressions: Vec::new(),
    }
}

/// Names of snapshot sections that did not arrive (empty for a clean scan).
fn missing_sections(report: &CollectReport) -> Vec<&'static str> {
    let s = &report.snapshot;
    [
        ("organization", s.organization.is_err()),
        ("domains", s.domains.is_err()),
        ("users", s.users.is_err()),
        ("registration", s.registration_details.is_err()),
        ("auth_methods", s.auth_methods.is_err()),
        ("calendar", s.calendar_permissions.is_err()),
        ("rules", s.message_rules.is_err()),
        ("applications", s.applications.is_err()),
        ("service_principals", s.service_principals.is_err()),
    ]
    .into_iter()
    .filter_map(|(name, missing)| missing.then_some(name))
    .collect()
}

fn scan_iterations(users: usize) -> usize {
    if users <= 1_000 {
        5
    } else {
        3
    }
}

/// One tenant size, in this (child) process: prints one `|`-separated row.
async fn scan_case(users: usize) -> Result<(), BenchError> {
    let tenant: TenantFile = graph_sim::generate(users, SEED);
    let mailboxes = tenant.mailboxes.len();
    let sim = graph_sim::start(tenant, SimOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("secret");
    std::fs::write(&secret, DEFAULT_CLIENT_SECRET)?;
    let ctx = CollectContext::new(
        Arc::new(config(&sim, secret)),
        Metrics::new()?,
        Arc::new(NoRefreshTokens),
    )?;
    let tenant_config = ctx
        .config()
        .tenants
        .first()
        .cloned()
        .ok_or("no tenant in config")?;
    let rss_before = common::status_kib("VmRSS");
    let reset = common::reset_peak_rss();
    let mut walls = Vec::new();
    let mut per_scan = Vec::new();
    let mut last_scan = (graph_sim::Stats::default(), graph_sim::Stats::default());
    let cpu_before = common::cpu_time();
    for _ in 0..scan_iterations(users) {
        let before = sim.stats();
        let start = Instant::now();
        let report = collect_tenant(&ctx, &tenant_config, &CancellationToken::new()).await;
        walls.push(start.elapsed());
        if let Some(err) = &report.error {
            return Err(format!("scan failed: {err}").into());
        }
        let missing = missing_sections(&report);
        if !missing.is_empty() {
            return Err(format!("sections missing: {missing:?}").into());
        }
        let after = sim.stats();
        per_scan.push((
            after.total_requests - before.total_requests,
            after.batch_requests - before.batch_requests,
        ));
        last_scan = (before, after);
    }
    print_templates(&last_scan.0, &last_scan.1);
    let peak = common::status_kib("VmHWM");
    let cpu = common::cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before) / walls.len().max(1) as u32);
    walls.sort();
    let median = walls.get(walls.len() / 2).copied().unwrap_or_default();
    let min = walls.first().copied().unwrap_or_default();
    let (http, inner) = per_scan.last().copied().unwrap_or_default();
    let peak_note = if reset { "" } else { " (since start)" };
    println!(
        "{users}|{mailboxes}|{}|{}|{}|{}|{http}|{inner}|{:.3}|{:.2}|{}|{}{peak_note}",
        walls.len(),
        common::ms(median),
        common::ms(min),
        common::ms_or_na(cpu),
        http as f64 / users as f64,
        (inner + http) as f64 / users as f64,
        common::mib(rss_before),
        common::mib(peak),
    );
    sim.shutdown().await;
    Ok(())
}

/// Prints `tpl|template|outer|inner|inner 404` lines: requests per path template in one scan.
fn print_templates(before: &graph_sim::Stats, after: &graph_sim::Stats) {
    let templates: std::collections::BTreeSet<&String> = after
        .by_template
        .keys()
        .chain(after.batch_by_template.keys())
        .collect();
    for template in templates {
        let outer = after.requests_to(template) - before.requests_to(template);
        let total = after.total_to(template) - before.total_to(template);
        let not_found = after.batch_count(template, 404) - before.batch_count(template, 404);
        println!("tpl|{template}|{outer}|{}|{not_found}", total - outer);
    }
}

/// The generator at `users`, in this (child) process: prints one `|`-separated row.
fn generate_case(users: usize) {
    let timing = common::time_runs(3, false, || graph_sim::generate(users, SEED));
    println!(
        "{users}|{}|{}|{}|{}|{}",
        timing.iterations,
        common::ms(timing.median),
        common::ms(timing.min),
        common::ms_or_na(timing.cpu),
        common::mib(common::status_kib("VmHWM")),
    );
}

fn child(case: &str) -> Result<(), BenchError> {
    if let Some(users) = case.strip_prefix("generate-") {
        generate_case(users.parse()?);
        return Ok(());
    }
    let users: usize = case.parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(scan_case(users))
}

fn main() -> Result<(), BenchError> {
    if let Some(case) = common::child_case() {
        return child(&case);
    }
    common::print_machine();
    let mut rows = Vec::new();
    let mut templates = Vec::new();
    for users in [1_000, 10_000] {
        let mut lines = common::run_child_lines(&users.to_string())?;
        rows.push(lines.pop().ok_or("scan printed nothing")?);
        templates = lines;
        eprintln!("done: scan of {users} users");
    }
    println!("\n### full collection through graph-sim (concurrency {CONCURRENCY} per pool)\n");
    common::print_table(
        &[
            "users",
            "mailboxes",
            "scans",
            "median wall ms",
            "min ms",
            "CPU ms/scan (collector + sim)",
            "HTTP requests/scan",
            "batch sub-requests/scan",
            "HTTP requests per user",
            "Graph calls per user (HTTP + sub)",
            "RSS before scans MiB",
            "peak RSS during scans MiB",
        ],
        &rows,
    );
    let templates: Vec<Vec<String>> = templates
        .into_iter()
        .map(|row| row.into_iter().skip(1).collect())
        .collect();
    println!("\nrequests of the last 10,000-user scan by path template:\n");
    common::print_table(
        &[
            "path template",
            "HTTP requests",
            "inside $batch",
            "of which answered 404",
        ],
        &templates,
    );
    let generated = common::run_child("generate-100000")?;
    println!("\n### graph-sim generator\n");
    common::print_table(
        &[
            "users",
            "runs",
            "median ms",
            "min ms",
            "CPU ms/run",
            "peak RSS MiB",
        ],
        &[generated],
    );
    println!("\nload average after: {}", common::load_average());
    Ok(())
}
