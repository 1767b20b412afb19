//! `$batch` over real HTTP: limits, inner statuses, order, dependencies, inner throttling.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::*;
use serde_json::{json, Value};

async fn batch(sim: &graph_sim::SimHandle, token: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(format!("{}/v1.0/$batch", sim.base_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn by_id(body: &Value, id: &str) -> Value {
    body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn twenty_members_get_inner_statuses_in_shuffled_order() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let users = [ADELE, BOB, GUEST];
    let requests: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{}/mailFolders/inbox/messageRules", users[i % 3])}))
        .collect();
    let (status, body) = batch(&sim, &token, json!({ "requests": requests })).await;
    assert_eq!(status, 200);
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    let order: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let sorted: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_ne!(
        order,
        sorted.iter().map(String::as_str).collect::<Vec<_>>(),
        "responses come back shuffled"
    );
    assert_eq!(by_id(&body, "0")["status"], 200);
    assert_eq!(by_id(&body, "2")["status"], 404);
    assert_eq!(
        by_id(&body, "2")["body"]["error"]["code"],
        "MailboxNotEnabledForRESTAPI"
    );
    let stats = sim.stats();
    assert_eq!(stats.requests_to("/v1.0/$batch"), 1);
    assert_eq!(
        stats.batch_count("/v1.0/users/{id}/mailFolders/inbox/messageRules", 404),
        6
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_batches_are_400() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let requests: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert_eq!(
        batch(&sim, &token, json!({ "requests": requests })).await.0,
        400
    );
    let duplicate = json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}, {"id": "1", "method": "GET", "url": "/domains"}]});
    assert_eq!(batch(&sim, &token, duplicate).await.0, 400);
    let (status, _) = batch(
        &sim,
        "",
        json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}]}),
    )
    .await;
    assert_eq!(status, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn relative_urls_and_absolute_ones() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let body = json!({"requests": [
        {"id": "a", "method": "GET", "url": "users?$select=id,accountEnabled&$top=2"},
        {"id": "b", "method": "GET", "url": format!("{}/v1.0/users", sim.base_url())},
    ]});
    let (_, body) = batch(&sim, &token, body).await;
    let a = by_id(&body, "a");
    assert_eq!(a["status"], 200);
    assert_eq!(a["body"]["value"].as_array().unwrap().len(), 2);
    assert!(a["body"]["@odata.nextLink"]
        .as_str()
        .unwrap()
        .starts_with(&sim.base_url()));
    assert_eq!(by_id(&body, "b")["status"], 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_dependency_gives_424() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{GUEST}/mailFolders/inbox/messageRules")},
        {"id": "2", "method": "GET", "url": "/domains", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/organization"},
        {"id": "4", "method": "GET", "url": "/domains", "dependsOn": ["3"]},
    ]});
    let (_, body) = batch(&sim, &token, body).await;
    assert_eq!(by_id(&body, "1")["status"], 404);
    assert_eq!(by_id(&body, "2")["status"], 424);
    assert_eq!(by_id(&body, "4")["status"], 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn inner_throttling_has_its_own_retry_after() {
    let mut tenant = fixture();
    tenant.faults.throttle.reports_per_10s = 1;
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let requests: Vec<Value> = (0..3).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/reports/authenticationMethods/userRegistrationDetails"})).collect();
    let (status, body) = batch(&sim, &token, json!({ "requests": requests })).await;
    assert_eq!(status, 200);
    let throttled: Vec<&Value> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .collect();
    assert_eq!(throttled.len(), 2);
    for response in throttled {
        let retry_after: f64 = response["headers"]["Retry-After"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after > 0.0);
    }
    assert_eq!(sim.stats().throttled, 2);
    sim.shutdown().await;
}
