//! The real daemon (scheduler, collector, state file) on a tenant whose per-user sweep does not
//! fit in one scan: the next scan starts `scan.sweep_pause` after the last, not an interval
//! later, every continuing scan reuses the registration report, and once every user is current
//! the daemon waits for the interval again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod daemon_support;

use daemon_support::{finished, graph_sim_config, wait_until_within};
use graph_sim::{start, SimOptions};
use m365_posture::metrics::Metrics;
use m365_posture::state::Store;
use std::time::Duration;

const REPORT: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
/// The reports bucket on both sides: the first window holds fewer method reads than the tenant
/// needs, and it refills 10 s later.
const REPORTS_PER_10S: u32 = 10;

fn pending(metrics: &Metrics) -> i64 {
    ["auth_methods", "calendar", "rules"]
        .iter()
        .map(|s| {
            metrics
                .sweep_users
                .with_label_values(&["contoso", s, "pending"])
                .get()
        })
        .sum()
}

#[tokio::test]
async fn a_sweep_longer_than_a_scan_continues_after_the_pause_and_reads_the_report_once() {
    let mut tenant = graph_sim::generate(60, 11);
    tenant.faults.throttle.reports_per_10s = REPORTS_PER_10S;
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = graph_sim_config(&sim, dir.path(), Duration::from_secs(3600));
    cfg.scan.reports_per_10s = REPORTS_PER_10S;
    // Per-user reads may be sent for three quarters of the timeout: 1.5 s a scan.
    cfg.scan.timeout = Duration::from_secs(2);
    cfg.scan.sweep_pause = Duration::from_millis(500);
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let metrics = Metrics::new().unwrap();
    let scanner = m365_posture::commands::run::graph_scanner(&cfg, &store, &metrics).unwrap();
    let daemon = m365_posture::daemon::Daemon::start(cfg, store, metrics.clone(), scanner)
        .await
        .unwrap();

    wait_until_within("a first scan", Duration::from_secs(30), || {
        finished(&metrics) >= 1
    })
    .await;
    assert!(
        pending(&metrics) > 0,
        "the first scan did not cover everyone"
    );
    // An hour's interval: only the sweep's pause brings scans before the bucket refills.
    wait_until_within("every user current", Duration::from_secs(60), || {
        pending(&metrics) == 0 && finished(&metrics) >= 3
    })
    .await;
    // The scan that read the last users may still be finishing: let it end.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let scans = finished(&metrics);
    let stats = sim.stats();
    assert_eq!(
        stats.total_to(REPORT),
        1,
        "continuing scans reuse the report ({scans} scans)"
    );
    assert!(stats.total_to(METHODS) > u64::from(REPORTS_PER_10S));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        finished(&metrics),
        scans,
        "with every user current the daemon waits for the interval"
    );
    daemon.shutdown(Duration::from_secs(5)).await;
    sim.shutdown().await;
}
