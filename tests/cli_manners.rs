//! Unix manners of the real binary: `scan` into a pipe its reader already closed (`scan | head
//! -1`) ends quietly with status 141 (128 + SIGPIPE) in every format, not a panic; `--version`
//! names the git revision and the rustc version; `run --web.listen-address` wins over the
//! config's `[metrics] listen`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use std::process::Stdio;
use support::{contoso, sim};
use tokio::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_m365-posture");

/// A config for one client-secret tenant on `sim`, in `dir`.
fn write_config(dir: &std::path::Path, sim: &graph_sim::SimHandle) -> std::path::PathBuf {
    let secret = dir.join("client-secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let text = format!(
        "[[tenants]]\nname = \"contoso\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
         client_secret_file = {secret:?}\nauthority_url = \"{base}\"\ngraph_url = \"{base}\"\n\n\
         [dns]\nservers = [\"{}\"]\n\n[state]\npath = {:?}\n\n[metrics]\nlisten = \"127.0.0.1:1\"\n",
        sim.tenant_id(),
        graph_sim::DEFAULT_CLIENT_ID,
        sim.dns_addr(),
        dir.join("state.db"),
        base = sim.base_url(),
    );
    let config = dir.join("config.toml");
    std::fs::write(&config, text).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_into_a_closed_pipe_exits_141_without_a_panic_in_every_format() {
    let sim = sim(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    for format in ["json", "table", "cef"] {
        let mut child = Command::new(BINARY)
            .args(["scan", "--format", format, "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // The reader goes away before the scan has printed anything, as `head -1` does once it
        // has its line.
        drop(child.stdout.take());
        let output = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{format}: {stderr}");
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{format}: {stderr}");
    }
}

#[test]
fn version_names_the_revision_and_the_rustc_version() {
    let output = std::process::Command::new(BINARY)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let line = String::from_utf8(output.stdout).unwrap();
    let revision = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |out| String::from_utf8(out.stdout).unwrap().trim().to_owned(),
        );
    let rustc = std::process::Command::new(std::env::var("RUSTC").unwrap_or("rustc".into()))
        .arg("--version")
        .output()
        .unwrap();
    let rustc = String::from_utf8(rustc.stdout).unwrap();
    let rustc = rustc.split_whitespace().nth(1).unwrap();
    assert_eq!(
        line.trim(),
        format!(
            "m365-posture {} (revision {revision}, rustc {rustc})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_listen_address_flag_replaces_the_config_listen_address() {
    let sim = sim(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let mut child = Command::new(BINARY)
        .args(["run", "--config"])
        .arg(&config)
        .arg("--web.listen-address")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let body = loop {
        if let Ok(body) = scrape(addr).await {
            if body.contains("m365_posture_findings{") {
                break body;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no scan on {addr}");
        assert!(child.try_wait().unwrap().is_none(), "the daemon exited");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(body.contains("m365_posture_build_info{"));
    child.kill().await.unwrap();
}

/// `GET /metrics` over plain HTTP/1.0.
async fn scrape(addr: std::net::SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

/// On a terminal, `scan` shows its progress on stderr (users listed, per-user reads) and
/// clears the line at the end; stdout keeps only the document. Not on a pipe. `script` (from
/// util-linux, Debian's `bsdutils`) gives the scan a terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_shows_a_progress_line_on_a_terminal_and_nothing_on_a_pipe() {
    let mut tenant = contoso();
    let users = tenant.users.len();
    tenant.faults.paths.insert(
        "/v1.0/users/{id}/mailFolders/inbox/messageRules".into(),
        graph_sim::PathFault {
            latency_ms: Some([1_200, 1_200]),
            ..graph_sim::PathFault::default()
        },
    );
    let sim = sim(tenant).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let out = dir.path().join("scan.json");
    let command = format!(
        "{BINARY} scan --format json --config {} > {}",
        config.display(),
        out.display()
    );
    let terminal = Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("script (bsdutils) is installed");
    let shown = String::from_utf8_lossy(&terminal.stdout);
    assert!(terminal.status.success(), "{shown}");
    assert!(
        shown.contains(&format!("contoso: {users} users listed, ")),
        "the line shows the listed users while the mailbox reads run: {shown:?}"
    );
    assert!(shown.contains("per-user reads done"), "{shown:?}");
    assert!(
        shown.ends_with("\r\x1b[2K"),
        "the line is cleared: {shown:?}"
    );
    let document: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).expect("stdout is only JSON");
    assert_eq!(document["tenants"][0]["status"], "ok");
    let piped = Command::new(BINARY)
        .args(["scan", "--format", "json", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("users listed"), "{stderr}");
    assert!(!stderr.contains('\r'), "{stderr}");
}
