//! A 429 storm in the identity reports bucket, against the real daemon binary: every
//! authentication-method read and half the requests for the registration report (the same
//! bucket) answer 429 (`Retry-After`), as Graph does when the bucket of
//! <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits>
//! is spent. The sweep makes no progress on methods while it lasts, but no scan fails, no
//! method instance resolves, and once the storm is over the sweep reads the methods again and
//! the instances stand as before.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod daemon_support;

use graph_sim::{start, PathFault, SimHandle, SimOptions};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const REPORT: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
const METHOD_FINDINGS: [&str; 4] = [
    "user.fido2_unattested",
    "user.whfb_weak_key",
    "user.tap_reusable",
    "user.tap_long_lived",
];

fn query<T: rusqlite::types::FromSql>(state: &Path, sql: &str) -> T {
    let conn = rusqlite::Connection::open(state).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Open instances of the authentication-method findings: (finding, resource id).
fn open_method_instances(state: &Path) -> BTreeSet<(String, String)> {
    let conn = rusqlite::Connection::open(state).unwrap();
    let mut stmt = conn
        .prepare("SELECT finding, resource_id FROM instances WHERE resolved_at_ms IS NULL")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    rows.map(Result::unwrap)
        .filter(|(finding, _)| METHOD_FINDINGS.contains(&finding.as_str()))
        .collect()
}

fn scans(state: &Path) -> i64 {
    daemon_support::recorded_scans(state)
}

/// The newest successful method read in the state file (ms since the epoch).
fn newest_method_read(state: &Path) -> i64 {
    query(
        state,
        "SELECT COALESCE(MAX(read_at_ms), 0) FROM per_user_reads WHERE kind = 'auth_methods'",
    )
}

async fn wait_for_scans(state: &Path, more: i64, log: &Path) {
    let target = scans(state) + more;
    for _ in 0..3000 {
        if scans(state) >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "the daemon recorded no {more} more scans; its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn storm(sim: &SimHandle, on: bool) {
    sim.mutate(|t| {
        if on {
            let fault = PathFault {
                status: Some(429),
                rate: 1.0,
                retry_after_secs: Some(0.2),
                ..PathFault::default()
            };
            t.faults.paths.insert(METHODS.into(), fault.clone());
            // Half the report's requests: some scans read it and throttle on the method
            // reads it calls due, others fall back to every user.
            let report = PathFault { rate: 0.5, ..fault };
            t.faults.paths.insert(REPORT.into(), report);
        } else {
            t.faults.paths.remove(METHODS);
            t.faults.paths.remove(REPORT);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_in_the_reports_bucket_fails_no_scan_and_resolves_nothing() {
    let mut tenant = graph_sim::generate(40, 7);
    tenant.faults.throttle.reports_per_10s = 1_000;
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    // Every user's methods are due again after 1 s, so every scan of the storm tries them.
    let scan = "interval = \"200ms\"\ntimeout = \"20s\"\nreports_per_10s = 1000\n\
                per_user_max_age = \"1s\"";
    let config =
        daemon_support::write_sim_config(dir.path(), "config.toml", &sim, (&secret, &state), scan);
    let log = dir.path().join("daemon.log");
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    wait_for_scans(&state, 1, &log).await;
    let before = open_method_instances(&state);
    assert!(!before.is_empty(), "the tenant must have method findings");
    let first_scans = scans(&state);

    storm(&sim, true);
    // A scan already under way may still read methods; wait for it to end.
    wait_for_scans(&state, 1, &log).await;
    let storm_started = newest_method_read(&state);
    let throttled_before = sim.stats().throttled + sim.stats().faults_injected;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let storm_scans = scans(&state);
    wait_for_scans(&state, 3, &log).await;
    assert!(
        sim.stats().throttled + sim.stats().faults_injected > throttled_before,
        "the storm met method reads"
    );
    assert_eq!(
        newest_method_read(&state),
        storm_started,
        "no method read got through the storm"
    );
    let failed: i64 = query(
        &state,
        &format!("SELECT COUNT(*) FROM scans WHERE status = 'failed' AND id > {first_scans}"),
    );
    assert_eq!(failed, 0, "a throttled sweep fails no scan");
    assert!(scans(&state) >= storm_scans + 3);
    assert_eq!(
        open_method_instances(&state),
        before,
        "a throttled read resolves nothing"
    );

    storm(&sim, false);
    let calm = newest_method_read(&state);
    for _ in 0..500 {
        if newest_method_read(&state) > calm {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        newest_method_read(&state) > calm,
        "after the storm the sweep reads methods again"
    );
    wait_for_scans(&state, 1, &log).await;
    assert_eq!(open_method_instances(&state), before);
    let resolved: i64 = query(
        &state,
        "SELECT COUNT(*) FROM instances WHERE resolved_at_ms IS NOT NULL",
    );
    assert_eq!(resolved, 0, "the tenant never changed");
    daemon.start_kill().unwrap();
    let _ = daemon.wait().await;
}
