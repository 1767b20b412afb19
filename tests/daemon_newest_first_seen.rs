//! `m365_posture_findings_newest_first_seen_timestamp_seconds`, what the new-finding alert reads:
//! present with the first scan's time as soon as the first scan after start commits (before any
//! Prometheus scrape, so no counter has to be seen at 0 first), unchanged across a restart of
//! the daemon on the same state file, and moved forward by a new instance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod daemon_support;

use daemon_support::*;
use graph_sim::{start, CollectionName, Mutation, SimHandle, SimOptions, TenantFile};
use m365_posture::config::Config;
use m365_posture::daemon::Daemon;
use m365_posture::metrics::Metrics;
use m365_posture::state::Store;
use std::path::Path;
use std::time::Duration;

const ADELE: &str = "a1000000-0000-4000-8000-000000000001";
const SPF: &str = r#"m365_posture_findings_newest_first_seen_timestamp_seconds{category="email_admin_settings",finding="domain.spf_allows_any",severity="high",tenant="contoso"}"#;
const DISABLED: &str = r#"m365_posture_findings_newest_first_seen_timestamp_seconds{category="user_account_settings",finding="user.account_disabled",severity="low",tenant="contoso"}"#;

fn sim_config(sim: &SimHandle, dir: &Path) -> Config {
    graph_sim_config(sim, dir, Duration::from_secs(3600))
}

/// Starts the daemon on `cfg`, waits for its first committed scan and returns the daemon with
/// the two samples of interest (the high SPF finding, the low disabled-account finding).
async fn first_scan(cfg: &Config) -> (Daemon, f64, f64) {
    let store = Store::open(&cfg.state.path).unwrap();
    let metrics = Metrics::new().unwrap();
    let scanner = m365_posture::commands::run::graph_scanner(cfg, &store, &metrics).unwrap();
    let daemon = Daemon::start(cfg.clone(), store, metrics.clone(), scanner)
        .await
        .unwrap();
    wait_until("the first scan", || {
        metrics.scans.with_label_values(&["contoso", "ok"]).get() >= 1
    })
    .await;
    let (_, body) = get(daemon.metrics_addr, "/metrics").await;
    let m = samples(&body);
    (daemon, m[SPF], m[DISABLED])
}

fn now_seconds() -> f64 {
    #[allow(clippy::disallowed_methods)] // the test compares with the wall clock
    let now = chrono::Utc::now();
    now.timestamp_millis() as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_first_seen_is_there_at_the_first_scan_and_survives_a_restart() {
    let tenant = TenantFile::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap();
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = sim_config(&sim, dir.path());

    let before = now_seconds();
    let (daemon, spf, disabled) = first_scan(&cfg).await;
    let after = now_seconds();
    assert!(
        (before - 1.0..=after).contains(&spf),
        "{spf} not in {before}..{after}"
    );
    assert!((before - 1.0..=after).contains(&disabled));
    daemon.shutdown(Duration::from_secs(5)).await;

    // A restart on the same state file: the same instances, the same first-seen times.
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: ADELE.to_owned(),
        changes: serde_json::json!({ "accountEnabled": false }),
    })
    .unwrap();
    let restarted = now_seconds();
    let (daemon, spf_again, disabled_again) = first_scan(&cfg).await;
    assert_eq!(
        spf_again, spf,
        "a restart does not make the SPF finding new"
    );
    // A new instance (Adele disabled) moves its finding's value to its own first-seen time.
    assert!(
        disabled_again >= restarted - 1.0 && disabled_again > disabled,
        "{disabled_again} vs {disabled} (restart at {restarted})"
    );
    daemon.shutdown(Duration::from_secs(5)).await;
}
