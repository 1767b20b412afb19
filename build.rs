//! Build script: records the git revision and the rustc version for `--version` and
//! `m365_posture_build_info` (`M365_POSTURE_REVISION`, `M365_POSTURE_RUSTC`). Outside a git
//! checkout (a source tarball) the revision is "unknown"; `M365_POSTURE_REVISION` set in the
//! environment wins (for packagers building from an export).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=M365_POSTURE_REVISION");
    let revision = std::env::var("M365_POSTURE_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(git_revision)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=M365_POSTURE_REVISION={revision}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = output(Command::new(rustc).arg("--version"))
        .and_then(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=M365_POSTURE_RUSTC={rustc_version}");
}

/// `git rev-parse --short=12 HEAD`, plus rerun triggers on HEAD and the current branch's ref.
fn git_revision() -> Option<String> {
    let git_dir = output(Command::new("git").args(["rev-parse", "--git-dir"]))?;
    rerun_if_changed(&format!("{git_dir}/HEAD"));
    if let Some(common) = output(Command::new("git").args(["rev-parse", "--git-common-dir"])) {
        rerun_if_changed(&format!("{common}/packed-refs"));
        if let Some(branch) =
            output(Command::new("git").args(["rev-parse", "--symbolic-full-name", "HEAD"]))
        {
            rerun_if_changed(&format!("{common}/{branch}"));
        }
    }
    output(Command::new("git").args(["rev-parse", "--short=12", "HEAD"]))
}

/// A rerun trigger on `path` if it exists: cargo takes a missing path as always changed, which
/// would rebuild the crate on every build (a checkout without `packed-refs` has one missing).
fn rerun_if_changed(path: &str) {
    if std::path::Path::new(path).exists() {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// The trimmed standard output of a command that succeeded, if any.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}
