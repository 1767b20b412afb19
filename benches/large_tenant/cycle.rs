//! One bench run: graph-sim with a generated tenant, the receiver, the daemon for cycle 1
//! (fresh state) and cycle 2 (restarted, unchanged tenant), and the figures they give; plus
//! the 50-tenant `/metrics` case.

use std::time::Duration;

use graph_sim::{start, GraphLatency, SimHandle, SimOptions, Stats, TenantFile};

use super::common::{mib, print_table, BenchError};
use super::daemon::{self, Daemon, Setup};
use super::receiver::Receiver;

pub(super) const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
pub(super) const CALENDAR: &str = "/v1.0/users/{id}/calendar/calendarPermissions";
pub(super) const RULES: &str = "/v1.0/users/{id}/mailFolders/inbox/messageRules";
pub(super) const REPORT: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";

/// Figures of one run.
pub struct Figures {
    coverage: Duration,
    scan_seconds: f64,
    bound: Duration,
    http: u64,
    lower_bound: u64,
    throttled: u64,
    /// Cycle 1, cycle 2 and the weekly relisting cycle.
    directory: [u64; 3],
    per_user_second: u64,
    per_user_relist: u64,
    pending_after_first: f64,
    usage: [daemon::Usage; 3],
    emitted: i64,
    received: usize,
    drain: Option<Duration>,
}

/// Requests between two stats, by template (outer plus inside `$batch`), `/_sim` excluded.
pub struct Delta {
    pub(super) before: Stats,
    pub(super) after: Stats,
}

impl Delta {
    pub(super) fn total_to(&self, template: &str) -> u64 {
        self.after.total_to(template) - self.before.total_to(template)
    }

    /// HTTP requests on the wire (token, list pages, `$batch`), not `/_sim`.
    pub(super) fn http(&self) -> u64 {
        let outer = |s: &Stats| -> u64 {
            s.by_template
                .iter()
                .filter(|(t, _)| !t.starts_with("/_sim"))
                .flat_map(|(_, by_status)| by_status.values())
                .sum()
        };
        outer(&self.after) - outer(&self.before)
    }

    /// Tenant-wide directory requests: every `/v1.0` template that is not per user, not the
    /// reports bucket and not `$batch` (so `/users/delta` and the like count too).
    pub(super) fn directory(&self) -> u64 {
        let templates: Vec<&String> = self
            .after
            .by_template
            .keys()
            .filter(|t| t.starts_with("/v1.0/") && !t.contains("{id}") && !t.contains("$batch"))
            .filter(|t| !t.starts_with("/v1.0/reports/"))
            .collect();
        templates.iter().map(|t| self.total_to(t)).sum()
    }

    /// Per-user reads (methods, calendar, rules), outer or inside `$batch`.
    fn per_user(&self) -> u64 {
        [METHODS, CALENDAR, RULES]
            .iter()
            .map(|t| self.total_to(t))
            .sum()
    }

    pub(super) fn throttled(&self) -> u64 {
        self.after.throttled - self.before.throttled
    }
}

/// The generated tenant with the scaled reports bucket and latency, served on port 0.
pub async fn simulator(users: usize, scale: u32) -> Result<(SimHandle, TenantFile), BenchError> {
    let mut tenant = graph_sim::generate(users, 42);
    tenant.faults.throttle.reports_per_10s = 5 * scale;
    let options = SimOptions {
        graph_latency: Some(GraphLatency::scaled(1.0 / f64::from(scale))),
        ..SimOptions::default()
    };
    let sim = start(tenant.clone(), options).await?;
    Ok((sim, tenant))
}

pub(super) fn pages(items: usize) -> u64 {
    u64::try_from(items.div_ceil(999)).unwrap_or(u64::MAX)
}

/// graph-client.md section 5.2 for the reads this cycle needed: one token, every listing at
/// 999 a page (users, service principals, applications, the registration report), domains
/// and organization, and the needed per-user reads in batches of 20.
fn lower_bound(tenant: &TenantFile, delta: &Delta) -> u64 {
    let listings = pages(tenant.users.len())
        + pages(tenant.service_principals.len())
        + pages(tenant.applications.len())
        + pages(tenant.users.len());
    let exchange = delta.total_to(CALENDAR) + delta.total_to(RULES);
    1 + listings + 2 + delta.total_to(METHODS).div_ceil(20) + exchange.div_ceil(20)
}

