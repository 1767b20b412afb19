//! The chaos soak (issue 13, SECURITY.md): the real daemon binary scans graph-sim every second
//! under random faults (`chaos_support/chaos.rs`: latency, 429 bursts, 5xx, resets, malformed
//! and truncated bodies, DNS SERVFAIL and silence), a new fault episode and a tenant change
//! (`chaos_support/truth.rs`) after every recorded scan, a real rsyslog that goes down and up,
//! and the daemon killed with SIGKILL and started again on the same state file now and then.
//!
//! Checked throughout: the daemon never exits by itself; the `/metrics` open-finding gauges
//! equal the state file's open instances (read read-only); every event id that ever sat in the
//! outbox is kept. At the end (faults off, receiver up, outbox drained): no panic in any log;
//! every committed transition (`event_counts` in the state file) arrived, parsed by two CEF
//! parsers; per instance the events alternate new/resolved and agree with the final state; no
//! event contradicts the ground truth (so no finding was resolved by a failed source); the
//! resident memory of every run after its warm-up stays within [`RSS_BOUND_KIB`], and all runs
//! together within [`RSS_ACROSS_RUNS_BOUND_KIB`].
//!
//! `M365_SOAK_SECS` sets the length (default 120 s); `M365_SOAK_SEED` replays a seed (printed
//! at the start); `M365_SOAK_KILL_RATE` the chance of a kill after each scan (default 0.08;
//! lower gives longer runs for memory figures).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

#[path = "receivers/arrivals.rs"]
mod arrivals;
mod chaos_support;
mod daemon_support;
#[path = "receivers/harness.rs"]
mod harness;

use arrivals::Arrived;
use chaos_support::truth::{Knob, Observed, Truth};
use chaos_support::{chaos, delivery};
use daemon_support::Daemon;
use graph_sim::{start, SimHandle, SimOptions, TenantFile};
use harness::{Kind, Receiver};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The scan deadline in the daemon's config, in milliseconds.
const SCAN_TIMEOUT_MS: i64 = 20_000;
/// Scans of a run before its memory counts (caches, connection pools, allocator arenas).
const WARM_UP_SCANS: i64 = 5;
/// How far resident memory may move after warm-up within one run (KiB): a leak grows there.
const RSS_BOUND_KIB: u64 = 8 * 1024;
/// How far it may move over all runs (KiB). Fresh processes differ by more than one run moves:
/// with the whole test suite running beside the soak (2 cores), runs settled from 47.0 to
/// 56.7 MiB while each stayed within 4.4 MiB; with the soak alone, within 5 MiB of each other.
/// Growth from run to run (something loaded from the state file at every start) still shows.
const RSS_ACROSS_RUNS_BOUND_KIB: u64 = 16 * 1024;

/// One resident-memory sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_secs: u64,
    run: usize,
    scans_in_run: i64,
    rss_kib: u64,
}

/// Everything the soak drives and records.
struct Soak {
    seed: u64,
    rng: StdRng,
    sim: SimHandle,
    dir: tempfile::TempDir,
    state: PathBuf,
    config: PathBuf,
    receiver: Receiver,
    receiver_up: bool,
    truth: Truth,
    daemon: Option<Daemon>,
    runs: Vec<PathBuf>,
    run_start_scans: i64,
    seen_in_outbox: BTreeSet<String>,
    samples: Vec<Sample>,
    metrics_checks: usize,
    kills: usize,
    outages: usize,
    started: Instant,
}

