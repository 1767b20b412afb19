//! The `graph-sim` binary: starts on port 0, prints its addresses, serves a token and users.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

async fn run(args: &[&str]) -> (tokio::process::Child, String, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_graph-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut first = Vec::new();
    for _ in 0..3 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        first.push(line);
    }
    let mut first = first.into_iter();
    let mut next = move || first.next().unwrap();
    let http = next().strip_prefix("http=").unwrap().to_string();
    let dns = next().strip_prefix("dns=").unwrap().to_string();
    let tenant = next().strip_prefix("tenant_id=").unwrap().to_string();
    (child, http, dns, tenant)
}

#[tokio::test]
async fn binary_on_port_zero_serves_a_token_and_users() {
    let (mut child, http, dns, tenant) = run(&[
        "--users",
        "150",
        "--seed",
        "4",
        "--listen",
        "127.0.0.1:0",
        "--dns-listen",
        "127.0.0.1:0",
    ])
    .await;
    assert!(!http.ends_with(":0") && !dns.ends_with(":0"));
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("http://{http}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("client_id", graph_sim::DEFAULT_CLIENT_ID),
            ("client_secret", graph_sim::DEFAULT_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users: Value = client
        .get(format!(
            "http://{http}/v1.0/users?$select=id,accountEnabled"
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["value"].as_array().unwrap().len(), 100);
    assert!(users["@odata.nextLink"]
        .as_str()
        .unwrap()
        .starts_with(&format!("http://{http}/v1.0/users?")));
    child.kill().await.unwrap();
}

#[tokio::test]
async fn tenant_file_and_bad_file() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/contoso.json");
    let (mut child, _, _, tenant) = run(&[
        "--tenant",
        fixture,
        "--listen",
        "127.0.0.1:0",
        "--dns-listen",
        "127.0.0.1:0",
    ])
    .await;
    assert_eq!(tenant, "6e3f1c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6");
    child.kill().await.unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_graph-sim"))
        .args(["--tenant", "/nonexistent/tenant.json"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot read tenant file"));
}

#[tokio::test]
async fn graph_latency_scale_flag_turns_the_model_on() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/contoso.json");
    let (mut child, http, _, tenant) = run(&[
        "--tenant",
        fixture,
        "--listen",
        "127.0.0.1:0",
        "--dns-listen",
        "127.0.0.1:0",
        "--graph-latency-scale",
        "0.05",
    ])
    .await;
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("http://{http}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("client_id", graph_sim::DEFAULT_CLIENT_ID),
            ("client_secret", graph_sim::DEFAULT_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let stats: Value = client
        .get(format!("http://{http}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The token endpoint's 100-300 ms at a twentieth: at least 5 ms.
    assert!(stats["latency_added_ms"].as_u64().unwrap() >= 5, "{stats}");
    child.kill().await.unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_graph-sim"))
        .args(["--users", "5", "--graph-latency-scale", "-1"])
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
