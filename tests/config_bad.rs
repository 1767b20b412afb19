//! Bad configs through the real binary: `check-config` exits 78 and prints every problem.
//!
//! Each `tests/configs/bad_*.toml` lists the exact problem lines it must produce in
//! `# expect: ` comments, in order.
#![cfg(test)]

use std::process::{Command, Output};

const PREFIX: &str = "M365_POSTURE__";

/// Runs `check-config` from the crate root with no `M365_POSTURE__` variables inherited.
fn check_config(relative_path: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_m365-posture"));
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "check-config",
        "--config",
        relative_path,
    ]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().to_uppercase().starts_with(PREFIX) {
            command.env_remove(name);
        }
    }
    command.output().unwrap()
}

fn assert_bad(file: &str) {
    let path = format!("tests/configs/{file}");
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let expected: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .collect();
    assert!(!expected.is_empty(), "{file} has no `# expect:` lines");
    let output = check_config(&path);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{file}: stderr:\n{stderr}");
    assert!(output.stdout.is_empty(), "{file}: nothing on stdout");
    let mut lines = stderr.lines();
    let count = expected.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    assert_eq!(
        lines.next(),
        Some(format!("m365-posture: config {path} has {count} {noun}:").as_str())
    );
    let problems: Vec<&str> = lines.collect();
    assert_eq!(problems, expected, "{file}: problem lines differ");
}

macro_rules! bad_configs {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                assert_bad(concat!(stringify!($name), ".toml"));
            }
        )*
        const TESTED: &[&str] = &[$(concat!(stringify!($name), ".toml")),*];
    };
}

bad_configs!(
    bad_unknown_top_key,
    bad_unknown_nested_key,
    bad_guid,
    bad_missing_auth,
    bad_two_auth,
    bad_duration,
    bad_severity_override,
    bad_sink_combos,
    bad_duplicate_names,
    bad_no_tenants,
    bad_urls,
    bad_suppression,
    bad_many_problems,
    bad_first_party_tenant,
);

#[test]
fn every_bad_config_file_has_a_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/configs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.starts_with("bad_") && name != "bad_toml_syntax.toml" {
            assert!(
                TESTED.contains(&name.as_str()),
                "{name} is not in bad_configs!"
            );
        }
    }
}

#[test]
fn toml_syntax_error_is_one_problem_with_line_and_column() {
    let path = "tests/configs/bad_toml_syntax.toml";
    let output = check_config(path);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    let mut lines = stderr.lines();
    assert_eq!(
        lines.next(),
        Some(format!("m365-posture: config {path} has 1 problem:").as_str())
    );
    assert_eq!(
        lines.next(),
        Some(format!("{path}: TOML parse error at line 2, column 11").as_str())
    );
}

#[test]
fn missing_config_file_is_a_config_error() {
    let output = check_config("tests/configs/does-not-exist.toml");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("cannot read config file tests/configs/does-not-exist.toml: "),
        "{stderr}"
    );
}

/// The example names one credential file, the unit's client secret under /run/credentials,
/// which does not exist outside the service: that, and only that, is reported.
#[test]
fn example_config_fails_only_on_its_credential_file() {
    let output = check_config("config/example.toml");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    let problems: Vec<&str> = stderr.lines().skip(1).collect();
    assert_eq!(
        problems,
        ["tenants[0].client_secret_file: cannot read \
          /run/credentials/m365-posture.service/client-secret: no such file"],
        "{stderr}"
    );
}

#[test]
fn good_config_passes_with_a_summary() {
    let output = check_config("tests/configs/good_minimal.toml");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "config ok: tests/configs/good_minimal.toml");
    assert!(lines.contains(
        &"tenant contoso: 6babcaad-604b-40ac-a9d7-9fd97c0b779f (delegated), every 6h, \
          graph https://graph.microsoft.com"
    ));
    assert!(lines.contains(&"scan: interval 6h, timeout 30m, first scan emit"));
}
