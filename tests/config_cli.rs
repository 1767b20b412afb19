//! The command line: `--help` and `--version` succeed, usage errors exit 64 (not clap's 2).
#![cfg(test)]

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn version_prints_the_crate_version() {
    let output = run(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let expected = format!("m365-posture {} (revision ", env!("CARGO_PKG_VERSION"));
    assert!(stdout.starts_with(&expected), "{stdout}");
}

#[test]
fn help_lists_the_subcommands_and_exit_codes() {
    for args in [&["--help"][..], &["help"], &["check-config", "--help"]] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(stdout.contains("Usage: m365-posture"), "{args:?}: {stdout}");
    }
    let stdout = String::from_utf8(run(&["--help"]).stdout).unwrap();
    assert!(stdout.contains("check-config"));
    assert!(stdout.contains("78 bad config"));
    let stdout = String::from_utf8(run(&["check-config", "--help"]).stdout).unwrap();
    assert!(stdout.contains("--config <PATH>"));
    assert!(stdout.contains("/etc/m365-posture/config.toml"));
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        &["no-such-command"][..],
        &[],
        &["--no-such-flag", "check-config"],
        &["check-config", "--config"],
        &["--log-format", "xml", "check-config"],
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}: says what is wrong");
    }
}