fn soak_secs() -> u64 {
    std::env::var("M365_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

/// The chance of a SIGKILL after each recorded scan (`M365_SOAK_KILL_RATE`, default 0.08).
fn kill_rate() -> f64 {
    std::env::var("M365_SOAK_KILL_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|rate| (0.0..=1.0).contains(rate))
        .unwrap_or(0.08)
}

fn soak_seed() -> u64 {
    std::env::var("M365_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_keeps_every_transition_and_resolves_nothing_on_failed_sources() {
    let Some(tools) = harness::tools() else {
        return;
    };
    let seed = soak_seed();
    let secs = soak_secs();
    eprintln!("chaos soak: seed {seed} for {secs} s (replay with M365_SOAK_SEED={seed})");
    let mut soak = Soak::start(&tools, seed).await;
    let deadline = soak.started + Duration::from_secs(secs);
    let mut last_scans = chaos_support::scans(&soak.state);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        soak.observe().await;
        let scans = chaos_support::scans(&soak.state);
        if scans > last_scans {
            last_scans = scans;
            let half = soak.started.elapsed() > Duration::from_secs(secs / 2);
            soak.after_scan(half).await;
        }
    }
    soak.report_memory();
    let arrivals = soak.finish(&tools).await;
    soak.check(&arrivals);
}

impl Soak {
    async fn start(tools: &harness::Tools, seed: u64) -> Soak {
        let tenant = TenantFile::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/graph-sim/tests/fixtures/contoso.json"
        )))
        .unwrap();
        let sim = start(tenant, SimOptions::default()).await.unwrap();
        sim.set_faults(chaos::calm());
        let dir = tempfile::tempdir().unwrap();
        let certs = harness::make_certs(tools, dir.path());
        let receiver = Receiver::start(tools, Kind::RsyslogTcp, &dir.path().join("rx"), &certs);
        let state = dir.path().join("state.db");
        let config = write_config(dir.path(), &sim, &state, &receiver.address);
        let mut truth = Truth::default();
        for knob in Knob::ALL {
            truth.set(&sim, knob, false);
        }
        let mut soak = Soak {
            seed,
            rng: StdRng::seed_from_u64(seed),
            sim,
            dir,
            state,
            config,
            receiver,
            receiver_up: true,
            truth,
            daemon: None,
            runs: Vec::new(),
            run_start_scans: 0,
            seen_in_outbox: BTreeSet::new(),
            samples: Vec::new(),
            metrics_checks: 0,
            kills: 0,
            outages: 0,
            started: Instant::now(),
        };
        soak.spawn().await;
        soak
    }

    async fn spawn(&mut self) {
        let log = self.dir.path().join(format!("run-{}.log", self.runs.len()));
        self.runs.push(log.clone());
        self.run_start_scans = chaos_support::scans(&self.state);
        self.daemon = Some(Daemon::spawn(&self.config, log).await);
    }

    /// One look at the daemon: alive, outbox ids, memory, and now and then metrics = state.
    async fn observe(&mut self) {
        let Some(daemon) = self.daemon.as_mut() else {
            return;
        };
        daemon.assert_alive();
        self.seen_in_outbox
            .extend(chaos_support::outbox_ids(&self.state));
        if let Some(rss_kib) = daemon.rss_kib() {
            self.samples.push(Sample {
                at_secs: self.started.elapsed().as_secs(),
                run: self.runs.len(),
                scans_in_run: chaos_support::scans(&self.state) - self.run_start_scans,
                rss_kib,
            });
        }
        if self.samples.len() % 4 == 0 {
            match chaos_support::metrics_match_state(daemon.metrics, &self.state).await {
                Ok(true) => self.metrics_checks += 1,
                Ok(false) => {}
                Err(mismatch) => panic!("seed {}: {mismatch}", self.seed),
            }
        }
    }

    /// After a recorded scan: a tenant change, a new fault episode, and perhaps a receiver
    /// outage or return and a daemon kill (each forced once in the second half if not yet).
    async fn after_scan(&mut self, second_half: bool) {
        let flip = Knob::ALL[self.rng.gen_range(0..Knob::ALL.len())];
        for knob in Knob::ALL {
            if knob == flip || self.rng.gen_bool(0.3) {
                let on = self.rng.gen_bool(0.5);
                self.truth.set(&self.sim, knob, on);
            }
        }
        self.sim.set_faults(chaos::episode(&mut self.rng));
        let force = second_half && self.outages == 0;
        if force || self.rng.gen_bool(0.15) {
            if self.receiver_up {
                self.receiver.stop_graceful();
                self.outages += 1;
            } else {
                self.receiver.start_again();
            }
            self.receiver_up = !self.receiver_up;
        }
        if (second_half && self.kills == 0) || self.rng.gen_bool(kill_rate()) {
            if let Some(daemon) = self.daemon.take() {
                daemon.kill().await;
                self.kills += 1;
            }
            self.spawn().await;
        }
    }

    /// Faults off, receiver up, two more scans, outbox drained, SIGTERM; what arrived.
    async fn finish(&mut self, tools: &harness::Tools) -> Vec<Arrived> {
        self.sim.set_faults(chaos::calm());
        if !self.receiver_up {
            self.receiver.start_again();
            self.receiver_up = true;
        }
        let target = chaos_support::scans(&self.state) + 2;
        let state = self.state.clone();
        // A sink that failed through the receiver's outages backs off up to `backoff_max`
        // (60 s) before it tries again, so the drain may start a minute after the receiver is up.
        let limit = Duration::from_secs(180);
        daemon_support::wait_until_within("two calm scans and an empty outbox", limit, || {
            chaos_support::scans(&state) >= target && chaos_support::outbox_ids(&state).is_empty()
        })
        .await;
        self.observe().await;
        self.daemon.take().unwrap().stop().await;
        let committed: u64 = chaos_support::event_counts(&self.state).values().sum();
        self.receiver
            .wait_for(committed as usize, Duration::from_secs(30));
        arrivals::arrived(tools, self.dir.path(), &self.receiver)
    }

    fn check(&self, arrivals: &[Arrived]) {
        let seed = self.seed;
        for log in &self.runs {
            let text = std::fs::read_to_string(log).unwrap();
            assert!(
                !text.contains("panicked"),
                "seed {seed}: a panic in {}",
                log.display()
            );
        }
        let unique = delivery::first_arrivals(arrivals);
        let delivered =
            delivery::every_transition_arrived(&unique, &self.state, &self.seen_in_outbox)
                .and_then(|()| delivery::instances_agree_with_state(&unique, &self.state));
        if let Err(why) = delivered {
            panic!("seed {seed}: {why}");
        }
        self.check_truth(&unique);
        self.check_memory();
        self.report(arrivals, &unique);
    }

    /// No event contradicts the ground truth (`chaos_support/truth.rs`).
    fn check_truth(&self, unique: &[&Arrived]) {
        let mut previous: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        let mut failures = Vec::new();
        for e in unique {
            let key = (e.finding.as_str(), e.resource_id.as_str());
            let observed = Observed {
                finding: &e.finding,
                resource: &e.resource_id,
                action: &e.action,
                detected_ms: e.detected_ms,
                previous_ms: previous.insert(key, e.detected_ms),
            };
            if let Err(why) = self.truth.judge(&observed, SCAN_TIMEOUT_MS) {
                failures.push(format!(
                    "{} {} {}: {why}",
                    e.finding, e.resource_id, e.action
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "seed {}: events against the ground truth: {failures:#?}",
            self.seed
        );
    }

    /// After warm-up, resident memory stays within the bound in every run, and within the
    /// looser bound over all runs.
    fn check_memory(&self) {
        let warm: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.scans_in_run >= WARM_UP_SCANS)
            .collect();
        let spread = |samples: &[&Sample]| -> Option<(u64, u64)> {
            let min = samples.iter().map(|s| s.rss_kib).min()?;
            let max = samples.iter().map(|s| s.rss_kib).max()?;
            Some((min, max))
        };
        let runs: BTreeSet<usize> = warm.iter().map(|s| s.run).collect();
        for run in runs {
            let of_run: Vec<&Sample> = warm.iter().copied().filter(|s| s.run == run).collect();
            if let Some((min, max)) = spread(&of_run) {
                assert!(
                    max - min <= RSS_BOUND_KIB,
                    "seed {}: resident memory of run {run} after warm-up from {min} to {max} KiB",
                    self.seed
                );
            }
        }
        if let Some((min, max)) = spread(&warm) {
            assert!(
                max - min <= RSS_ACROSS_RUNS_BOUND_KIB,
                "seed {}: resident memory over all runs after warm-up from {min} to {max} KiB",
                self.seed
            );
        }
    }

    fn report(&self, arrivals: &[Arrived], unique: &[&Arrived]) {
        let resolved = unique.iter().filter(|e| e.action == "resolved").count();
        eprintln!(
            "chaos soak seed {}: {} s, {} scans, {} runs ({} kills), {} receiver outages, {} tenant changes, \
             {} metrics checks, {} events ({} resolved), {} arrivals",
            self.seed,
            self.started.elapsed().as_secs(),
            chaos_support::scans(&self.state),
            self.runs.len(),
            self.kills,
            self.outages,
            self.truth.changes(),
            self.metrics_checks,
            unique.len(),
            resolved,
            arrivals.len()
        );
        eprintln!(
            "scans (status, count, mean s): {:?}",
            chaos_support::scan_summary(&self.state)
        );
    }

    /// Resident memory per run after warm-up, and a sample every ten seconds.
    fn report_memory(&self) {
        for run in 1..=self.runs.len() {
            let warm: Vec<u64> = self
                .samples
                .iter()
                .filter(|s| s.run == run && s.scans_in_run >= WARM_UP_SCANS)
                .map(|s| s.rss_kib)
                .collect();
            if let (Some(min), Some(max)) = (warm.iter().min(), warm.iter().max()) {
                eprintln!(
                    "rss of run {run} after warm-up: {min} to {max} KiB over {} samples",
                    warm.len()
                );
            }
        }
        for s in self.samples.iter().step_by(40) {
            eprintln!(
                "rss at {:>5} s: run {}, scan {:>3} of the run, {} KiB",
                s.at_secs, s.run, s.scans_in_run, s.rss_kib
            );
        }
    }
}

fn write_config(dir: &Path, sim: &SimHandle, state: &Path, receiver: &str) -> PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    // Every stored per-user read is due at once, so the inbox rule's changes are read; the
    // sim's reports bucket is off (chaos.rs), so the agent's own pacer is opened as wide.
    let scan = format!(
        "interval = \"1s\"\ntimeout = \"{SCAN_TIMEOUT_MS}ms\"\nfirst_scan = \"emit\"\n\
         per_user_max_age = \"1ms\"\nreports_per_10s = 100"
    );
    let sinks = format!(
        "[[sinks]]\nname = \"siem\"\ntype = \"syslog\"\ntransport = \"tcp\"\naddress = \"{receiver}\"\n\
         format = \"rfc5424\"\nframing = \"octet-counting\"\n"
    );
    daemon_support::write_sim_config_with_sinks(
        dir,
        "config.toml",
        sim,
        (&secret, state),
        (&scan, &sinks),
    )
}
