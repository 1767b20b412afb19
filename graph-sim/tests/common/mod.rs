//! Shared helpers of the graph-sim integration tests.
#![allow(dead_code)]

use graph_sim::{
    start, SimHandle, SimOptions, TenantFile, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
use serde_json::Value;

pub const ADELE: &str = "a1000000-0000-4000-8000-000000000001";
pub const BOB: &str = "a1000000-0000-4000-8000-000000000002";
pub const GUEST: &str = "a1000000-0000-4000-8000-000000000004";

pub fn fixture() -> TenantFile {
    TenantFile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/contoso.json"
    )))
    .unwrap()
}

pub async fn sim(tenant: TenantFile) -> SimHandle {
    start(tenant, SimOptions::default()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn token_for(sim: &SimHandle, client_id: &str, secret: &str) -> reqwest::Response {
    client()
        .post(sim.token_url())
        .form(&[
            ("client_id", client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn token(sim: &SimHandle) -> String {
    let body: Value = token_for(sim, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

pub async fn get(
    sim: &SimHandle,
    token: &str,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", sim.base_url())
    };
    let response = client().get(url).bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}
