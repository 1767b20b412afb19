//! Crash safety of the real binary: `m365-posture run` against graph-sim, killed with SIGKILL at
//! seeded random moments over many scans while the tenant changes. After a final clean run:
//! every transition is in what was delivered (stdout sink) or still in the outbox, at least
//! once and never contradicted (per instance, events alternate new/resolved), and the state
//! equals a clean run's against the same tenant.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod daemon_support;

use chrono::{DateTime, Utc};
use graph_sim::{
    start, CollectionName, Faults, Mutation, SimHandle, SimOptions, TenantFile, ThrottleSettings,
};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const KILLS: usize = 30;
const USERS: [&str; 5] = [
    "a1000000-0000-4000-8000-000000000001",
    "a1000000-0000-4000-8000-000000000002",
    "a1000000-0000-4000-8000-000000000003",
    "a1000000-0000-4000-8000-000000000004",
    "a1000000-0000-4000-8000-000000000005",
];

/// One event as seen by the test: delivered on stdout or still in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    detected_at: DateTime<Utc>,
    event_id: String,
    fingerprint: String,
    action: String,
}

fn seen(value: &serde_json::Value) -> Seen {
    let text = |key: &str| {
        value[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {value}"))
            .to_owned()
    };
    Seen {
        detected_at: text("detected_at").parse().unwrap(),
        event_id: text("event_id"),
        fingerprint: text("fingerprint"),
        action: text("action"),
    }
}

fn write_config(dir: &Path, name: &str, sim: &SimHandle, state: &Path) -> PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let scan = "interval = \"150ms\"\ntimeout = \"30s\"\nshutdown_grace = \"5s\"";
    daemon_support::write_sim_config(dir, name, sim, (&secret, state), scan)
}

struct Running {
    child: tokio::process::Child,
    stdout: tokio::task::JoinHandle<String>,
}

fn spawn(config: &Path) -> Running {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_extension("log"))
        .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let stdout = tokio::spawn(async move {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text).await;
        text
    });
    Running { child, stdout }
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

/// Runs the daemon until `scans` more scans committed, then stops it with SIGTERM (exit 0).
async fn run_clean(config: &Path, state: &Path, scans: i64) -> String {
    let target = committed_scans(state) + scans;
    let mut running = spawn(config);
    for _ in 0..1500 {
        if committed_scans(state) >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if committed_scans(state) < target {
        let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "no clean scans; daemon log (last lines, newest first):\n{}",
            tail.join("\n")
        );
    }
    let pid = running.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), running.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean stop exits 0");
    running.stdout.await.unwrap()
}

fn outbox_rows(state: &Path) -> Vec<Seen> {
    let conn = rusqlite::Connection::open(state).unwrap();
    let mut stmt = conn.prepare("SELECT event FROM outbox").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|row| seen(&serde_json::from_str(&row.unwrap()).unwrap()))
        .collect()
}

/// Open instances: (finding, resource id) -> (fingerprint, suppressed, announced).
fn open_instances(state: &Path) -> BTreeMap<(String, String), (String, bool, bool)> {
    let conn = rusqlite::Connection::open(state).unwrap();
    let mut stmt = conn
        .prepare("SELECT finding, resource_id, fingerprint, suppressed, announced FROM instances WHERE resolved_at_ms IS NULL")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn toggle(sim: &SimHandle, rng: &mut rand::rngs::StdRng) {
    let user = USERS[rng.gen_range(0..USERS.len())];
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: user.to_owned(),
        changes: serde_json::json!({ "accountEnabled": rng.gen_bool(0.5) }),
    })
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_at_random_moments_loses_and_duplicates_no_transition() {
    let tenant = TenantFile::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap();
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    // Hundreds of scans in a minute would hit the simulated report throttling; not the subject.
    sim.set_faults(Faults {
        throttle: ThrottleSettings {
            enabled: false,
            ..ThrottleSettings::default()
        },
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let config = write_config(dir.path(), "config.toml", &sim, &state);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0005);
    let mut delivered = String::new();

    for _ in 0..KILLS {
        toggle(&sim, &mut rng);
        let mut running = spawn(&config);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..700))).await;
        toggle(&sim, &mut rng);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..700))).await;
        running.child.start_kill().unwrap();
        running.child.wait().await.unwrap();
        delivered.push_str(&running.stdout.await.unwrap());
    }
    delivered.push_str(&run_clean(&config, &state, 2).await);
    assert!(committed_scans(&state) >= 2);

    // Everything seen, deduplicated by event id (at-least-once may repeat a delivery).
    let mut by_id: BTreeMap<String, Seen> = BTreeMap::new();
    for line in delivered.lines().filter(|l| !l.trim().is_empty()) {
        let event = seen(&serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")));
        by_id.insert(event.event_id.clone(), event);
    }
    for event in outbox_rows(&state) {
        by_id.insert(event.event_id.clone(), event);
    }
    let mut history: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    for event in by_id.into_values() {
        history
            .entry(event.fingerprint.clone())
            .or_default()
            .push(event);
    }
    let transitions: usize = history.values().map(Vec::len).sum();
    eprintln!(
        "{KILLS} kills, {} committed scans, {transitions} transitions, {} delivered lines",
        committed_scans(&state),
        delivered.lines().count()
    );
    assert!(
        transitions > USERS.len(),
        "too few transitions to mean anything"
    );
    for (fingerprint, events) in &mut history {
        events.sort();
        for (index, event) in events.iter().enumerate() {
            let expected = if index % 2 == 0 { "new" } else { "resolved" };
            assert_eq!(
                event.action, expected,
                "instance {fingerprint}: {events:#?}"
            );
        }
    }

    // The final state agrees with the events, and with a clean run against the same tenant.
    let open = open_instances(&state);
    let announced_open: BTreeSet<&String> = open
        .values()
        .filter(|(_, _, a)| *a)
        .map(|(f, _, _)| f)
        .collect();
    let open_by_events: BTreeSet<&String> = history
        .iter()
        .filter(|(_, events)| events.last().is_some_and(|e| e.action == "new"))
        .map(|(fingerprint, _)| fingerprint)
        .collect();
    assert_eq!(announced_open, open_by_events);

    let clean_state = dir.path().join("clean.db");
    let clean_config = write_config(dir.path(), "clean.toml", &sim, &clean_state);
    run_clean(&clean_config, &clean_state, 1).await;
    let strip = |m: BTreeMap<(String, String), (String, bool, bool)>| {
        m.into_iter()
            .map(|(k, (f, s, _))| (k, f, s))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(open), strip(open_instances(&clean_state)));
}
