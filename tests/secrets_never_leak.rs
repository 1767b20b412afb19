//! Secrets never leave where they belong (SECURITY.md): the real daemon at trace level
//! (`-vv`) scans graph-sim with a distinctive client secret, then runs with a wrong one so
//! the token endpoint refuses it. Neither secret, nor any access token (a JWT, `eyJ...`),
//! appears in the log at any level, the error messages, the events on standard output, the
//! `/metrics` exposition or the state file (with its WAL).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon_support;

use daemon_support::{recorded_scans, write_sim_config, HOURLY};
use graph_sim::{start, ClientRegistration, SimOptions, TenantFile};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const SECRET: &str = "CANARY-client-secret-7f3a9c";
const WRONG_SECRET: &str = "CANARY-wrong-secret-51d2e8";
/// Every JWT starts with the base64url of `{"`.
const JWT_PREFIX: &str = "eyJ";

/// Everything one daemon run left where a person or a system could read it.
struct Run {
    log: String,
    stdout: String,
    metrics: String,
}

async fn run_daemon(config: &Path, state: &Path, log: &Path) -> Run {
    let before = recorded_scans(state);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .args(["-vv", "run", "--config"])
        .arg(config)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(log).unwrap(),
        ))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let stdout = tokio::spawn(async move {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text).await;
        text
    });
    for _ in 0..1500 {
        if recorded_scans(state) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recorded_scans(state) > before, "no scan recorded");
    let text = std::fs::read_to_string(log).unwrap();
    let addr = text
        .split("metrics=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the ready line names the metrics address")
        .to_owned();
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    Run {
        log: std::fs::read_to_string(log).unwrap(),
        stdout: stdout.await.unwrap(),
        metrics,
    }
}

fn state_bytes(state: &Path) -> String {
    let mut text = String::new();
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", state.display());
        if let Ok(bytes) = std::fs::read(path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

fn assert_clean(place: &str, text: &str) {
    for needle in [SECRET, WRONG_SECRET, JWT_PREFIX] {
        assert!(!text.contains(needle), "{needle:?} found in {place}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_in_logs_errors_events_metrics_or_state() {
    let mut tenant = TenantFile::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap();
    tenant.clients = Some(vec![ClientRegistration {
        client_id: graph_sim::DEFAULT_CLIENT_ID.to_owned(),
        client_secret: Some(SECRET.to_owned()),
        certificate_pem: None,
        roles: graph_sim::ALL_ROLES
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
    }]);
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (secret, state) = (dir.path().join("secret"), dir.path().join("state.db"));
    let config = write_sim_config(dir.path(), "config.toml", &sim, (&secret, &state), HOURLY);

    std::fs::write(&secret, SECRET).unwrap();
    let good = run_daemon(&config, &state, &dir.path().join("good.log")).await;
    assert!(good.log.contains("TRACE"), "not logged at trace level");
    assert!(
        good.stdout.contains("\"action\":\"new\""),
        "no events: {}",
        good.stdout
    );
    assert_clean("the trace log", &good.log);
    assert_clean("the events", &good.stdout);
    assert_clean("the metrics", &good.metrics);

    std::fs::write(&secret, WRONG_SECRET).unwrap();
    let refused = run_daemon(&config, &state, &dir.path().join("refused.log")).await;
    assert!(
        refused.log.contains("WARN") && refused.log.contains("AADSTS"),
        "the refusal is not logged:\n{}",
        refused.log
    );
    assert_clean("the trace log of the refused run", &refused.log);
    assert_clean("the metrics of the refused run", &refused.metrics);
    assert_clean("the state file", &state_bytes(&state));
}
