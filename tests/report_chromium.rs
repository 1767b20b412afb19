//! `m365-posture report` end to end: the real daemon scans graph-sim once into its state file,
//! then `report` writes the HTML page, and headless Chromium (Debian's `chromium`) loads it from
//! disk and dumps the rendered DOM. The findings table shows every open instance that
//! `report --format json` lists, each with its references; the suppressed instance is in the
//! suppressed table with its reason. CSV has one row per instance. Without chromium the test
//! skips locally and fails under CI=true.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "collect_support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{contoso, sim};

const BINARY: &str = env!("CARGO_BIN_EXE_m365-posture");
const BOB: &str = "a1000000-0000-4000-8000-000000000002";

fn write_config(dir: &Path, sim: &graph_sim::SimHandle) -> PathBuf {
    let secret = dir.join("client-secret");
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let text = format!(
        "[[tenants]]\nname = \"contoso\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
         client_secret_file = {secret:?}\nauthority_url = \"{base}\"\ngraph_url = \"{base}\"\n\n\
         [dns]\nservers = [\"{}\"]\n\n[state]\npath = {:?}\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n\
         [[suppressions]]\nfinding = \"user.account_disabled\"\nresource_id = \"{BOB}\"\n\
         reason = \"leaver <kept> for legal hold\"\nowner = \"secops@contoso.com\"\n\
         expires = \"2099-01-01T00:00:00Z\"\n",
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

fn report(config: &Path, format: &str) -> (Option<i32>, String) {
    let out = Command::new(BINARY)
        .args(["report", "--format", format, "--config"])
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code(),
        if stdout.is_empty() { stderr } else { stdout },
    )
}

/// Runs the daemon until its first scan is in the state file.
async fn scan_once(config: &Path) {
    let mut daemon = tokio::process::Command::new(BINARY)
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, text) = report(config, "json");
        if code == Some(0) {
            let doc: Value = serde_json::from_str(&text).unwrap();
            if !doc["tenants"][0]["last_success"].is_null() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no scan in 60 s: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    daemon.kill().await.unwrap();
}

fn chromium_dom(page: &Path) -> Option<String> {
    let profile = tempfile::tempdir().unwrap();
    let run = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match run {
        Ok(out) if out.status.success() => Some(String::from_utf8(out.stdout).unwrap()),
        Ok(out) => panic!("chromium failed: {:?}", out.status),
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!("chromium not installed ({err}); skipping the browser check locally");
            None
        }
        Err(err) => panic!("chromium missing in CI: {err}"),
    }
}

/// The `<tr class="finding ...">` rows of the first table with class `class` in `dom`.
fn rows<'a>(dom: &'a str, class: &str) -> Vec<&'a str> {
    let Some(start) = dom.find(&format!("<table class=\"{class}\">")) else {
        return Vec::new();
    };
    let table = &dom[start..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr class=\"finding ")
        .skip(1)
        .map(|row| &row[..row.find("</tr>").unwrap()])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_in_chromium_shows_every_open_instance() {
    let sim = sim(contoso()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    scan_once(&config).await;

    let (code, json) = report(&config, "json");
    assert_eq!(code, Some(0), "{json}");
    let doc: Value = serde_json::from_str(&json).unwrap();
    let tenant = &doc["tenants"][0];
    let open = tenant["open"].as_array().unwrap();
    assert!(open.len() >= 5, "the fixture has findings: {json}");
    let suppressed = tenant["suppressed"].as_array().unwrap();
    assert_eq!(suppressed.len(), 1, "{json}");
    assert_eq!(suppressed[0]["resource_id"], BOB);
    assert!(open
        .iter()
        .all(|f| f["resource_id"] != BOB || f["finding"] != "user.account_disabled"));

    let (code, html) = report(&config, "html");
    assert_eq!(code, Some(0), "{html}");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let (code, csv) = report(&config, "csv");
    assert_eq!(code, Some(0));
    assert_eq!(csv.lines().count(), 1 + open.len() + suppressed.len());

    let Some(dom) = chromium_dom(&page) else {
        return;
    };
    let shown = rows(&dom, "findings");
    assert_eq!(shown.len(), open.len(), "every open instance is a row");
    for finding in open {
        let id = finding["finding"].as_str().unwrap();
        let resource = finding["resource_id"].as_str().unwrap();
        let marker = format!("data-finding=\"{id}\" data-resource-id=\"{resource}\"");
        let row = shown
            .iter()
            .find(|r| r.contains(&marker))
            .unwrap_or_else(|| panic!("no row for {id} {resource}"));
        let url = finding["references"][0]["url"].as_str().unwrap();
        assert!(
            row.contains(&format!("href=\"{url}\"")),
            "{id}: reference link"
        );
    }
    let accepted = rows(&dom, "suppressed");
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].contains("leaver &lt;kept&gt; for legal hold"));
    assert!(
        !dom.contains("<kept>"),
        "tenant text is escaped, not markup"
    );
}

#[test]
fn report_without_a_state_file_says_so_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s\n").unwrap();
    std::fs::write(
        &config,
        format!(
            "[[tenants]]\nname = \"contoso\"\ntenant_id = \"6babcaad-604b-40ac-a9d7-9fd97c0b779f\"\n\
             client_id = \"4a1aa1d5-c567-49d0-ad0b-cd957a47f842\"\nclient_secret_file = {secret:?}\n\n\
             [state]\npath = {:?}\n",
            dir.path().join("none.db")
        ),
    )
    .unwrap();
    let (code, text) = report(&config, "html");
    assert_eq!(code, Some(1));
    assert!(text.contains("no state file at"), "{text}");
    assert!(
        !dir.path().join("none.db").exists(),
        "report creates no state file"
    );
    let out = Command::new(BINARY)
        .args(["report", "--tenant", "nope", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
