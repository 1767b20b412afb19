//! The SIEM outage of issue 6 with the real daemon binary: `m365-posture run` scans graph-sim
//! every second and sends CEF over TCP (octet counting) to a real rsyslog. The receiver goes
//! down for several scans while the tenant changes (an inbox rule forwarding out appears and
//! goes, a user is disabled and enabled, DMARC is weakened and fixed), the daemon is stopped
//! with SIGTERM and started again on the same state file in the middle of the outage, then the
//! receiver comes back on the same port. Every transition the daemon committed (its
//! `m365_posture_events_total` counters, and what the mutations must produce) arrives, parsed
//! by both CEF oracles; duplicates are at most the batches in flight when a write was cut; per
//! instance the events alternate new/resolved in arrival order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

#[path = "receivers/arrivals.rs"]
mod arrivals;
mod daemon_support;
#[path = "receivers/harness.rs"]
mod harness;

use arrivals::{arrived, Arrived};
use daemon_support::{get, samples, wait_until, Daemon};
use graph_sim::{start, Faults, SimHandle, SimOptions, TenantFile, ThrottleSettings};
use harness::{Kind, Receiver};
use m365_posture::sinks::DeliveryTuning;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SINK: &str = "siem";
const CAROL: &str = "a1000000-0000-4000-8000-000000000003";
const ERIN: &str = "a1000000-0000-4000-8000-000000000005";
const RULE_ID: &str = "AQAAAOutageFwd=";
const DOMAIN: &str = "contoso.com";

fn write_config(dir: &Path, sim: &SimHandle, state: &Path, receiver: &str) -> PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let text = format!(
        r#"
[[tenants]]
name = "contoso"
tenant_id = "{tenant_id}"
client_id = "{client_id}"
client_secret_file = "{secret}"
authority_url = "{base}"
graph_url = "{base}"

[dns]
servers = ["{dns}"]
timeout = "500ms"

[scan]
interval = "1s"
timeout = "20s"
shutdown_grace = "5s"
first_scan = "emit"
# The tenant's inbox rule changes between scans: every stored per-user read is due at once.
per_user_max_age = "1ms"

[state]
path = "{state}"

[metrics]
listen = "127.0.0.1:0"

[[sinks]]
name = "{SINK}"
type = "syslog"
transport = "tcp"
address = "{receiver}"
format = "rfc5424"
framing = "octet-counting"
"#,
        tenant_id = sim.tenant_id(),
        client_id = graph_sim::DEFAULT_CLIENT_ID,
        secret = secret.display(),
        base = sim.base_url(),
        dns = sim.dns_addr(),
        state = state.display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn committed_scans(state: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(state) else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM scans WHERE status != 'failed'",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Waits for two more committed scans, so at least one started after the caller's change.
async fn fresh_scans(state: &Path) {
    let target = committed_scans(state) + 2;
    wait_until("two fresh scans", || committed_scans(state) >= target).await;
}

/// Event ids still in the outbox (committed, not yet delivered).
fn outbox_ids(state: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(state).unwrap();
    let mut stmt = conn.prepare("SELECT event FROM outbox").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|row| {
        let event: serde_json::Value = serde_json::from_str(&row.unwrap()).unwrap();
        event["event_id"].as_str().unwrap().to_owned()
    })
    .collect()
}

/// The daemon's view: committed events per (finding, action), outbox size, delivered count.
struct Scrape {
    events: BTreeMap<(String, String), u64>,
    outbox: u64,
    delivered: u64,
}

impl Scrape {
    fn total(&self) -> u64 {
        self.events.values().sum()
    }
}

fn label<'a>(key: &'a str, name: &str) -> &'a str {
    let start = key.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    key[start..].split('"').next().unwrap()
}

async fn scrape(running: &Daemon) -> Scrape {
    let (status, body) = get(running.metrics, "/metrics").await;
    assert_eq!(status, 200);
    let all = samples(&body);
    let one = |name: &str| {
        all.get(&format!("{name}{{sink=\"{SINK}\"}}"))
            .map_or(0, |v| *v as u64)
    };
    let events = all
        .iter()
        // Series at 0 (exported from a check's first evaluation) carry no transition.
        .filter(|(k, v)| k.starts_with("m365_posture_events_total{") && **v > 0.0)
        .map(|(k, v)| {
            let key = (
                label(k, "finding").to_owned(),
                label(k, "action").to_owned(),
            );
            (key, *v as u64)
        })
        .fold(BTreeMap::new(), |mut map, (key, v)| {
            *map.entry(key).or_insert(0) += v;
            map
        });
    Scrape {
        events,
        outbox: one("m365_posture_outbox_events"),
        delivered: one("m365_posture_events_delivered_total"),
    }
}

