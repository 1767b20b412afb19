//! The real daemon, collector and `/metrics` listener against graph-sim, across config
//! reloads:
//! - a tenant removed from the config leaves nothing behind: no series of it on `/metrics`
//!   (its sweep's data age would otherwise grow until the stale-coverage alert paged for a
//!   tenant nobody scans), no held registration report and no token cache (added back, it
//!   reads the report again and asks for a token);
//! - a reloaded `[scan] per_user_max_age` rules the next sweep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod daemon_support;

use daemon_support::{
    get, graph_sim_config, samples, wait_until_within, wide_reports, WIDE_REPORTS,
};
use graph_sim::{start, SimOptions};
use m365_posture::config::Config;
use m365_posture::metrics::Metrics;
use m365_posture::state::Store;
use std::time::Duration;

const REPORT: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
const TOKEN: &str = "/{tenant}/oauth2/v2.0/token";
const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
/// Fewer method reads a window than contoso needs: its sweep stays pending after a scan.
const REPORTS_PER_10S: u32 = 10;

fn scans(metrics: &Metrics, tenant: &str) -> u64 {
    ["ok", "partial", "failed"]
        .iter()
        .map(|s| metrics.scans.with_label_values(&[tenant, s]).get())
        .sum()
}

async fn series_of(addr: std::net::SocketAddr, tenant: &str) -> Vec<String> {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let needle = format!("tenant=\"{tenant}\"");
    samples(&body)
        .into_keys()
        .filter(|key| key.contains(&needle))
        .collect()
}

fn with_tenants(base: &Config, tenants: &[&m365_posture::config::TenantConfig]) -> Config {
    let mut config = base.clone();
    config.tenants = tenants.iter().map(|t| (*t).clone()).collect();
    config
}

#[tokio::test]
async fn a_removed_tenant_has_no_series_and_no_held_report_left() {
    let mut contoso_file = graph_sim::generate(60, 11);
    contoso_file.faults.throttle.reports_per_10s = REPORTS_PER_10S;
    let contoso_sim = start(contoso_file, SimOptions::default()).await.unwrap();
    let fabrikam_sim = start(graph_sim::generate(10, 12), SimOptions::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fabrikam_dir = tempfile::tempdir().unwrap();
    let mut base = graph_sim_config(&contoso_sim, dir.path(), Duration::from_secs(3600));
    base.scan.reports_per_10s = REPORTS_PER_10S;
    base.scan.timeout = Duration::from_secs(2);
    // A continuing scan would come an hour later: contoso's sweep stays pending, its report held.
    base.scan.sweep_pause = Duration::from_secs(3600);
    let contoso = base.tenants[0].clone();
    let mut fabrikam = graph_sim_config(
        &fabrikam_sim,
        fabrikam_dir.path(),
        Duration::from_secs(3600),
    )
    .tenants[0]
        .clone();
    fabrikam.name = "fabrikam".into();

    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let metrics = Metrics::new().unwrap();
    let scanner = m365_posture::commands::run::graph_scanner(&base, &store, &metrics).unwrap();
    let daemon = m365_posture::daemon::Daemon::start(base.clone(), store, metrics.clone(), scanner)
        .await
        .unwrap();
    let addr = daemon.metrics_addr;
    // Added alone, each tenant scans at once (the stagger spreads only tenants added together).
    wait_until_within("contoso's first scan", Duration::from_secs(30), || {
        scans(&metrics, "contoso") >= 1
    })
    .await;
    daemon
        .apply_config(with_tenants(&base, &[&contoso, &fabrikam]))
        .unwrap();
    wait_until_within("fabrikam's first scan", Duration::from_secs(30), || {
        scans(&metrics, "fabrikam") >= 1
    })
    .await;
    let pending = metrics
        .sweep_users
        .with_label_values(&["contoso", "auth_methods", "pending"])
        .get();
    assert!(pending > 0, "contoso's sweep is not pending: {pending}");
    assert!(series_of(addr, "contoso")
        .await
        .iter()
        .any(|key| key.starts_with("m365_posture_per_user_oldest_read_timestamp_seconds")));
    assert_eq!(contoso_sim.stats().total_to(REPORT), 1);

    daemon
        .apply_config(with_tenants(&base, &[&fabrikam]))
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    let mut left = series_of(addr, "contoso").await;
    while !left.is_empty() && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = series_of(addr, "contoso").await;
    }
    assert!(left.is_empty(), "series of the removed tenant: {left:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = series_of(addr, "contoso").await;
    assert!(
        back.is_empty(),
        "series of the removed tenant came back: {back:?}"
    );
    let kept = series_of(addr, "fabrikam").await;
    assert!(
        kept.iter()
            .any(|key| key.starts_with("m365_posture_sweep_users")),
        "fabrikam lost its series: {kept:?}"
    );

    // Back in the config, within the hour its report was read and the lifetime of its
    // token: it reads the report again, with a new token.
    let tokens = contoso_sim.stats().total_to(TOKEN);
    daemon
        .apply_config(with_tenants(&base, &[&fabrikam, &contoso]))
        .unwrap();
    wait_until_within(
        "contoso's scan after it is back",
        Duration::from_secs(30),
        || scans(&metrics, "contoso") >= 1,
    )
    .await;
    assert_eq!(
        contoso_sim.stats().total_to(REPORT),
        2,
        "the report held for the removed tenant was reused"
    );
    assert_eq!(
        contoso_sim.stats().total_to(TOKEN),
        tokens + 1,
        "the removed tenant's token cache was reused"
    );
    daemon.shutdown(Duration::from_secs(5)).await;
    contoso_sim.shutdown().await;
    fabrikam_sim.shutdown().await;
}

#[tokio::test]
async fn a_reloaded_per_user_max_age_rules_the_next_sweep() {
    let mut tenant = graph_sim::generate(20, 13);
    tenant.faults = wide_reports(tenant.faults);
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = graph_sim_config(&sim, dir.path(), Duration::from_millis(200));
    config.scan.reports_per_10s = WIDE_REPORTS;
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let metrics = Metrics::new().unwrap();
    let scanner = m365_posture::commands::run::graph_scanner(&config, &store, &metrics).unwrap();
    let daemon =
        m365_posture::daemon::Daemon::start(config.clone(), store, metrics.clone(), scanner)
            .await
            .unwrap();
    wait_until_within("two scans", Duration::from_secs(30), || {
        scans(&metrics, "contoso") >= 2
    })
    .await;
    // Everyone was read in the first scan and is younger than 7 days: nobody is due.
    let before = sim.stats().total_to(METHODS);
    let scanned = scans(&metrics, "contoso");
    wait_until_within("two more scans", Duration::from_secs(30), || {
        scans(&metrics, "contoso") >= scanned + 2
    })
    .await;
    assert_eq!(sim.stats().total_to(METHODS), before, "reads not due");
    assert!(before > 0, "the tenant has users with methods to read");

    config.scan.per_user_max_age = Duration::from_millis(1);
    daemon.apply_config(config).unwrap();
    let scanned = scans(&metrics, "contoso");
    wait_until_within(
        "two scans after the reload",
        Duration::from_secs(30),
        || scans(&metrics, "contoso") >= scanned + 2,
    )
    .await;
    assert!(
        sim.stats().total_to(METHODS) >= 2 * before,
        "every stored read is older than the reloaded age: read again"
    );
    daemon.shutdown(Duration::from_secs(5)).await;
    sim.shutdown().await;
}
