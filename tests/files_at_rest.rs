//! Files at rest (SECURITY.md): the real daemon, started under umask 000 as whoever runs the
//! test, creates its state directory 0700 and the state file with its WAL and SHM files 0600.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use graph_sim::{start, SimOptions, TenantFile};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn committed_scans(state: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(state) else {
        return 0;
    };
    conn.query_row("SELECT COUNT(*) FROM scans", [], |r| r.get(0))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_under_umask_000_creates_a_private_state_directory_and_files() {
    let tenant = TenantFile::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap();
    let sim = start(tenant, SimOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, graph_sim::DEFAULT_CLIENT_SECRET).unwrap();
    let state_dir = dir.path().join("var/lib/m365-posture");
    let state = state_dir.join("state.db");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[tenants]]
name = "contoso"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "{secret}"
authority_url = "{base}"
graph_url = "{base}"

[dns]
servers = ["{dns}"]

[scan]
interval = "1h"

[state]
path = "{state}"

[metrics]
listen = "127.0.0.1:0"

[[sinks]]
type = "stdout"
payload = "json"
"#,
            tenant = sim.tenant_id(),
            client = graph_sim::DEFAULT_CLIENT_ID,
            secret = secret.display(),
            base = sim.base_url(),
            dns = sim.dns_addr(),
            state = state.display(),
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" run --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_m365-posture"))
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..1500 {
        if committed_scans(&state) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(committed_scans(&state) > 0, "the daemon committed no scan");
    // Checked while the daemon runs: SQLite removes the WAL and SHM files on a clean close.
    assert_eq!(mode(&state_dir), 0o700, "state directory");
    assert_eq!(mode(&state), 0o600, "state file");
    assert_eq!(mode(&state_dir.join("state.db-wal")), 0o600, "WAL file");
    assert_eq!(mode(&state_dir.join("state.db-shm")), 0o600, "SHM file");
    // The parents it had to create are private too (it cannot tell which of them is "its own").
    assert_eq!(mode(&dir.path().join("var/lib")), 0o700);
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
