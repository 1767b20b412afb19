//! `m365-posture consent` end to end: the real binary signs in with a device code against
//! graph-sim (the test approves the code it reads from the binary's standard error), stores the
//! refresh token in the state file, and later `scan` runs use and rotate it. Also: usage errors
//! (exit 64) for unknown or non-delegated tenants, Ctrl-C (exit 1), and no state file for
//! app-only scans.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "collect_support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use support::{contoso, sim};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_m365-posture");

/// A temp dir with a config of two tenants on one simulator: `contoso` (delegated) and
/// `apponly` (client secret), and the state file path.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    state: PathBuf,
}

fn setup(sim: &graph_sim::SimHandle) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let state = dir.path().join("state").join("state.db");
    let tenant = |name: &str, auth: String| {
        format!(
            "[[tenants]]\nname = \"{name}\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n{auth}\n\
             authority_url = \"{base}\"\ngraph_url = \"{base}\"\n\n",
            sim.tenant_id(),
            graph_sim::DEFAULT_CLIENT_ID,
            base = sim.base_url(),
        )
    };
    let text = format!(
        "{}{}[dns]\nservers = [\"{}\"]\n\n[state]\npath = {:?}\n",
        tenant("contoso", "auth = \"delegated\"".into()),
        tenant("apponly", format!("client_secret_file = {secret:?}")),
        sim.dns_addr(),
        state,
    );
    let config = dir.path().join("config.toml");
    std::fs::write(&config, text).unwrap();
    Setup { dir, config, state }
}

fn spawn_consent(config: &Path, tenant: &str) -> Child {
    Command::new(BINARY)
        .args(["consent", "--tenant", tenant, "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Reads standard error until the line with the user code; returns the code and the text read.
async fn read_user_code(stderr: &mut BufReader<ChildStderr>) -> (String, String) {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stderr.read_line(&mut line))
            .await
            .expect("no user code on stderr within 20 s")
            .unwrap();
        assert!(read > 0, "stderr ended without a user code:\n{seen}");
        seen.push_str(&line);
        if let Some(rest) = line.split("Enter the code ").nth(1) {
            let code = rest.split_whitespace().next().unwrap().to_owned();
            return (code, seen);
        }
    }
}

/// Waits for the child and returns its exit code and the rest of standard error.
async fn finish(mut child: Child, mut stderr: BufReader<ChildStderr>) -> (Option<i32>, String) {
    let mut rest = String::new();
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        stderr.read_to_string(&mut rest).await.unwrap();
        child.wait().await.unwrap()
    })
    .await
    .expect("consent did not exit within 30 s");
    (status.code(), rest)
}

async fn run(config: &Path, args: &[&str]) -> Output {
    let output = Command::new(BINARY)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output();
    tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("command did not exit within 60 s")
        .unwrap()
}

fn stored_refresh_token(state: &Path, tenant: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(state).unwrap();
    conn.query_row(
        "SELECT token FROM refresh_tokens WHERE tenant = ?1",
        [tenant],
        |row| row.get(0),
    )
    .ok()
}

/// `scan --tenant contoso --format json`: asserts exit 0 and a tenant status other than failed.
async fn scan_contoso(setup: &Setup) -> Value {
    let output = run(
        &setup.config,
        &["scan", "--tenant", "contoso", "--format", "json"],
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let doc: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("scan output is not JSON ({e}); stderr:\n{stderr}"));
    let tenant = &doc["tenants"][0];
    assert_eq!(
        output.status.code(),
        Some(0),
        "{tenant:#}\nstderr:\n{stderr}"
    );
    assert_eq!(tenant["tenant"], "contoso", "{tenant:#}");
    assert_ne!(tenant["status"], "failed", "{tenant:#}");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_stores_a_refresh_token_that_later_scans_use_and_rotate() {
    let sim = sim(contoso()).await;
    sim.set_device_code_interval(1);
    let setup = setup(&sim);

    let before = run(&setup.config, &["scan", "--tenant", "contoso"]).await;
    assert_eq!(before.status.code(), Some(1), "no refresh token stored yet");
    assert!(
        String::from_utf8_lossy(&before.stdout).contains("consent --tenant contoso"),
        "the failure says to run consent"
    );
    assert!(
        !setup.state.exists(),
        "a scan does not create the state file"
    );

    let mut child = spawn_consent(&setup.config, "contoso");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (code, prompt) = read_user_code(&mut stderr).await;
    assert!(
        prompt.contains("Open https://microsoft.com/devicelogin"),
        "{prompt}"
    );
    assert!(sim.approve_device_code(&code), "unknown user code {code:?}");
    let (exit, rest) = finish(child, stderr).await;
    assert_eq!(exit, Some(0), "{prompt}{rest}");
    assert!(rest.contains("(Ctrl-C cancels)"), "{rest}");
    assert!(rest.contains("Signed in"), "{rest}");
    let consented = stored_refresh_token(&setup.state, "contoso").expect("token stored");
    assert!(!rest.contains(&consented), "the token is never printed");

    let first = scan_contoso(&setup).await;
    let rotated = stored_refresh_token(&setup.state, "contoso").unwrap();
    assert_ne!(rotated, consented, "the scan stores the rotated token");
    assert!(!first.to_string().contains(&rotated));

    scan_contoso(&setup).await;
    let rotated_again = stored_refresh_token(&setup.state, "contoso").unwrap();
    assert_ne!(
        rotated_again, rotated,
        "the second scan used and rotated the stored token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_for_an_unknown_or_non_delegated_tenant_is_a_usage_error() {
    let sim = sim(contoso()).await;
    let setup = setup(&sim);
    for (tenant, words) in [
        ("apponly", "does not use delegated auth"),
        ("nosuch", "no tenant named"),
    ] {
        let output = run(&setup.config, &["consent", "--tenant", tenant]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{tenant}: {stderr}");
        assert!(stderr.contains(words), "{tenant}: {stderr}");
    }
    assert_eq!(
        sim.stats().total_to("/{tenant}/oauth2/v2.0/devicecode"),
        0,
        "no sign-in started"
    );
    assert!(!setup.state.exists(), "no state file for a refused consent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_sign_in_and_stores_nothing() {
    let sim = sim(contoso()).await;
    sim.set_device_code_interval(1);
    let setup = setup(&sim);
    let mut child = spawn_consent(&setup.config, "contoso");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    read_user_code(&mut stderr).await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let (exit, rest) = finish(child, stderr).await;
    assert_eq!(exit, Some(1), "{rest}");
    assert!(rest.contains("cancelled"), "{rest}");
    assert_eq!(stored_refresh_token(&setup.state, "contoso"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_sign_in_fails_in_words() {
    let sim = sim(contoso()).await;
    sim.set_device_code_interval(1);
    let setup = setup(&sim);
    let mut child = spawn_consent(&setup.config, "contoso");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (code, _) = read_user_code(&mut stderr).await;
    assert!(sim.decline_device_code(&code));
    let (exit, rest) = finish(child, stderr).await;
    assert_eq!(exit, Some(1), "{rest}");
    assert!(rest.contains("sign-in declined"), "{rest}");
    assert_eq!(stored_refresh_token(&setup.state, "contoso"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_only_scan_creates_no_state_file() {
    let sim = sim(contoso()).await;
    let setup = setup(&sim);
    let output = run(&setup.config, &["scan", "--tenant", "apponly"]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!setup.state.exists() && !setup.state.parent().unwrap().exists());
    drop(setup.dir);
}
