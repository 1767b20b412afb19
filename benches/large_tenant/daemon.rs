//! The real `m365-posture` binary as the bench runs it: a config file for graph-sim and the
//! bench's TCP receiver, the child process, its peak RSS (`VmHWM`) and CPU time read from
//! `/proc/<pid>/`, committed scans read from its state file, and `/metrics` fetched over HTTP.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use graph_sim::SimHandle;

use super::common::BenchError;

/// What a config file needs to know about one bench run.
pub struct Setup<'a> {
    /// The simulator.
    pub sim: &'a SimHandle,
    /// Scratch directory (state file, secret, config, log).
    pub dir: &'a Path,
    /// The bench receiver.
    pub receiver: std::net::SocketAddr,
    /// `scan.reports_per_10s` (the simulator's bucket is set to the same).
    pub reports_per_10s: u32,
    /// `scan.per_user_max_age`.
    pub per_user_max_age: &'a str,
    /// Tenant names (all on the simulator's one tenant).
    pub tenants: usize,
    /// `scan.interval`, `scan.timeout` and `scan.sweep_pause` (humantime).
    pub cadence: [&'a str; 3],
}

impl<'a> Setup<'a> {
    /// One tenant on `sim` with the bucket at `scale` times Graph's 5 per 10 s, a 7-day
    /// `per_user_max_age`, a 1-h interval, a 2-h timeout and the default 60-s sweep pause.
    pub fn one_tenant(
        sim: &'a SimHandle,
        dir: &'a Path,
        receiver: std::net::SocketAddr,
        scale: u32,
    ) -> Self {
        Self {
            sim,
            dir,
            receiver,
            reports_per_10s: 5 * scale,
            per_user_max_age: "7d",
            tenants: 1,
            cadence: ["1h", "2h", "60s"],
        }
    }
}

/// A free loopback port (bound, then released: the daemon binds it next).
fn free_port() -> Result<u16, BenchError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes `config.toml` for `setup`; returns it and the metrics address.
pub fn write_config(setup: &Setup<'_>) -> Result<(PathBuf, String), BenchError> {
    let secret = setup.dir.join("secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET))?;
    let metrics = format!("127.0.0.1:{}", free_port()?);
    let mut text = String::new();
    for index in 0..setup.tenants {
        text.push_str(&format!(
            "[[tenants]]\nname = \"bench{index}\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
             client_secret_file = \"{}\"\nauthority_url = \"{base}\"\ngraph_url = \"{base}\"\n\n",
            setup.sim.tenant_id(),
            graph_sim::DEFAULT_CLIENT_ID,
            secret.display(),
            base = setup.sim.base_url(),
        ));
    }
    text.push_str(&format!(
        "[dns]\nservers = [\"{dns}\"]\ntimeout = \"2s\"\n\n\
         [scan]\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\nsweep_pause = \"{pause}\"\nfirst_scan = \"emit\"\n\
         directory_concurrency = 8\nmailbox_concurrency = 8\nreports_per_10s = {reports}\n\
         per_user_max_age = \"{age}\"\nshutdown_grace = \"10s\"\n\n\
         [state]\npath = \"{state}\"\noutbox_max_events = 1000000\n\n\
         [metrics]\nlisten = \"{metrics}\"\n\n\
         [[sinks]]\nname = \"siem\"\ntype = \"syslog\"\ntransport = \"tcp\"\naddress = \"{receiver}\"\n\
         format = \"rfc5424\"\nframing = \"octet-counting\"\n",
        dns = setup.sim.dns_addr(),
        reports = setup.reports_per_10s,
        age = setup.per_user_max_age,
        interval = setup.cadence[0],
        timeout = setup.cadence[1],
        pause = setup.cadence[2],
        state = state_path(setup.dir).display(),
        receiver = setup.receiver,
    ));
    let path = setup.dir.join("config.toml");
    std::fs::write(&path, text)?;
    Ok((path, metrics))
}

/// The state file of a run directory.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.db")
}

/// `M365_BENCH_ENV` (`NAME=value` words): settings beside the unit's, for experiments such as
/// an allocator option; their figures are the experiment's, not for BENCHMARKS.md.
fn extra_environment() -> Vec<(String, String)> {
    std::env::var("M365_BENCH_ENV")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|setting| setting.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// A running daemon.
pub struct Daemon {
    child: std::process::Child,
    /// When it was started.
    pub started: Instant,
}

/// Peak RSS and CPU time of a process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// `VmHWM` in KiB.
    pub peak_rss_kib: u64,
    /// User + system time.
    pub cpu: Duration,
}

