//! Files at rest (SECURITY.md): the real daemon, started under umask 000 as whoever runs the
//! test, creates its state directory 0700 and the state file with its WAL and SHM files 0600.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod daemon_support;

use daemon_support::{recorded_scans, write_sim_config, HOURLY};
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
    let config = write_sim_config(dir.path(), "config.toml", &sim, (&secret, &state), HOURLY);
    let mut child = tokio::process::Command::new("sh")
        .args(["-c", "umask 000; exec \"$0\" run --config \"$1\""])
        .arg(env!("CARGO_BIN_EXE_m365-posture"))
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..1500 {
        if recorded_scans(&state) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recorded_scans(&state) > 0, "the daemon committed no scan");
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
