//! A sweep spread over several scans, as in production at 100,000 users: at 5 method reads
//! per 10 s one pass takes hours, and each scan stops sending per-user reads at three quarters
//! of `scan.timeout` (default 30 min), then the next starts after `scan.sweep_pause` (60 s).
//! Here both are scaled like the rest (`scan.interval` stays 1 h), so the sweep takes several
//! scans, each with its tenant-wide reads, evaluation and commit. Figures: time to full
//! per-user coverage (the daemon's `m365_posture_sweep_users{state="pending"}` at 0 after a
//! committed scan) against the same bound as cycle 1, the scans it took, and the registration
//! report's requests against one read of it (a scan that continues the sweep reuses the held
//! report).
//!
//! `M365_BENCH_SPREAD` (users, for example `100000`; unset skips it) and
//! `M365_BENCH_SPREAD_SCALE` (default 20).

use std::time::{Duration, Instant};

use super::common::{mib, print_table, BenchError};
use super::cycle::{
    pages, simulator, sweep_users, time_bound, Delta, CALENDAR, METHODS, REPORT, RULES,
};
use super::daemon::{self, Daemon, Setup};
use super::receiver::Receiver;

/// Production's `scan.timeout` default and the sweep's pause, in milliseconds.
const TIMEOUT_MS: u64 = 30 * 60 * 1000;
const PAUSE_MS: u64 = 60 * 1000;

/// One spread run's row.
pub async fn run(users: usize, scale: u32) -> Result<Vec<String>, BenchError> {
    let (sim, tenant) = simulator(users, scale).await?;
    let receiver = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let pause = format!("{}ms", PAUSE_MS / u64::from(scale));
    let timeout = format!("{}ms", TIMEOUT_MS / u64::from(scale));
    let setup = Setup {
        cadence: ["1h", &timeout, &pause],
        ..Setup::one_tenant(&sim, dir.path(), receiver.addr, scale)
    };
    let (config, metrics) = daemon::write_config(&setup)?;
    let state = daemon::state_path(dir.path());
    let client = reqwest::Client::new();
    let before = sim.stats();
    let mut running = Daemon::spawn(&config)?;
    let (coverage, scans) = until_covered(&mut running, &state, &client, &metrics).await?;
    let delta = Delta {
        before,
        after: sim.stats(),
    };
    let usage = running.usage()?;
    running.stop().await?;
    sim.shutdown().await;
    let measured = Measured {
        coverage,
        scans,
        bound: time_bound(&tenant, &delta, scale),
        delta,
        usage,
    };
    let mut row = vec![
        users.to_string(),
        format!("1/{scale}"),
        format!("{timeout} / {pause}"),
    ];
    row.extend(measured.cells(tenant.users.len()));
    Ok(row)
}

/// What one spread run measured.
struct Measured {
    coverage: Duration,
    scans: i64,
    bound: Duration,
    delta: Delta,
    usage: daemon::Usage,
}

impl Measured {
    /// The table's cells from "coverage s" on.
    fn cells(&self, users: usize) -> Vec<String> {
        let (coverage, bound) = (self.coverage.as_secs_f64(), self.bound.as_secs_f64());
        let delta = &self.delta;
        vec![
            format!("{coverage:.1}"),
            format!("{bound:.1}"),
            format!("{:+.1}%", (coverage / bound - 1.0) * 100.0),
            self.scans.to_string(),
            format!("{} / {}", delta.total_to(REPORT), pages(users)),
            format!(
                "{} / {}",
                delta.total_to(METHODS),
                delta.total_to(CALENDAR) + delta.total_to(RULES)
            ),
            delta.http().to_string(),
            delta.throttled().to_string(),
            mib(Some(self.usage.peak_rss_kib)),
            format!("{:.1}", self.usage.cpu.as_secs_f64()),
        ]
    }
}

/// Waits until a committed scan leaves no user pending; the time since the daemon started and
/// the scans committed by then.
async fn until_covered(
    running: &mut Daemon,
    state: &std::path::Path,
    client: &reqwest::Client,
    metrics: &str,
) -> Result<(Duration, i64), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(3 * 3600);
    let mut committed = 0;
    while Instant::now() < deadline {
        daemon::wait_for_commit(running, state, committed, Duration::from_secs(3 * 3600)).await?;
        let elapsed = running.started.elapsed();
        committed = daemon::committed_scans(state).0;
        let (text, _) = daemon::scrape(client, metrics).await?;
        let (pending, current) = (sweep_users(&text, "pending"), sweep_users(&text, "current"));
        let peak = mib(Some(running.usage()?.peak_rss_kib));
        println!(
            "scan {committed} committed at {elapsed:.1?}: {pending} pending, {current} current, \
             peak RSS {peak} MiB"
        );
        if pending == 0.0 && current > 0.0 {
            return Ok((elapsed, committed));
        }
    }
    Err("the sweep did not finish within 3 h".into())
}

/// Prints the spread runs' table.
pub fn print(rows: &[Vec<String>]) {
    print_table(
        &[
            "users",
            "scale",
            "timeout / pause",
            "coverage s",
            "bound s",
            "vs bound",
            "scans",
            "report requests / one read",
            "method / mailbox reads",
            "HTTP",
            "429s",
            "peak RSS MiB",
            "CPU s",
        ],
        rows,
    );
}
