//! The `/metrics` listener with `--web.config.file` (exporter-toolkit format): a real Prometheus
//! scrapes it over TLS with basic auth (and a job with a wrong password is refused), clients
//! without credentials or TLS get nothing, the file is re-read per connection, idle clients
//! cannot hold the listener, and a bad web config stops `run` with exit 78.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // the client certificate is for mutual TLS tests elsewhere
#[path = "receivers/certs.rs"]
mod certs;
mod daemon_support;

use daemon_support::*;
use m365_posture::daemon::Daemon;
use m365_posture::metrics::Metrics;
use m365_posture::sinks::listener::{ListenerLimits, ListenerOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What `certs::make_certs` needs.
struct Tools {
    openssl: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A tool, or `None` outside CI when it is missing (under `CI=true` a missing tool fails).
fn tool(name: &str) -> Option<PathBuf> {
    let found = on_path(name);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing in CI (.ci/run installs it)"
        );
        eprintln!("{name} not installed; skipping");
    }
    found
}

/// The reference implementation (exporter-toolkit, in promtool) accepts the same file.
fn promtool_accepts(web: &Path) {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let out = std::process::Command::new(promtool)
        .args(["check", "web-config"])
        .arg(web)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check web-config: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const USER: &str = "prometheus";
const PASSWORD: &str = "scrape-secret";

fn write_web_config(dir: &Path, certs: &certs::Certs, users: &[(&str, &str)]) -> PathBuf {
    let mut text = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  min_version: TLS12\nbasic_auth_users:\n",
        certs.server_cert.display(),
        certs.server_key.display()
    );
    for (user, password) in users {
        text.push_str(&format!(
            "  {user}: '{}'\n",
            bcrypt::hash(password, 4).unwrap()
        ));
    }
    let path = dir.join("web.yml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn start_daemon(dir: &Path, web: Option<PathBuf>, limits: ListenerLimits) -> Daemon {
    let state = dir.join("state.db");
    let config = config(&state, &["contoso"], Duration::from_millis(200));
    let store = m365_posture::state::Store::open(&state).unwrap();
    let options = ListenerOptions {
        web_config: web,
        limits,
    };
    Daemon::start_with(
        config,
        store,
        Metrics::new().unwrap(),
        Arc::new(ScriptedScanner::default()),
        options,
    )
    .await
    .unwrap()
}

fn https_client(ca: &Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

async fn status(client: &reqwest::Client, url: &str, auth: Option<(&str, &str)>) -> u16 {
    let mut request = client.get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_basic_auth_refuse_everyone_without_the_password() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::make_certs(&Tools { openssl }, dir.path());
    let web = write_web_config(dir.path(), &certs, &[(USER, PASSWORD)]);
    promtool_accepts(&web);
    let daemon = start_daemon(dir.path(), Some(web.clone()), ListenerLimits::default()).await;
    let url = format!("https://127.0.0.1:{}/metrics", daemon.metrics_addr.port());
    let client = https_client(&certs.ca);

    let scrape = client
        .get(&url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status().as_u16(), 200);
    assert!(scrape
        .text()
        .await
        .unwrap()
        .contains("m365_posture_build_info"));
    let refused = client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Basic realm=\"m365-posture\""
    );
    assert_eq!(status(&client, &url, Some((USER, "wrong"))).await, 401);
    assert_eq!(status(&client, &url, Some(("nobody", PASSWORD))).await, 401);
    for path in ["/healthz", "/readyz", "/"] {
        let other = url.replace("/metrics", path);
        assert_eq!(status(&client, &other, None).await, 401, "{path}");
    }
    // Plain HTTP on the TLS port gets no metrics.
    let (plain, _) = tokio::time::timeout(Duration::from_secs(5), raw_get(daemon.metrics_addr))
        .await
        .unwrap();
    assert!(
        !plain.contains("m365_posture"),
        "plain HTTP answered: {plain}"
    );

    // The file is read again for each connection: a new password works without a restart.
    write_web_config(dir.path(), &certs, &[(USER, "rotated")]);
    let fresh = https_client(&certs.ca);
    assert_eq!(status(&fresh, &url, Some((USER, "rotated"))).await, 200);
    assert_eq!(status(&fresh, &url, Some((USER, PASSWORD))).await, 401);
    // A file that became invalid refuses connections; it never falls back to plain HTTP.
    std::fs::write(&web, "basic_auth_users:\n  prometheus: plain-text\n").unwrap();
    let broken = https_client(&certs.ca);
    assert!(broken.get(&url).send().await.is_err());
    let (plain, _) = raw_get(daemon.metrics_addr).await;
    assert!(!plain.contains("m365_posture"), "{plain}");
    daemon.shutdown(Duration::from_secs(5)).await;
}

/// A plain-text `GET /metrics`; returns what came back (empty when the server hung up).
async fn raw_get(addr: std::net::SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(request.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    (
        String::from_utf8_lossy(&raw).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_cannot_hold_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ListenerLimits {
        max_connections: 2,
        header_read: Duration::from_millis(500),
        tls_handshake: Duration::from_millis(500),
    };
    let daemon = start_daemon(dir.path(), None, limits).await;
    // Two clients take every slot and send nothing.
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(
            tokio::net::TcpStream::connect(daemon.metrics_addr)
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A scrape waits for a slot, then is answered once the header deadline drops them.
    let (answer, took) =
        tokio::time::timeout(Duration::from_secs(10), raw_get(daemon.metrics_addr))
            .await
            .expect("the listener stayed blocked by idle clients");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took >= Duration::from_millis(300),
        "answered in {took:?}: no bound"
    );
    for mut stream in idle {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an idle connection was kept open");
        // hyper answers 408 or just closes; either way the connection ends.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        assert!(read.is_ok());
    }
    daemon.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_the_tls_handshake_is_dropped() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::make_certs(&Tools { openssl }, dir.path());
    let web = write_web_config(dir.path(), &certs, &[(USER, PASSWORD)]);
    let limits = ListenerLimits {
        max_connections: 1,
        header_read: Duration::from_millis(500),
        tls_handshake: Duration::from_millis(500),
    };
    let daemon = start_daemon(dir.path(), Some(web), limits).await;
    let mut silent = tokio::net::TcpStream::connect(daemon.metrics_addr)
        .await
        .unwrap();
    let url = format!("https://127.0.0.1:{}/metrics", daemon.metrics_addr.port());
    let client = https_client(&certs.ca);
    let answered = tokio::time::timeout(
        Duration::from_secs(10),
        status(&client, &url, Some((USER, PASSWORD))),
    )
    .await
    .expect("a silent client held the only slot");
    assert_eq!(answered, 200);
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the silent connection was kept open");
    daemon.shutdown(Duration::from_secs(5)).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn prometheus_config(dir: &Path, target: std::net::SocketAddr, ca: &Path) -> PathBuf {
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n    \
             basic_auth:\n      username: {USER}\n      password: {password}\n    \
             static_configs:\n      - targets: ['{target}']\n",
            ca = ca.display()
        )
    };
    let text = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("m365-posture", PASSWORD),
        job("wrong-password", "not-it")
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Each job's target health and last error, from Prometheus' targets API.
async fn target_health(api: &str) -> Vec<(String, String, String)> {
    let Ok(response) = reqwest::get(format!("{api}/api/v1/targets")).await else {
        return Vec::new();
    };
    let Ok(body) = response.json::<serde_json::Value>().await else {
        return Vec::new();
    };
    body["data"]["activeTargets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let text = |key: &str| t[key].as_str().unwrap_or_default().to_owned();
            (
                t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                text("health"),
                text("lastError"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_over_tls_with_basic_auth() {
    let (Some(openssl), Some(prometheus)) = (tool("openssl"), tool("prometheus")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = certs::make_certs(&Tools { openssl }, dir.path());
    let web = write_web_config(dir.path(), &certs, &[(USER, PASSWORD)]);
    let daemon = start_daemon(dir.path(), Some(web), ListenerLimits::default()).await;
    let config = prometheus_config(dir.path(), daemon.metrics_addr, &certs.ca);
    let port = free_port();
    let mut server = tokio::process::Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(
            std::fs::File::create(dir.path().join("prometheus.log")).unwrap(),
        ))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let api = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut health = Vec::new();
    let settled = |health: &[(String, String, String)]| {
        let of = |job: &str| {
            health
                .iter()
                .find(|(j, _, _)| j == job)
                .map(|t| t.1.clone())
        };
        of("m365-posture").as_deref() == Some("up")
            && of("wrong-password").as_deref() == Some("down")
    };
    while Instant::now() < deadline && !settled(&health) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        health = target_health(&api).await;
    }
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert!(
        settled(&health),
        "targets: {health:?}\nprometheus log:\n{log}"
    );
    let wrong = health
        .iter()
        .find(|(job, _, _)| job == "wrong-password")
        .unwrap();
    assert!(wrong.2.contains("401"), "wrong password error: {}", wrong.2);
    // The scraped series are in Prometheus.
    let query = format!("{api}/api/v1/query?query=m365_posture_build_info");
    let body: serde_json::Value = reqwest::get(&query).await.unwrap().json().await.unwrap();
    let result = body["data"]["result"].as_array().unwrap();
    assert!(
        result.iter().any(|r| r["metric"]["job"] == "m365-posture"),
        "{body}"
    );
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    daemon.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn run_refuses_a_bad_web_config_with_exit_78() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  prometheus: plain-text\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "--config",
            "tests/configs/good_minimal.toml",
            "--web.config.file",
        ])
        .arg(&web)
        .env("M365_POSTURE__STATE__PATH", dir.path().join("state.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("basic_auth_users.prometheus: not a bcrypt hash"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("state.db").exists(),
        "started before checking the web config"
    );
}
