//! Fault injection and throttling over real HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::time::{Duration, Instant};

use common::*;
use graph_sim::PathFault;

const RULES: &str = "/v1.0/users/{id}/mailFolders/inbox/messageRules";

fn with_fault(template: &str, fault: PathFault) -> graph_sim::TenantFile {
    let mut tenant = fixture();
    tenant.faults.paths.insert(template.into(), fault);
    tenant
}

#[tokio::test]
async fn injected_503_only_on_its_path_with_retry_after() {
    let sim = sim(with_fault(
        RULES,
        PathFault {
            status: Some(503),
            rate: 1.0,
            retry_after_secs: Some(2.5),
            ..PathFault::default()
        },
    ))
    .await;
    let token = token(&sim).await;
    let (status, headers, body) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{ADELE}/mailFolders/inbox/messageRules"),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "2.500");
    assert!(body["error"]["code"].is_string());
    assert_eq!(get(&sim, &token, "/v1.0/users").await.0, 200);
    assert_eq!(sim.stats().faults_injected, 1);
    sim.shutdown().await;
}

async fn statuses(seed: u64) -> Vec<u16> {
    let mut tenant = with_fault(
        "*",
        PathFault {
            status: Some(500),
            rate: 0.5,
            ..PathFault::default()
        },
    );
    tenant.faults.seed = seed;
    tenant
        .faults
        .paths
        .insert("/{tenant}/oauth2/v2.0/token".into(), PathFault::default());
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let mut out = Vec::new();
    for top in 1..=24 {
        out.push(
            get(&sim, &token, &format!("/v1.0/users?$top={top}"))
                .await
                .0,
        );
    }
    sim.shutdown().await;
    out
}

#[tokio::test]
async fn faults_are_reproducible_from_the_seed() {
    let first = statuses(7).await;
    assert_eq!(first, statuses(7).await);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
    assert_ne!(first, statuses(8).await);
}

#[tokio::test]
async fn malformed_truncated_and_reset() {
    let sim = sim(with_fault(
        "/v1.0/domains",
        PathFault {
            malformed_rate: 1.0,
            ..PathFault::default()
        },
    ))
    .await;
    let token = token(&sim).await;
    let response = client()
        .get(format!("{}/v1.0/domains", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<serde_json::Value>(&response.text().await.unwrap()).is_err());
    sim.set_faults(graph_sim::Faults {
        paths: [(
            "/v1.0/domains".to_string(),
            PathFault {
                truncated_rate: 1.0,
                ..PathFault::default()
            },
        )]
        .into(),
        ..Default::default()
    });
    let text = client()
        .get(format!("{}/v1.0/domains", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("{\"@odata.context\""));
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
    sim.set_faults(graph_sim::Faults {
        paths: [(
            "/v1.0/domains".to_string(),
            PathFault {
                reset_rate: 1.0,
                ..PathFault::default()
            },
        )]
        .into(),
        ..Default::default()
    });
    assert!(client()
        .get(format!("{}/v1.0/domains", sim.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .is_err());
    assert_eq!(sim.stats().connection_resets, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_is_added() {
    let sim = sim(with_fault(
        "/v1.0/organization",
        PathFault {
            latency_ms: Some([150, 150]),
            ..PathFault::default()
        },
    ))
    .await;
    let token = token(&sim).await;
    let started = Instant::now();
    assert_eq!(get(&sim, &token, "/v1.0/organization").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.shutdown().await;
}

#[tokio::test]
async fn identity_bucket_throttles_and_punishes_early_retries() {
    let mut tenant = fixture();
    tenant.faults.throttle.identity_ru_per_10s = Some(4);
    tenant.faults.throttle.fractional_retry_after = false;
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    assert_eq!(get(&sim, &token, "/v1.0/users").await.0, 200);
    assert_eq!(get(&sim, &token, "/v1.0/users").await.0, 200);
    let (status, headers, body) = get(&sim, &token, "/v1.0/users").await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert!(headers.get("x-ms-throttle-scope").is_some());
    let first: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    let (_, headers, _) = get(&sim, &token, "/v1.0/users").await;
    let second: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        second > first,
        "early retry extends the penalty: {first} then {second}"
    );
    assert_eq!(sim.stats().throttled, 2);
    sim.shutdown().await;
}

/// "x-ms-throttle-limit-percentage - Returned only when the application consumed more than
/// 0.8 of its limit. The value ranges from 0.8 to 1.8"
/// (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>).
#[tokio::test]
async fn identity_answers_warn_past_eight_tenths_of_the_budget() {
    let mut tenant = fixture();
    tenant.faults.throttle.identity_ru_per_10s = Some(20);
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let mut seen = Vec::new();
    loop {
        let (status, headers, _) = get(&sim, &token, "/v1.0/organization").await;
        if status == 429 {
            break;
        }
        let unit: f64 = headers["x-ms-resource-unit"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let warning = headers
            .get("x-ms-throttle-limit-percentage")
            .map(|v| v.to_str().unwrap().parse::<f64>().unwrap());
        seen.push((unit, warning));
        assert!(seen.len() < 40, "the bucket of 20 never refused: {seen:?}");
    }
    let mut used = 0.0;
    for (unit, warning) in &seen {
        used += unit / 20.0;
        match warning {
            Some(share) => assert!(
                used > 0.8 - 0.01 && (share - used).abs() < 0.02 && *share <= 1.8,
                "warned {share} at {used}: {seen:?}"
            ),
            None => assert!(used <= 0.8 + 0.01, "no warning at {used}: {seen:?}"),
        }
    }
    assert!(seen.iter().any(|(_, w)| w.is_some()), "{seen:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn mailbox_concurrency_limit_is_four() {
    let sim = sim(with_fault(
        RULES,
        PathFault {
            latency_ms: Some([300, 300]),
            ..PathFault::default()
        },
    ))
    .await;
    let token = token(&sim).await;
    let url = format!("/v1.0/users/{ADELE}/mailFolders/inbox/messageRules");
    let calls = (0..6).map(|_| get(&sim, &token, &url));
    let results = futures::future::join_all(calls).await;
    let throttled: Vec<_> = results.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(
        throttled.len(),
        2,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(throttled[0].2["error"]["code"], "ApplicationThrottled");
    sim.shutdown().await;
}

#[tokio::test]
async fn forbidden_roles_and_non_premium() {
    let mut tenant = fixture();
    tenant.faults.forbidden_roles = vec!["MailboxSettings.Read".into()];
    tenant.faults.non_premium = true;
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let (status, _, body) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{ADELE}/mailFolders/inbox/messageRules"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("ErrorAccessDenied"))
    );
    let (status, _, body) = get(
        &sim,
        &token,
        "/v1.0/reports/authenticationMethods/userRegistrationDetails",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            403,
            Some("Authentication_RequestFromNonPremiumTenantOrB2CTenant")
        )
    );
    sim.shutdown().await;
}