fn set_forwarding_rule(sim: &SimHandle, present: bool) {
    sim.mutate(|tenant: &mut TenantFile| {
        let rules = tenant.message_rules.entry(CAROL.to_owned()).or_default();
        rules.retain(|r| r["id"] != RULE_ID);
        if present {
            rules.push(serde_json::json!({
                "id": RULE_ID, "displayName": "Keep a copy", "sequence": 1, "isEnabled": true,
                "hasError": false, "isReadOnly": false, "conditions": {}, "exceptions": null,
                "actions": {"forwardTo": [{"emailAddress": {"name": "C", "address": "collector@exfil.example"}}],
                            "stopProcessingRules": false}
            }));
        }
    });
}

fn set_erin_enabled(sim: &SimHandle, enabled: bool) {
    sim.mutate(|tenant: &mut TenantFile| {
        tenant.user_mut(ERIN).unwrap()["accountEnabled"] = serde_json::Value::Bool(enabled);
    });
}

fn set_dmarc(sim: &SimHandle, policy: &str) {
    sim.mutate(|tenant: &mut TenantFile| {
        let record = format!("v=DMARC1; p={policy}; rua=mailto:dmarc@{DOMAIN}");
        tenant.dns.insert(format!("_dmarc.{DOMAIN}"), vec![record]);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn siem_down_for_several_scans_with_a_daemon_restart_loses_no_transition() {
    let Some(tools) = harness::tools() else {
        return;
    };
    let tenant = TenantFile::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap();
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    // Report throttling is not the subject; dozens of 1 s scans would trigger it.
    sim.set_faults(Faults {
        throttle: ThrottleSettings {
            enabled: false,
            ..ThrottleSettings::default()
        },
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let certs = harness::make_certs(&tools, dir.path());
    let mut receiver = Receiver::start(&tools, Kind::RsyslogTcp, &dir.path().join("rx"), &certs);
    let state = dir.path().join("state.db");
    let config = write_config(dir.path(), &sim, &state, &receiver.address);

    // The first scan's events arrive while the receiver is up.
    let first = Daemon::spawn(&config, dir.path().join("run-1.log")).await;
    fresh_scans(&state).await;
    let before = scrape(&first).await;
    assert!(before.total() > 0, "the first scan emits events");
    let delivered = before.total();
    wait_until("first scan delivered", || {
        receiver.received().len() as u64 >= delivered && outbox_ids(&state).is_empty()
    })
    .await;

    // Down for several scans while findings change, with a daemon restart in the middle.
    receiver.kill();
    let (second, pending) = outage(&sim, &state, &config, first, delivered).await;

    // The receiver comes back on the same port; the outbox drains.
    receiver.restart();
    let after = drain(&second, pending.len() as u64).await;
    receiver.wait_for(after.total() as usize, Duration::from_secs(10));
    second.stop().await;

    check_arrivals(&arrived(&tools, dir.path(), &receiver), &after, &pending);
}

/// The receiver is down: two changes with the first daemon, a SIGTERM and restart on the same
/// state, two more changes. Returns the second daemon and the event ids held back.
async fn outage(
    sim: &SimHandle,
    state: &Path,
    config: &Path,
    first: Daemon,
    delivered: u64,
) -> (Daemon, BTreeSet<String>) {
    set_forwarding_rule(sim, true);
    set_erin_enabled(sim, false);
    fresh_scans(state).await;
    set_dmarc(sim, "none");
    set_forwarding_rule(sim, false);
    fresh_scans(state).await;
    let during = scrape(&first).await;
    assert!(during.total() > delivered, "the mutations made transitions");
    assert_eq!(during.outbox, during.total() - delivered, "all held back");
    assert_eq!(during.delivered, delivered, "nothing acked while down");

    first.stop().await;
    let pending_at_stop = outbox_ids(state);
    assert_eq!(pending_at_stop.len() as u64, during.outbox);
    let second = Daemon::spawn(config, config.with_file_name("run-2.log")).await;
    let kept = scrape(&second).await.outbox;
    assert_eq!(kept, during.outbox, "kept across the restart");
    set_erin_enabled(sim, true);
    set_forwarding_rule(sim, true);
    fresh_scans(state).await;
    set_dmarc(sim, "reject");
    set_erin_enabled(sim, false);
    fresh_scans(state).await;
    let held = scrape(&second).await;
    assert_eq!(held.outbox, held.total() - delivered, "all held back");
    assert_eq!(held.delivered, 0, "nothing acked while down");
    let pending = outbox_ids(state);
    assert!(pending.is_superset(&pending_at_stop));
    (second, pending)
}

/// Scrapes until the outbox is empty and the delivered counter caught up with it (the worker
/// counts a batch just after acknowledging it, so one scrape can fall in between).
async fn drain(running: &Daemon, held_back: u64) -> Scrape {
    for _ in 0..300 {
        let now = scrape(running).await;
        if now.outbox == 0 && now.delivered >= held_back {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = scrape(running).await;
    panic!(
        "not drained within 30 s of the receiver's return: outbox {}, delivered {} of {held_back}",
        last.outbox, last.delivered
    );
}

/// Everything the daemon committed arrived; duplicates only from one cut; instances alternate.
fn check_arrivals(arrivals: &[Arrived], committed: &Scrape, pending: &BTreeSet<String>) {
    assert_eq!(
        committed.delivered,
        pending.len() as u64,
        "the restarted daemon acknowledged exactly what was held back"
    );
    let mut seen = BTreeSet::new();
    let (mut unique, mut repeats) = (Vec::new(), Vec::new());
    for (index, event) in arrivals.iter().enumerate() {
        if seen.insert(event.event_id.clone()) {
            unique.push(event.clone());
        } else {
            repeats.push(index);
        }
    }
    eprintln!(
        "{} committed, {} arrived, {} held back during the outage, {} duplicates",
        committed.total(),
        arrivals.len(),
        pending.len(),
        repeats.len()
    );
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in &unique {
        *counts
            .entry((event.finding.clone(), event.action.clone()))
            .or_default() += 1;
    }
    assert_eq!(
        counts, committed.events,
        "every committed transition arrived"
    );
    let missing: Vec<&String> = pending.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "held-back events lost: {missing:?}");
    // The batches in flight at the cut arrive again as one contiguous run, no longer than
    // the worker's window.
    let tuning = DeliveryTuning::default();
    assert!(repeats.len() <= tuning.batch_size * tuning.max_in_flight);
    assert!(
        repeats.windows(2).all(|w| w[1] == w[0] + 1),
        "duplicates from more than one cut: {repeats:?}"
    );
    check_instances(&unique, pending);
}

fn check_instances(unique: &[Arrived], pending: &BTreeSet<String>) {
    let mut history: BTreeMap<(String, String), Vec<&Arrived>> = BTreeMap::new();
    for event in unique {
        history
            .entry((event.finding.clone(), event.resource_id.clone()))
            .or_default()
            .push(event);
    }
    for (instance, events) in &history {
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        let alternating = actions
            .iter()
            .enumerate()
            .all(|(i, a)| *a == if i % 2 == 0 { "new" } else { "resolved" });
        assert!(alternating, "{instance:?} out of order: {actions:?}");
        let fingerprints: BTreeSet<&str> = events.iter().map(|e| e.instance.as_str()).collect();
        assert_eq!(fingerprints.len(), 1, "{instance:?}: one externalId");
    }
    let instances: BTreeSet<&str> = unique.iter().map(|e| e.instance.as_str()).collect();
    assert_eq!(
        instances.len(),
        history.len(),
        "one instance per externalId"
    );
    let rule = format!("{CAROL}/{RULE_ID}");
    for (finding, resource, expected) in [
        (
            "mail.rule_forwards_external",
            rule.as_str(),
            &["new", "resolved", "new"][..],
        ),
        ("user.account_disabled", ERIN, &["new", "resolved", "new"]),
        ("domain.dmarc_not_enforced", DOMAIN, &["new", "resolved"]),
    ] {
        let events = history
            .get(&(finding.to_owned(), resource.to_owned()))
            .unwrap_or_else(|| panic!("no events for {finding} {resource}"));
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, expected, "{finding} {resource}");
        assert!(
            events.iter().all(|e| pending.contains(&e.event_id)),
            "{finding} {resource}: committed during the outage"
        );
    }
}
