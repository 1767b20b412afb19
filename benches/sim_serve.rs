//! Bench: how fast graph-sim serves a 100k-user tenant to reqwest over loopback: sequential
//! paging of `/v1.0/users` (following `@odata.nextLink`) and `$batch` requests of 20 inbox-rule
//! reads at 8 in flight, as the collector sends them.
//!
//! Run: `cargo bench --bench sim_serve`. Prints a markdown table for BENCHMARKS.md.

mod common;

use common::BenchError;
use graph_sim::{SimHandle, SimOptions, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use m365_posture::collect::directory::USER_SELECT;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const USERS: usize = 100_000;
const SEED: u64 = 42;
const BATCHES: usize = 500;
const BATCH_SIZE: usize = 20;
const IN_FLIGHT: usize = 8;

async fn token(http: &reqwest::Client, sim: &SimHandle) -> Result<String, BenchError> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let body: Value = http
        .post(sim.token_url())
        .form(&form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "no access_token in the token response".into())
}

/// Pages through `first` to the end; returns (pages, objects, bytes, elapsed).
async fn page_all(
    http: &reqwest::Client,
    bearer: &str,
    first: String,
) -> Result<(usize, usize, usize, Duration), BenchError> {
    let start = Instant::now();
    let (mut pages, mut objects, mut bytes) = (0, 0, 0);
    let mut next = Some(first);
    while let Some(url) = next {
        let text = http
            .get(&url)
            .bearer_auth(bearer)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        bytes += text.len();
        let page: Value = serde_json::from_str(&text)?;
        objects += page
            .get("value")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        next = page
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(str::to_owned);
        pages += 1;
    }
    Ok((pages, objects, bytes, start.elapsed()))
}

fn paging_row(label: &str, result: (usize, usize, usize, Duration)) -> Vec<String> {
    let (pages, objects, bytes, took) = result;
    let secs = took.as_secs_f64().max(1e-9);
    vec![
        label.to_owned(),
        pages.to_string(),
        objects.to_string(),
        common::ms(took),
        format!("{:.0}", pages as f64 / secs),
        format!("{:.0}", objects as f64 / secs),
        format!("{:.1}", bytes as f64 / secs / 1_048_576.0),
    ]
}

fn batch_body(users: &[String]) -> Value {
    let requests: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            json!({"id": (i + 1).to_string(), "method": "GET",
                   "url": format!("/users/{user}/mailFolders/inbox/messageRules")})
        })
        .collect();
    json!({ "requests": requests })
}

/// `BATCHES` batches of `BATCH_SIZE` inbox-rule reads, `IN_FLIGHT` at once.
async fn batches(
    http: &reqwest::Client,
    sim: &SimHandle,
    bearer: &str,
    mailboxes: &[String],
) -> Result<Vec<String>, BenchError> {
    let url = format!("{}/v1.0/$batch", sim.base_url());
    let bodies: Vec<Value> = mailboxes
        .chunks(BATCH_SIZE)
        .take(BATCHES)
        .map(batch_body)
        .collect();
    let start = Instant::now();
    let mut done = 0usize;
    for wave in bodies.chunks(IN_FLIGHT) {
        let sends = wave.iter().map(|body| async {
            http.post(&url)
                .bearer_auth(bearer)
                .json(body)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await
        });
        for result in futures::future::join_all(sends).await {
            result?;
            done += 1;
        }
    }
    let took = start.elapsed();
    let secs = took.as_secs_f64().max(1e-9);
    Ok(vec![
        format!("$batch of {BATCH_SIZE} inbox-rule GETs, {IN_FLIGHT} in flight"),
        done.to_string(),
        (done * BATCH_SIZE).to_string(),
        common::ms(took),
        format!("{:.0}", done as f64 / secs),
        format!("{:.0}", (done * BATCH_SIZE) as f64 / secs),
        "n/a".to_owned(),
    ])
}

async fn run() -> Result<(), BenchError> {
    let tenant = graph_sim::generate(USERS, SEED);
    let mailboxes = tenant.mailboxes.clone();
    let sim = graph_sim::start(tenant, SimOptions::default()).await?;
    let http = reqwest::Client::new();
    let bearer = token(&http, &sim).await?;
    let base = format!("{}/v1.0/users", sim.base_url());
    let mut rows = Vec::new();
    let full = format!("{base}?$select={USER_SELECT}&$top=999");
    rows.push(paging_row(
        "/users $select (18 props) $top=999",
        page_all(&http, &bearer, full).await?,
    ));
    rows.push(paging_row(
        "/users default props, default page (100)",
        page_all(&http, &bearer, base).await?,
    ));
    rows.push(batches(&http, &sim, &bearer, &mailboxes).await?);
    println!("\n### graph-sim serving a {USERS}-user tenant over loopback (one reqwest client)\n");
    common::print_table(
        &[
            "workload",
            "HTTP requests",
            "objects / sub-requests",
            "wall ms",
            "HTTP requests/s",
            "objects or sub-requests/s",
            "MiB/s",
        ],
        &rows,
    );
    sim.shutdown().await;
    Ok(())
}

fn main() -> Result<(), BenchError> {
    common::print_machine();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())?;
    println!("\nload average after: {}", common::load_average());
    Ok(())
}
