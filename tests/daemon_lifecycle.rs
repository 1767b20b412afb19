//! The daemon end to end with a scripted scanner: finding lifecycle across scans, outages,
//! suppressions, severity overrides, metrics over committed state, restart, deadlines,
//! shutdown and `promtool check metrics`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod daemon_support;

use daemon_support::*;
use m365_posture::config::{Config, Suppression};
use m365_posture::daemon::Daemon;
use m365_posture::findings::{FindingId, Severity};
use m365_posture::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

const AD: FindingId = FindingId::AccountDisabled;
const AD_GAUGE: &str =
    r#"m365_posture_findings{category="user_account_settings",finding="user.account_disabled""#;

fn finished(metrics: &Metrics, tenant: &str) -> u64 {
    ["ok", "partial", "failed"]
        .iter()
        .map(|s| metrics.scans.with_label_values(&[tenant, s]).get())
        .sum()
}

/// Waits for a scan that started after this call to finish.
async fn next_scan(metrics: &Metrics, scanner: &ScriptedScanner, tenant: &str) {
    let target = u64::try_from(scanner.started(tenant)).unwrap() + 1;
    wait_until("a fresh scan", || finished(metrics, tenant) >= target).await;
}

async fn start(config: Config, scanner: &ScriptedScanner) -> (Daemon, Metrics) {
    let metrics = Metrics::new().unwrap();
    let store = m365_posture::state::Store::open(&config.state.path).unwrap();
    let daemon = Daemon::start(config, store, metrics.clone(), Arc::new(scanner.clone()))
        .await
        .unwrap();
    (daemon, metrics)
}

