//! `M365_POSTURE__SECTION__KEY` overrides: through the binary with `Command::env`, and through
//! `load_with_env` for typed values. Never `std::env::set_var`.
#![cfg(test)]

use m365_posture::config::load_with_env;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const GOOD: &str = "tests/configs/good_minimal.toml";

fn check_config(vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_m365-posture"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check-config", "--config", GOOD]);
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .to_uppercase()
            .starts_with("M365_POSTURE__")
        {
            command.env_remove(name);
        }
    }
    command.envs(vars.iter().copied());
    command.output().unwrap()
}

fn good_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(GOOD)
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

#[test]
fn scan_interval_from_the_environment_changes_the_value() {
    let output = check_config(&[("M365_POSTURE__SCAN__INTERVAL", "1h")]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("scan: interval 1h, timeout 30m"),
        "{stdout}"
    );
    assert!(
        stdout.contains(", every 1h,"),
        "tenant interval follows: {stdout}"
    );
}

#[test]
fn stray_variable_is_an_unknown_key() {
    let output = check_config(&[("M365_POSTURE__SCAN__NOPE", "1")]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert_eq!(
        stderr.lines().nth(1),
        Some("scan.nope: unknown key (from environment variable M365_POSTURE__SCAN__NOPE)")
    );
}

#[test]
fn bad_value_names_the_variable() {
    let output = check_config(&[("M365_POSTURE__SCAN__INTERVAL", "0s")]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert_eq!(
        stderr.lines().nth(1),
        Some("scan.interval: must be greater than 0 (from environment variable M365_POSTURE__SCAN__INTERVAL)")
    );
}

#[test]
fn arrays_of_tables_cannot_come_from_the_environment() {
    let output = check_config(&[("M365_POSTURE__TENANTS__0__NAME", "other")]);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert_eq!(
        stderr.lines().nth(1),
        Some("tenants: cannot be set from the environment (M365_POSTURE__TENANTS__0__NAME): [[tenants]] come from the config file")
    );
}

#[test]
fn typed_values_lists_and_empty_variables() {
    let env = vars(&[
        ("M365_POSTURE__SCAN__DIRECTORY_CONCURRENCY", "4"),
        ("M365_POSTURE__CHECKS__TAP_USABLE_ONLY", "false"),
        (
            "M365_POSTURE__CHECKS__EXTRA_INTERNAL_DOMAINS",
            "Partner.example,other.example.",
        ),
        ("M365_POSTURE__DNS__SERVERS", "127.0.0.1:5353,10.0.0.2"),
        ("M365_POSTURE__METRICS__LISTEN", ""),
        ("M365_POSTURE_SCAN_INTERVAL", "1s"),
        ("PATH", "/usr/bin"),
    ]);
    let config = load_with_env(&good_path(), env).unwrap();
    assert_eq!(config.scan.directory_concurrency, 4);
    assert!(!config.checks.tap_usable_only);
    assert_eq!(
        config.checks.extra_internal_domains,
        ["partner.example", "other.example"]
    );
    assert_eq!(
        config.dns.servers,
        [
            "127.0.0.1:5353".parse().unwrap(),
            "10.0.0.2:53".parse().unwrap()
        ]
    );
    assert_eq!(
        config.metrics.listen,
        "0.0.0.0:9365".parse().unwrap(),
        "empty counts as unset"
    );
    assert_eq!(
        config.scan.interval,
        Duration::from_secs(6 * 3600),
        "single underscore is not an override"
    );
}

#[test]
fn environment_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = std::fs::read_to_string(good_path()).unwrap() + "\n[scan]\ninterval = \"2h\"\n";
    std::fs::write(&path, text).unwrap();
    let from_file = load_with_env(&path, vars(&[])).unwrap();
    assert_eq!(from_file.scan.interval, Duration::from_secs(2 * 3600));
    let overridden =
        load_with_env(&path, vars(&[("M365_POSTURE__SCAN__INTERVAL", "90m")])).unwrap();
    assert_eq!(overridden.scan.interval, Duration::from_secs(90 * 60));
}
