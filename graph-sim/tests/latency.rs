//! Graph-shaped latency (`graph_sim::latency`): off by default, and when on, every kind of
//! request takes at least the model's minimum for its kind: a `$batch` of 20 Exchange GETs
//! runs its members four at a time (five waves), a directory `$batch` about its slowest member.
//! Only lower bounds are asserted (a sleep never ends early), so no timing can make these fail
//! on a slow machine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::time::Instant;

use common::*;
use graph_sim::latency::RequestKind;
use graph_sim::{start, GraphLatency, SimOptions};
use serde_json::{json, Value};

async fn batch_of(sim: &graph_sim::SimHandle, token: &str, urls: &[String]) -> Value {
    let requests: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"id": i.to_string(), "method": "GET", "url": url}))
        .collect();
    client()
        .post(format!("{}/v1.0/$batch", sim.base_url()))
        .bearer_auth(token)
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn latency_is_off_by_default() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    assert_eq!(get(&sim, &token, "/v1.0/users").await.0, 200);
    assert_eq!(sim.stats().latency_added_ms, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_kind_of_request_takes_the_models_time() {
    let model = GraphLatency::scaled(0.2);
    let options = SimOptions {
        graph_latency: Some(model.clone()),
        ..SimOptions::default()
    };
    let sim = start(fixture(), options).await.unwrap();

    let started = Instant::now();
    let token = token(&sim).await;
    assert!(started.elapsed() >= model.minimum(RequestKind::Token));

    let started = Instant::now();
    let (status, _, body) = get(&sim, &token, "/v1.0/users").await;
    assert_eq!(status, 200);
    let items = body["value"].as_array().unwrap().len();
    assert!(items > 1);
    assert!(started.elapsed() >= model.minimum(RequestKind::Directory { items }));

    let exchange: Vec<String> = (0..20)
        .map(|i| {
            let user = [ADELE, BOB][i % 2];
            format!("/users/{user}/mailFolders/inbox/messageRules")
        })
        .collect();
    let started = Instant::now();
    let body = batch_of(&sim, &token, &exchange).await;
    let elapsed = started.elapsed();
    let responses = body["responses"].as_array().unwrap();
    assert!(responses.iter().all(|r| r["status"] == 200), "{body}");
    let five_waves = model.minimum(RequestKind::Batch) + model.minimum(RequestKind::Exchange) * 5;
    assert!(elapsed >= five_waves, "{elapsed:?} < {five_waves:?}");

    let before = sim.stats().latency_added_ms;
    let directory: Vec<String> = (0..20).map(|_| "/organization".to_string()).collect();
    let body = batch_of(&sim, &token, &directory).await;
    assert!(body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == 200));
    let added = sim.stats().latency_added_ms - before;
    let members_and_envelope =
        model.minimum(RequestKind::Batch) + model.minimum(RequestKind::Directory { items: 1 }) * 20;
    assert!(u128::from(added) + 21 >= members_and_envelope.as_millis());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_tenant_file_turns_it_on() {
    let mut tenant = fixture();
    tenant.faults = serde_json::from_value(json!({"graph_latency": {"scale": 0.1}})).unwrap();
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    assert_eq!(get(&sim, &token, "/v1.0/domains").await.0, 200);
    let floor = GraphLatency::scaled(0.1).minimum(RequestKind::Token)
        + GraphLatency::scaled(0.1).minimum(RequestKind::Directory { items: 0 });
    assert!(u128::from(sim.stats().latency_added_ms) + 2 >= floor.as_millis());
    sim.shutdown().await;
}
