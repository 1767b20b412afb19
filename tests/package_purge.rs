//! The Debian maintainer script `packaging/debian/postrm` (README "Removing the package"):
//! purge deletes the state and cache directories the service created and keeps the
//! operator's credentials; remove keeps everything. Run against a scratch root through
//! `$DPKG_ROOT`, which dpkg sets for maintainer scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

const POSTRM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/debian/postrm");

/// A scratch root as an installed, used agent leaves it.
fn installed_root(root: &Path) {
    for dir in [
        "etc/m365-posture",
        "var/lib/private/m365-posture",
        "var/cache/private/m365-posture",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::os::unix::fs::symlink("private/m365-posture", root.join("var/lib/m365-posture")).unwrap();
    for file in [
        "var/lib/private/m365-posture/state.db",
        "var/lib/private/m365-posture/state.db-wal",
        "etc/m365-posture/client-secret",
        "etc/m365-posture/client-key.pem",
    ] {
        std::fs::write(root.join(file), "x").unwrap();
    }
}

fn postrm(root: &Path, action: &str) {
    let status = Command::new("sh")
        .arg(POSTRM)
        .arg(action)
        .env("DPKG_ROOT", root)
        .status()
        .unwrap();
    assert!(status.success(), "postrm {action} failed: {status}");
}

#[test]
fn purge_removes_state_and_cache_and_keeps_the_operators_credentials() {
    let root = tempfile::tempdir().unwrap();
    installed_root(root.path());
    postrm(root.path(), "purge");
    for gone in [
        "var/lib/m365-posture",
        "var/lib/private/m365-posture",
        "var/cache/private/m365-posture",
    ] {
        assert!(
            std::fs::symlink_metadata(root.path().join(gone)).is_err(),
            "{gone} survived purge"
        );
    }
    for kept in [
        "etc/m365-posture/client-secret",
        "etc/m365-posture/client-key.pem",
    ] {
        assert!(root.path().join(kept).exists(), "purge deleted {kept}");
    }
}

#[test]
fn remove_keeps_the_state() {
    let root = tempfile::tempdir().unwrap();
    installed_root(root.path());
    postrm(root.path(), "remove");
    assert!(root
        .path()
        .join("var/lib/private/m365-posture/state.db")
        .exists());
}