async fn scrape(daemon: &Daemon) -> std::collections::BTreeMap<String, f64> {
    let (status, body) = get(daemon.metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    samples(&body)
}

fn ad(ids: &[&str]) -> Script {
    let mut script = Script::default();
    script
        .findings
        .insert(AD, ids.iter().map(|s| (*s).to_owned()).collect());
    script
}

fn events(state: &std::path::Path) -> Vec<(String, String)> {
    outbox(state)
        .into_iter()
        .map(|(_, action, _, resource)| (action, resource))
        .collect()
}

fn pair(action: &str, resource: &str) -> (String, String) {
    (action.to_owned(), resource.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_resolved_reopened_and_failures_resolve_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set("contoso", ad(&["u1", "u2"]));
    let (daemon, metrics) = start(
        config(&state, &["contoso"], Duration::from_millis(50)),
        &scanner,
    )
    .await;

    next_scan(&metrics, &scanner, "contoso").await;
    assert_eq!(events(&state), vec![pair("new", "u1"), pair("new", "u2")]);
    let m = scrape(&daemon).await;
    assert_eq!(
        sum(&m, AD_GAUGE, &[r#"severity="low""#, r#"tenant="contoso""#]),
        2.0
    );
    assert_eq!(
        m[r#"m365_posture_findings{category="third_party_apps",finding="app.disabled_by_microsoft",severity="low",tenant="contoso"}"#],
        0.0
    );
    assert_eq!(m[r#"m365_posture_scan_success{tenant="contoso"}"#], 1.0);
    assert_eq!(
        m[r#"m365_posture_events_total{action="new",finding="user.account_disabled",severity="low",tenant="contoso"}"#],
        2.0
    );

    scanner.set("contoso", ad(&["u2"]));
    next_scan(&metrics, &scanner, "contoso").await;
    assert_eq!(events(&state)[2..], [pair("resolved", "u1")]);
    let good = scrape(&daemon).await;
    let last_success = good[r#"m365_posture_last_success_timestamp_seconds{tenant="contoso"}"#];

    // A Graph outage across several scans resolves nothing and keeps the counts.
    scanner.edit("contoso", |s| {
        s.outage = true;
        s.findings.clear();
    });
    next_scan(&metrics, &scanner, "contoso").await;
    next_scan(&metrics, &scanner, "contoso").await;
    let m = scrape(&daemon).await;
    assert_eq!(m[r#"m365_posture_scan_success{tenant="contoso"}"#], 0.0);
    assert_eq!(
        m[r#"m365_posture_last_success_timestamp_seconds{tenant="contoso"}"#],
        last_success
    );
    assert_eq!(sum(&m, AD_GAUGE, &[]), 1.0);
    assert_eq!(events(&state).len(), 3);

    // A 403 on the one source of the check, across scans, resolves nothing either.
    scanner.set(
        "contoso",
        Script {
            skipped: vec![AD],
            ..Script::default()
        },
    );
    next_scan(&metrics, &scanner, "contoso").await;
    next_scan(&metrics, &scanner, "contoso").await;
    let m = scrape(&daemon).await;
    assert_eq!(
        m[r#"m365_posture_check_success{finding="user.account_disabled",tenant="contoso"}"#],
        0.0
    );
    assert_eq!(
        m[r#"m365_posture_check_success{finding="user.not_legal_adult",tenant="contoso"}"#],
        1.0
    );
    assert_eq!(sum(&m, AD_GAUGE, &[]), 1.0);
    assert_eq!(events(&state).len(), 3);

    // Back: u1 reopens as a new event.
    scanner.set("contoso", ad(&["u1", "u2"]));
    next_scan(&metrics, &scanner, "contoso").await;
    assert_eq!(events(&state)[3..], [pair("new", "u1")]);
    daemon.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppression_hides_until_expiry_and_override_shows() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set("contoso", ad(&["u1"]));
    let mut cfg = config(&state, &["contoso"], Duration::from_millis(50));
    let expires = m365_posture::scan::clock_now() + chrono::Duration::milliseconds(1500);
    cfg.suppressions.push(Suppression {
        finding: AD,
        tenant: None,
        resource_id: Some("u3".into()),
        resource_name: None,
        reason: "service account".into(),
        owner: "it".into(),
        expires: Some(expires),
    });
    let (daemon, metrics) = start(cfg.clone(), &scanner).await;
    next_scan(&metrics, &scanner, "contoso").await;
    scanner.set("contoso", ad(&["u1", "u3"]));
    next_scan(&metrics, &scanner, "contoso").await;
    let m = scrape(&daemon).await;
    assert_eq!(sum(&m, AD_GAUGE, &[]), 1.0);
    assert_eq!(
        sum(
            &m,
            "m365_posture_findings_suppressed{",
            &["user.account_disabled"]
        ),
        1.0
    );
    assert_eq!(events(&state), vec![pair("new", "u1")]);

    wait_until("the suppression to expire", || {
        m365_posture::scan::clock_now() > expires
    })
    .await;
    next_scan(&metrics, &scanner, "contoso").await;
    assert_eq!(events(&state), vec![pair("new", "u1"), pair("new", "u3")]);
    let m = scrape(&daemon).await;
    assert_eq!(sum(&m, AD_GAUGE, &[]), 2.0);
    assert_eq!(
        sum(
            &m,
            "m365_posture_findings_suppressed{",
            &["user.account_disabled"]
        ),
        0.0
    );

    // Severity override through a reload.
    cfg.severity_overrides.insert(AD, Severity::High);
    daemon.apply_config(cfg).unwrap();
    scanner.set("contoso", ad(&["u1", "u3", "u4"]));
    next_scan(&metrics, &scanner, "contoso").await;
    let m = scrape(&daemon).await;
    assert_eq!(sum(&m, AD_GAUGE, &[r#"severity="high""#]), 3.0);
    assert_eq!(sum(&m, AD_GAUGE, &[r#"severity="low""#]), 0.0);
    let conn = rusqlite::Connection::open(&state).unwrap();
    let body: String = conn
        .query_row(
            "SELECT event FROM outbox ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        body.contains(r#""severity":"high""#) && body.contains(r#""resource_id":"u4""#),
        "{body}"
    );
    daemon.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_metrics_and_emits_no_second_new() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set("contoso", ad(&["u1", "u2"]));
    let cfg = config(&state, &["contoso"], Duration::from_millis(50));
    let (daemon, metrics) = start(cfg.clone(), &scanner).await;
    next_scan(&metrics, &scanner, "contoso").await;
    next_scan(&metrics, &scanner, "contoso").await;
    // Hold the next scan open so nothing commits between the scrape and the stop.
    scanner.edit("contoso", |s| s.delay = Duration::from_secs(30));
    let hold = scanner.started("contoso") + 1;
    wait_until("a held scan", || scanner.started("contoso") == hold).await;
    let before_stop = scrape(&daemon).await;
    daemon.shutdown(Duration::from_secs(5)).await;
    let before = {
        let store = m365_posture::state::Store::open(&state).unwrap();
        (
            store.check_summaries("contoso").unwrap(),
            store.event_counts().unwrap(),
        )
    };
    let events_before = events(&state);

    // The restarted daemon serves the same values before its first scan commits...
    scanner.edit("contoso", |s| s.delay = Duration::from_millis(700));
    let (daemon, metrics) = start(cfg, &scanner).await;
    let restarted = scrape(&daemon).await;
    // Process-local counters (scans, delivery attempts) restart from zero by design; every
    // gauge and the events counter come from the state file.
    let stable = |m: &std::collections::BTreeMap<String, f64>| {
        let local = [
            "config_last_reload",
            "scans_total",
            "events_failed_total",
            "events_delivered_total",
            "outbox_full_total",
        ];
        m.iter()
            .filter(|(k, _)| !local.iter().any(|l| k.contains(l)))
            .map(|(k, v)| (k.clone(), *v))
            .collect::<Vec<_>>()
    };
    assert!(restarted
        .keys()
        .any(|k| k.starts_with("m365_posture_findings{")));
    assert_eq!(stable(&before_stop), stable(&restarted));
    // ...and after it, nothing is announced twice.
    next_scan(&metrics, &scanner, "contoso").await;
    let after_scan = scrape(&daemon).await;
    let drop_time = |v: Vec<(String, f64)>| {
        v.into_iter()
            .filter(|(k, _)| !k.contains("timestamp") && !k.contains("duration"))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        drop_time(stable(&restarted)),
        drop_time(stable(&after_scan))
    );
    assert_eq!(events(&state), events_before);
    let store = m365_posture::state::Store::open(&state).unwrap();
    assert_eq!(store.check_summaries("contoso").unwrap(), before.0);
    assert_eq!(store.event_counts().unwrap(), before.1);
    daemon.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_fails_the_scan_and_a_slow_tenant_does_not_delay_another() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set(
        "slow",
        Script {
            delay: Duration::from_secs(30),
            ..ad(&["s1"])
        },
    );
    scanner.set("fast", ad(&["f1"]));
    let mut cfg = config(&state, &["slow", "fast"], Duration::from_millis(50));
    cfg.scan.timeout = Duration::from_millis(800);
    let (daemon, metrics) = start(cfg, &scanner).await;
    wait_until("a failed slow scan", || {
        metrics.scans.with_label_values(&["slow", "failed"]).get() >= 1
    })
    .await;
    assert!(finished(&metrics, "fast") >= 3, "fast tenant was delayed");
    let m = scrape(&daemon).await;
    assert_eq!(m[r#"m365_posture_scan_success{tenant="slow"}"#], 0.0);
    assert_eq!(m[r#"m365_posture_scan_success{tenant="fast"}"#], 1.0);
    assert!(!m
        .keys()
        .any(|k| k.starts_with("m365_posture_findings{") && k.contains(r#"tenant="slow""#)));
    assert_eq!(events(&state), vec![pair("new", "f1")]);
    daemon.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_a_scan_commits_nothing_and_is_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set(
        "contoso",
        Script {
            delay: Duration::from_secs(30),
            ..ad(&["u1"])
        },
    );
    let (daemon, _metrics) = start(
        config(&state, &["contoso"], Duration::from_secs(60)),
        &scanner,
    )
    .await;
    wait_until("the scan to start", || scanner.started("contoso") == 1).await;
    let (status, _) = get(daemon.metrics_addr, "/readyz").await;
    assert_eq!(status, 200);
    let began = std::time::Instant::now();
    daemon.shutdown(Duration::from_secs(5)).await;
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "took {:?}",
        began.elapsed()
    );
    let store = m365_posture::state::Store::open(&state).unwrap();
    assert!(store.scan_summary("contoso").unwrap().is_none());
    assert!(store.load_instances("contoso").unwrap().is_empty());
    assert!(events(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_answer_and_promtool_accepts_the_exposition() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set("contoso", ad(&["u1"]));
    scanner.set(
        "fabrikam",
        Script {
            outage: true,
            ..Script::default()
        },
    );
    let (daemon, metrics) = start(
        config(&state, &["contoso", "fabrikam"], Duration::from_millis(50)),
        &scanner,
    )
    .await;
    next_scan(&metrics, &scanner, "contoso").await;
    next_scan(&metrics, &scanner, "fabrikam").await;
    assert_eq!(get(daemon.metrics_addr, "/healthz").await.0, 200);
    assert_eq!(get(daemon.metrics_addr, "/readyz").await.0, 200);
    assert_eq!(get(daemon.metrics_addr, "/nope").await.0, 404);
    let (_, body) = get(daemon.metrics_addr, "/metrics").await;
    let build_info = format!(
        "m365_posture_build_info{{revision=\"{}\",rustversion=\"{}\",version=\"{}\"}} 1",
        m365_posture::build_info::REVISION,
        m365_posture::build_info::RUSTC_VERSION,
        m365_posture::build_info::VERSION,
    );
    for name in [
        build_info.as_str(),
        "m365_posture_outbox_events{sink=\"siem\"} 1",
        "m365_posture_scan_duration_seconds{tenant=\"contoso\"}",
        "m365_posture_scan_interval_seconds{tenant=\"fabrikam\"}",
        // The stale-data alert's bound follows `per_user_max_age` (7 days here).
        "m365_posture_per_user_max_age_seconds 604800\n",
        "m365_posture_scans_total{status=\"failed\",tenant=\"fabrikam\"}",
        "process_resident_memory_bytes",
    ] {
        assert!(body.contains(name), "missing {name} in\n{body}");
    }
    assert!(
        !body.contains("@contoso.example"),
        "names leaked into labels"
    );
    // The catalogue as an info metric, one series per finding, for dashboards to join on.
    let info: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("m365_posture_finding_info{"))
        .collect();
    assert_eq!(info.len(), m365_posture::findings::FindingId::ALL.len());
    assert!(info.contains(
        &"m365_posture_finding_info{category=\"email_admin_settings\",finding=\"domain.spf_allows_any\",\
          reference=\"https://learn.microsoft.com/en-us/defender-office-365/email-authentication-spf-configure\",\
          severity=\"high\",title=\"Microsoft Domain SPF Record Allows Any IP Address\"} 1"
    ));
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match promtool {
        Ok(child) => child,
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!("promtool not installed ({err}); skipping the lint locally");
            daemon.shutdown(Duration::from_secs(5)).await;
            return;
        }
        Err(err) => panic!("promtool missing in CI: {err}"),
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = daemon.metrics_addr;
    daemon.shutdown(Duration::from_secs(5)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener still open after shutdown"
    );
}

/// A config that points a tenant's name at another Entra tenant (its `tenant_id` changed)
/// is not scanned: the first tenant's instances are not resolved against the second's
/// directory, and nothing is announced. Pointed back (the id in another case), scans commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_id_under_the_same_name_scans_nothing_and_resolves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let scanner = ScriptedScanner::default();
    scanner.set("contoso", ad(&["u1", "u2"]));
    let mut first = config(&state, &["contoso"], Duration::from_millis(50));
    first.tenants[0].tenant_id = "aaaaaaaa-1111-1111-1111-111111111111".to_owned();
    let first_id = first.tenants[0].tenant_id.clone();
    let (daemon, metrics) = start(first.clone(), &scanner).await;
    next_scan(&metrics, &scanner, "contoso").await;
    assert_eq!(events(&state), vec![pair("new", "u1"), pair("new", "u2")]);
    daemon.shutdown(Duration::from_secs(5)).await;

    // The other tenant has no such users: a commit would resolve both.
    scanner.set("contoso", ad(&["x9"]));
    let mut other = first.clone();
    let other_id = "22222222-2222-2222-2222-222222222222";
    other.tenants[0].tenant_id = other_id.to_owned();
    let (daemon, metrics) = start(other, &scanner).await;
    let started = scanner.started("contoso");
    wait_until("two refused scans", || finished(&metrics, "contoso") >= 2).await;
    assert_eq!(scanner.started("contoso"), started, "nothing was collected");
    let m = scrape(&daemon).await;
    assert_eq!(m[r#"m365_posture_scan_success{tenant="contoso"}"#], 0.0);
    assert_eq!(sum(&m, AD_GAUGE, &[]), 2.0);
    assert_eq!(events(&state).len(), 2);
    let error: String = rusqlite::Connection::open(&state)
        .unwrap()
        .query_row(
            "SELECT error FROM scans WHERE tenant = 'contoso' ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        error.contains(&first_id) && error.contains(other_id),
        "{error}"
    );
    daemon.shutdown(Duration::from_secs(5)).await;

    let mut back = first;
    back.tenants[0].tenant_id = first_id.to_uppercase();
    scanner.set("contoso", ad(&["u2"]));
    let (daemon, metrics) = start(back, &scanner).await;
    next_scan(&metrics, &scanner, "contoso").await;
    assert_eq!(events(&state)[2..], [pair("resolved", "u1")]);
    daemon.shutdown(Duration::from_secs(5)).await;
}
