//! The two CEF oracles: liblognorm's `lognormalizer` (cef motif) and PyPI `cefp`.

use super::Tools;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The lognormalizer rulebase: one CEF rule.
const RULEBASE: &str = "version=2\nrule=:%x:cef%\n";

/// Parses CEF lines with liblognorm's `lognormalizer`; fields named like the strict parser's
/// `flatten` (`header.0`..`header.6` and the extension keys). liblognorm 2.0.6 drops the first
/// character of the first extension key (rsyslog/liblognorm#363) unless a space follows the
/// seventh `|`, so one is inserted (a workaround in the oracle, not in the sender).
pub fn parse_lognormalizer(
    tools: &Tools,
    dir: &Path,
    lines: &[String],
) -> Vec<Result<BTreeMap<String, String>, String>> {
    let rulebase = dir.join("cef.rb");
    std::fs::write(&rulebase, RULEBASE).unwrap();
    let input: String = lines
        .iter()
        .map(|l| format!("{}\n", space_after_header(l)))
        .collect();
    let output = pipe(
        Command::new(&tools.lognormalizer)
            .arg("-r")
            .arg(&rulebase)
            .args(["-e", "json"]),
        &input,
    );
    output
        .lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))?;
            let cef = v.get("x").ok_or_else(|| format!("not parsed: {line}"))?;
            let mut map = BTreeMap::new();
            map.insert("header.0".to_owned(), "0".to_owned());
            for (i, key) in [
                "DeviceVendor",
                "DeviceProduct",
                "DeviceVersion",
                "SignatureID",
                "Name",
                "Severity",
            ]
            .iter()
            .enumerate()
            {
                map.insert(
                    format!("header.{}", i + 1),
                    cef[key].as_str().unwrap_or_default().to_owned(),
                );
            }
            for (key, value) in cef["Extensions"].as_object().ok_or("no Extensions")? {
                map.insert(key.clone(), value.as_str().unwrap_or_default().to_owned());
            }
            Ok(map)
        })
        .collect()
}

fn space_after_header(line: &str) -> String {
    let mut pipes = 0;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '|' => {
                pipes += 1;
                if pipes == 7 {
                    return format!("{} {}", &line[..=i], &line[i + 1..]);
                }
            }
            _ => {}
        }
    }
    line.to_owned()
}

const CEFP_SCRIPT: &str = r#"
import json, sys, cefp
out = []
for line in json.load(sys.stdin):
    try:
        p = cefp.parse(line)
        m = {"header.0": p["version"], "header.1": p["device"]["vendor"], "header.2": p["device"]["product"],
             "header.3": p["device"]["version"], "header.4": p["device"]["event_class_id"],
             "header.5": p["name"], "header.6": p["severity"]}
        m.update(p["extension"])
        out.append({"ok": m})
    except Exception as e:
        out.append({"err": repr(e)})
json.dump(out, sys.stdout)
"#;

/// Parses CEF lines with PyPI `cefp`, fields named like the strict parser's `flatten`.
pub fn parse_cefp(
    tools: &Tools,
    lines: &[String],
) -> Vec<Result<BTreeMap<String, String>, String>> {
    let input = serde_json::to_string(lines).unwrap();
    let output = pipe(
        Command::new(&tools.python).args(["-c", CEFP_SCRIPT]),
        &input,
    );
    let results: Vec<serde_json::Value> = serde_json::from_str(&output).unwrap();
    results
        .into_iter()
        .map(|r| match r.get("ok") {
            Some(ok) => Ok(serde_json::from_value(ok.clone()).unwrap()),
            None => Err(r.to_string()),
        })
        .collect()
}

fn pipe(command: &mut Command, input: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Written from another thread: a parser's output fills its pipe long before a large input
    // is written, and both would block.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "{command:?} failed");
    String::from_utf8(output.stdout).unwrap()
}
