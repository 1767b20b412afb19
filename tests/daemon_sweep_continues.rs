//! A daemon scan that continues the per-user sweep (60 s after the last, not an interval
//! later) reuses the registration report the sweep started from instead of reading every page
//! again in the reports bucket its method reads share; the report is read again once the sweep
//! is current or `scan.interval` has passed. One snapshot source across the scans, as in one
//! daemon process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::SimHandle;
use m365_posture::collect::source::GraphSource;
use m365_posture::config::Config;
use m365_posture::scan::{CollectedSnapshot, SnapshotSource};
use m365_posture::snapshot::SectionName;
use m365_posture::state::Store;
use std::time::Duration;
use support::*;
use tokio_util::sync::CancellationToken;

const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
const REPORT: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";

fn daemon_source(config: &Config, files: &Files) -> GraphSource {
    let store = Store::open(&files.dir.path().join("state.db")).unwrap();
    GraphSource::new(context(config.clone()), Some(store))
}

async fn scan(source: &GraphSource, config: &Config) -> CollectedSnapshot {
    source
        .collect(&config.tenants[0], &CancellationToken::new())
        .await
}

fn counts(sim: &SimHandle) -> [u64; 2] {
    let stats = sim.stats();
    [REPORT, METHODS].map(|t| stats.total_to(t))
}

/// Graph's bucket (here 6 per 10 s) and a sweep that may send reads for 3 s: each scan reads
/// at most one window's worth of methods.
async fn cut_short(files: &Files) -> (SimHandle, Config) {
    let (sim, mut config) = reports_bucket_tenant(20, 6, files).await;
    config.scan.timeout = Duration::from_secs(4);
    (sim, config)
}

#[tokio::test]
async fn a_scan_that_continues_the_sweep_reuses_the_report_it_started_from() {
    let files = Files::new();
    let (sim, config) = cut_short(&files).await;
    let source = daemon_source(&config, &files);
    let first = scan(&source, &config).await;
    assert!(first.sweep_pending, "the tenant must outlast one window");
    let [reports, methods] = counts(&sim);
    assert_eq!(reports, 1, "one page");
    let read_at = first.snapshot.read_at[&SectionName::RegistrationDetails];

    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let second = scan(&source, &config).await;
    let [reports_after, methods_after] = counts(&sim);
    assert_eq!(
        reports_after, 1,
        "the report is not read again within the interval"
    );
    assert!(
        methods_after > methods,
        "the sweep went on from the held report"
    );
    assert_eq!(
        second.snapshot.read_at[&SectionName::RegistrationDetails],
        read_at,
        "the checks' data age is the report's, not this scan's"
    );
    assert_eq!(
        second.snapshot.registration_details.as_ref().unwrap().len(),
        first.snapshot.registration_details.as_ref().unwrap().len()
    );
}

#[tokio::test]
async fn the_report_is_read_again_once_the_sweep_is_current() {
    let files = Files::new();
    let (sim, config) = reports_bucket_tenant(20, 1_000, &files).await;
    let source = daemon_source(&config, &files);
    let first = scan(&source, &config).await;
    assert!(!first.sweep_pending);
    let second = scan(&source, &config).await;
    assert!(!second.sweep_pending);
    assert_eq!(
        counts(&sim)[0],
        2,
        "a scan an interval later reads the report"
    );
}

#[tokio::test]
async fn the_report_is_read_again_once_the_interval_has_passed() {
    let files = Files::new();
    let (sim, mut config) = cut_short(&files).await;
    config.tenants[0].interval = Duration::from_secs(1);
    let source = daemon_source(&config, &files);
    let first = scan(&source, &config).await;
    assert!(first.sweep_pending);
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let _ = scan(&source, &config).await;
    assert_eq!(counts(&sim)[0], 2, "older than the interval: read again");
}