/// The `Environment=` settings of the shipped systemd unit, so that the daemon runs here as it
/// runs in production (today `MIMALLOC_PURGE_DELAY=0`).
fn unit_environment() -> Vec<(String, String)> {
    include_str!("../../systemd/m365-posture.service")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Environment="))
        .filter_map(|setting| setting.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

impl Daemon {
    /// Starts `m365-posture run --config CONFIG` (log at warn level to `daemon.log`).
    pub fn spawn(config: &Path) -> Result<Daemon, BenchError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("daemon.log"))?;
        // `M365_BENCH_WRAP` (for example `heaptrack -o /tmp/daemon`) runs the daemon under a
        // profiler; its figures are then the wrapper's, not for BENCHMARKS.md.
        let wrap = std::env::var("M365_BENCH_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = std::process::Command::new(program);
                command.args(words).arg(env!("CARGO_BIN_EXE_m365-posture"));
                command
            }
            None => std::process::Command::new(env!("CARGO_BIN_EXE_m365-posture")),
        };
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .envs(unit_environment())
            .envs(extra_environment())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?;
        Ok(Daemon {
            child,
            started: Instant::now(),
        })
    }

    /// Peak RSS and CPU so far.
    pub fn usage(&self) -> Result<Usage, BenchError> {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmHWM")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // After "(name)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime stime, in clock ticks of 1/100 s.
        let mut fields = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .split_whitespace()
            .skip(11)
            .map(|f| f.parse::<u64>().unwrap_or(0));
        let ticks = fields.next().unwrap_or(0) + fields.next().unwrap_or(0);
        Ok(Usage {
            peak_rss_kib,
            cpu: Duration::from_millis(ticks * 10),
        })
    }

    /// Stops it with SIGTERM and waits (up to 120 s, then SIGKILL).
    pub async fn stop(mut self) -> Result<(), BenchError> {
        let pid = self.child.id().to_string();
        if std::env::var("M365_BENCH_WRAP").is_ok_and(|w| !w.trim().is_empty()) {
            // The wrapper (a profiler) runs the daemon as its child and writes its data
            // once the daemon exits: the signal goes to the daemon.
            std::process::Command::new("pkill")
                .args(["-TERM", "-P", &pid])
                .status()?;
        } else {
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()?;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        Err("daemon did not stop within 120 s of SIGTERM".into())
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Committed (non-failed) scans and the latest one's duration in seconds.
pub fn committed_scans(state: &Path) -> (i64, f64) {
    let Ok(conn) = rusqlite::Connection::open(state) else {
        return (0, 0.0);
    };
    conn.query_row(
        "SELECT COUNT(*), COALESCE((SELECT duration_seconds FROM scans WHERE status != 'failed' \
         ORDER BY id DESC LIMIT 1), 0) FROM scans WHERE status != 'failed'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap_or((0, 0.0))
}

/// Moves every stored listing time `days` days back, as if the last full listings were that
/// old: the daemon's next cycle lists every delta collection again (its weekly relisting).
pub fn age_listings(state: &Path, days: i64) -> Result<(), BenchError> {
    let conn = rusqlite::Connection::open(state)?;
    let changed = conn.execute(
        "UPDATE delta_links SET listed_ms = listed_ms - ?1 WHERE listed_ms IS NOT NULL",
        [days * 86_400_000],
    )?;
    if changed == 0 {
        return Err("no stored listing time to age".into());
    }
    Ok(())
}

/// Open instances `(finding, resource_id)` of every tenant in the state file.
pub fn open_instances(state: &Path) -> Result<Vec<(String, String)>, BenchError> {
    let conn = rusqlite::Connection::open(state)?;
    let mut statement = conn.prepare(
        "SELECT finding, resource_id FROM instances WHERE resolved_at_ms IS NULL ORDER BY 1, 2",
    )?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Events the daemon wrote to its outbox so far, from `event_counts`.
pub fn events_emitted(state: &Path) -> Result<i64, BenchError> {
    let conn = rusqlite::Connection::open(state)?;
    Ok(conn.query_row(
        "SELECT COALESCE(SUM(count), 0) FROM event_counts",
        [],
        |r| r.get(0),
    )?)
}

/// Waits until the state file has more than `after` committed scans (polling every 100 ms),
/// up to `limit`; fails if the daemon exits.
pub async fn wait_for_commit(
    daemon: &mut Daemon,
    state: &Path,
    after: i64,
    limit: Duration,
) -> Result<Duration, BenchError> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if committed_scans(state).0 > after {
            return Ok(daemon.started.elapsed());
        }
        if !daemon.alive() {
            let log =
                std::fs::read_to_string(state.with_file_name("daemon.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("the daemon exited; its log ends:\n{}", tail.join("\n")).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("no committed scan within {limit:?}").into())
}

/// `GET /metrics` and the time it took.
pub async fn scrape(
    client: &reqwest::Client,
    metrics: &str,
) -> Result<(String, Duration), BenchError> {
    let started = Instant::now();
    let text = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok((text, started.elapsed()))
}