/// The time the documented limits set for the needed reads: the reports bucket for the
/// method reads and report pages, the Exchange pool (8 batches in flight, each 5 waves of 4
/// members at the model's mean) for the mailbox reads, sequential user paging; the largest.
pub(super) fn time_bound(tenant: &TenantFile, delta: &Delta, scale: u32) -> Duration {
    let model = GraphLatency::scaled(1.0 / f64::from(scale));
    let mean = |[low, high]: [u64; 2]| (low + high) as f64 / 2.0 / 1000.0 * model.scale;
    let reports_per_second = f64::from(5 * scale) / 10.0;
    let reports = (delta.total_to(METHODS) + delta.total_to(REPORT)) as f64 / reports_per_second;
    let wave = {
        let [low, high] = model.exchange_get_ms;
        (low as f64 + (high - low) as f64 * 0.8) / 1000.0 * model.scale
    };
    let exchange_batches = (delta.total_to(CALENDAR) + delta.total_to(RULES)).div_ceil(20);
    let exchange = exchange_batches as f64 / 8.0 * (mean(model.batch_overhead_ms) + 5.0 * wave);
    let page = mean(model.small_get_ms) + mean(model.page_per_1000_items_ms) * 0.999;
    let paging = pages(tenant.users.len()) as f64 * page;
    Duration::from_secs_f64(reports.max(exchange).max(paging))
}

/// Sum of `m365_posture_sweep_users` lines of `state`.
pub(super) fn sweep_users(text: &str, state: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("m365_posture_sweep_users{"))
        .filter(|l| l.contains(&format!("state=\"{state}\"")))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Waits until the receiver holds `events` distinct events or nothing new came for 20 s.
pub async fn drained(receiver: &Receiver, events: i64) {
    let mut last = (receiver.count(), std::time::Instant::now());
    loop {
        let distinct = receiver.log.lock().map(|l| l.distinct()).unwrap_or(0);
        if i64::try_from(distinct).unwrap_or(i64::MAX) >= events {
            return;
        }
        let count = receiver.count();
        if count != last.0 {
            last = (count, std::time::Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(20) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A cycle of a daemon restarted on the state file: its requests and usage, until a scan after
/// those already committed (a daemon may have committed a second scan, the sweep's pause being
/// short, before it was stopped).
async fn restarted(
    sim: &SimHandle,
    config: &std::path::Path,
    state: &std::path::Path,
) -> Result<(Delta, daemon::Usage), BenchError> {
    let before = sim.stats();
    let committed = daemon::committed_scans(state).0;
    let mut running = Daemon::spawn(config)?;
    let limit = Duration::from_secs(3 * 3600);
    daemon::wait_for_commit(&mut running, state, committed, limit).await?;
    let delta = Delta {
        before,
        after: sim.stats(),
    };
    let usage = running.usage()?;
    running.stop().await?;
    Ok((delta, usage))
}

/// One run: cycle 1, cycle 2, the weekly relisting (and the mutation cycles when `mutate`).
pub async fn run(users: usize, scale: u32, mutate: bool) -> Result<Figures, BenchError> {
    let (sim, tenant) = simulator(users, scale).await?;
    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let setup = Setup::one_tenant(&sim, dir.path(), receiver.addr, scale);
    let (config, metrics) = daemon::write_config(&setup)?;
    let state = daemon::state_path(dir.path());
    let client = reqwest::Client::new();

    let before = sim.stats();
    let mut first = Daemon::spawn(&config)?;
    let limit = Duration::from_secs(3 * 3600);
    let coverage = daemon::wait_for_commit(&mut first, &state, 0, limit).await?;
    let first_delta = Delta {
        before,
        after: sim.stats(),
    };
    let scan_seconds = daemon::committed_scans(&state).1;
    let (text, _) = daemon::scrape(&client, &metrics).await?;
    let emitted = daemon::events_emitted(&state)?;
    drained(&receiver, emitted).await;
    let (events, drain) = receiver.snapshot();
    let received = events
        .iter()
        .map(|e| e.event_id.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let usage_first = first.usage()?;
    first.stop().await?;

    let (second_delta, usage_second) = restarted(&sim, &config, &state).await?;
    // The weekly relisting: the stored listing times made 8 days old, so the next cycle lists
    // every collection again and merges the stored per-user reads (issue 10's memory bound).
    daemon::age_listings(&state, 8)?;
    let (relist_delta, usage_relist) = restarted(&sim, &config, &state).await?;

    if mutate {
        if let Err(err) = super::mutate::check(&sim, &setup, &receiver).await {
            println!("mutation check failed: {err}");
        }
    }
    sim.shutdown().await;
    Ok(Figures {
        coverage,
        scan_seconds,
        bound: time_bound(&tenant, &first_delta, scale),
        http: first_delta.http(),
        lower_bound: lower_bound(&tenant, &first_delta),
        throttled: first_delta.throttled(),
        directory: [
            first_delta.directory(),
            second_delta.directory(),
            relist_delta.directory(),
        ],
        per_user_second: second_delta.per_user(),
        per_user_relist: relist_delta.per_user(),
        pending_after_first: sweep_users(&text, "pending"),
        usage: [usage_first, usage_second, usage_relist],
        emitted,
        received,
        drain,
    })
}

fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let at = |i: usize| values.get(i).copied().unwrap_or(f64::NAN);
    format!(
        "{:.1} / {:.1} / {:.1}",
        at(0),
        at(values.len() / 2),
        at(values.len().saturating_sub(1))
    )
}

/// Prints the per-run table and the min / median / max of coverage time.
pub fn print_figures(users: usize, figures: &[Figures]) {
    let rows: Vec<Vec<String>> = figures
        .iter()
        .map(|f| {
            let rate = f
                .drain
                .map(|d| f.received as f64 / d.as_secs_f64().max(1e-9));
            vec![
                users.to_string(),
                format!("{:.1}", f.coverage.as_secs_f64()),
                format!("{:.1}", f.scan_seconds),
                format!("{:.1}", f.bound.as_secs_f64()),
                format!(
                    "{:+.1}%",
                    (f.coverage.as_secs_f64() / f.bound.as_secs_f64() - 1.0) * 100.0
                ),
                f.pending_after_first.to_string(),
                f.http.to_string(),
                f.lower_bound.to_string(),
                format!(
                    "{:+.2}%",
                    (f.http as f64 / f.lower_bound as f64 - 1.0) * 100.0
                ),
                f.throttled.to_string(),
                format!(
                    "{} / {} / {}",
                    f.directory[0], f.directory[1], f.directory[2]
                ),
                format!("{} / {}", f.per_user_second, f.per_user_relist),
                format!(
                    "{} / {} / {}",
                    mib(Some(f.usage[0].peak_rss_kib)),
                    mib(Some(f.usage[1].peak_rss_kib)),
                    mib(Some(f.usage[2].peak_rss_kib))
                ),
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    f.usage[0].cpu.as_secs_f64(),
                    f.usage[1].cpu.as_secs_f64(),
                    f.usage[2].cpu.as_secs_f64()
                ),
                format!("{} / {}", f.emitted, f.received),
                rate.map_or_else(|| "n/a".into(), |r| format!("{r:.0}")),
            ]
        })
        .collect();
    print_table(
        &[
            "users",
            "coverage s",
            "scan s",
            "bound s",
            "vs bound",
            "pending after",
            "HTTP c1",
            "5.2 bound",
            "vs 5.2",
            "429s c1",
            "directory c1 / c2 / relist",
            "per-user reads c2 / relist",
            "peak RSS MiB c1 / c2 / relist",
            "CPU s c1 / c2 / relist",
            "events emitted / received",
            "drain events/s",
        ],
        &rows,
    );
    let coverage = figures.iter().map(|f| f.coverage.as_secs_f64()).collect();
    println!(
        "coverage s min / median / max: {} over {} run(s)",
        spread(coverage),
        figures.len()
    );
}

/// `/metrics` render time with `tenants` tenants configured (all on one small simulated
/// tenant, each scanned once first): series, bytes, min / median / max of 30 scrapes.
pub async fn metrics_with_tenants(tenants: usize) -> Result<Vec<String>, BenchError> {
    let mut tenant = graph_sim::generate(200, 7);
    tenant.faults.throttle.reports_per_10s = 1000;
    let sim = start(tenant, SimOptions::default()).await?;
    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let setup = Setup {
        sim: &sim,
        dir: dir.path(),
        receiver: receiver.addr,
        reports_per_10s: 1000,
        per_user_max_age: "7d",
        tenants,
        cadence: ["1h", "2h", "60s"],
    };
    let (config, metrics) = daemon::write_config(&setup)?;
    let state = daemon::state_path(dir.path());
    let mut running = Daemon::spawn(&config)?;
    let count = i64::try_from(tenants).unwrap_or(i64::MAX);
    let limit = Duration::from_secs(600);
    while daemon::committed_scans(&state).0 < count {
        daemon::wait_for_commit(
            &mut running,
            &state,
            daemon::committed_scans(&state).0,
            limit,
        )
        .await?;
    }
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    let mut text = String::new();
    for _ in 0..30 {
        let (body, took) = daemon::scrape(&client, &metrics).await?;
        times.push(took.as_secs_f64() * 1000.0);
        text = body;
    }
    running.stop().await?;
    sim.shutdown().await;
    times.sort_by(f64::total_cmp);
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    let at = |i: usize| times.get(i).copied().unwrap_or(f64::NAN);
    Ok(vec![
        tenants.to_string(),
        series.to_string(),
        text.len().to_string(),
        times.len().to_string(),
        format!("{:.2}", at(0)),
        format!("{:.2}", at(times.len() / 2)),
        format!("{:.2}", at(times.len().saturating_sub(1))),
    ])
}
