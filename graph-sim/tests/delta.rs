//! The delta functions over real HTTP, against what Microsoft documents
//! (learn.microsoft.com/graph/delta-query-overview, /graph/api/user-delta,
//! /graph/api/application-delta, /graph/api/serviceprincipal-delta, /graph/errors).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::*;
use graph_sim::{generate, CollectionName, Faults, Mutation, PathFault, SimHandle};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Follows one delta round from `url`: every object of every page, and the deltaLink.
async fn round(sim: &SimHandle, token: &str, url: &str) -> (Vec<Value>, String, usize) {
    let mut next = url.to_string();
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let (status, _, body) = get(sim, token, &next).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        items.extend(body["value"].as_array().unwrap().iter().cloned());
        if let Some(link) = body["@odata.nextLink"].as_str() {
            assert!(body.get("@odata.deltaLink").is_none());
            assert!(link.contains("$skiptoken="), "{link}");
            next = link.to_string();
            continue;
        }
        let delta = body["@odata.deltaLink"]
            .as_str()
            .expect("last page has a deltaLink");
        assert!(delta.contains("$deltatoken="), "{delta}");
        return (items, delta.to_string(), pages);
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_initial_round_pages_then_gives_a_delta_link_and_select_is_kept_in_the_tokens() {
    let sim = sim(generate(250, 7)).await;
    let token = token(&sim).await;
    let (items, delta, pages) = round(
        &sim,
        &token,
        "/v1.0/users/delta?$select=id,mail,accountEnabled",
    )
    .await;
    assert_eq!(items.len(), 250);
    assert_eq!(ids(&items).len(), 250);
    assert_eq!(pages, 3, "100 users a page");
    // Only the selected properties come back, on every page (the tokens carry $select).
    for item in &items {
        let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert!(
            keys.iter()
                .all(|k| ["id", "mail", "accountEnabled"].contains(&k.as_str())),
            "{item}"
        );
    }
    // Unchanged tenant: one request, no objects.
    let (changes, _, pages) = round(&sim, &token, &delta).await;
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(pages, 1);
    assert_eq!(sim.stats().requests_to("/v1.0/users/delta"), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_delta_link_returns_only_changes_and_removals() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let (_, delta, _) = round(&sim, &token, "/v1.0/users/delta?$select=id,accountEnabled").await;
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: ADELE.into(),
        changes: json!({"accountEnabled": false}),
    })
    .unwrap();
    // A property that is not selected is not tracked.
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: GUEST.into(),
        changes: json!({"jobTitle": "Auditor"}),
    })
    .unwrap();
    sim.apply(Mutation::Remove {
        collection: CollectionName::Users,
        id: BOB.into(),
    })
    .unwrap();
    sim.apply(Mutation::Upsert {
        collection: CollectionName::Users,
        object: json!({"id": "new-user", "accountEnabled": true}),
    })
    .unwrap();
    let (changes, next, _) = round(&sim, &token, &delta).await;
    let by_id: BTreeMap<&str, &Value> = changes
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c))
        .collect();
    assert_eq!(by_id.len(), 3, "{changes:?}");
    assert_eq!(by_id[ADELE]["accountEnabled"], false);
    assert_eq!(by_id["new-user"]["accountEnabled"], true);
    assert_eq!(by_id[BOB]["@removed"]["reason"], "changed");
    assert!(!by_id.contains_key(GUEST));
    let (after, _, _) = round(&sim, &token, &next).await;
    assert!(after.is_empty(), "{after:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn applications_and_service_principals_have_delta_too() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let tenant = sim.tenant();
    for (path, count) in [
        (
            "/v1.0/applications/delta?$select=id,displayName",
            tenant.applications.len(),
        ),
        (
            "/v1.0/servicePrincipals/delta?$select=id,accountEnabled",
            tenant.service_principals.len(),
        ),
    ] {
        let (items, delta, _) = round(&sim, &token, path).await;
        assert_eq!(items.len(), count, "{path}");
        let (changes, _, _) = round(&sim, &token, &delta).await;
        assert!(changes.is_empty(), "{path}");
    }
    let sp = tenant.service_principals[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, delta, _) = round(
        &sim,
        &token,
        "/v1.0/servicePrincipals/delta?$select=id,accountEnabled",
    )
    .await;
    sim.apply(Mutation::Remove {
        collection: CollectionName::ServicePrincipals,
        id: sp.clone(),
    })
    .unwrap();
    let (changes, _, _) = round(&sim, &token, &delta).await;
    assert_eq!(
        changes,
        vec![json!({"id": sp, "@removed": {"reason": "changed"}})]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn latest_gives_a_delta_link_without_objects() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let (items, delta, pages) = round(
        &sim,
        &token,
        "/v1.0/users/delta?$select=id&$deltatoken=latest",
    )
    .await;
    assert!(items.is_empty());
    assert_eq!(pages, 1);
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: ADELE.into(),
        changes: json!({"id": ADELE}),
    })
    .unwrap();
    let (changes, _, _) = round(&sim, &token, &delta).await;
    assert!(changes.is_empty(), "no tracked change: {changes:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_answer_sync_state_not_found_and_a_reset_answers_410_with_location() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let (_, delta, _) = round(&sim, &token, "/v1.0/users/delta?$select=id,mail").await;
    sim.expire_delta_tokens();
    let (status, _, body) = get(&sim, &token, &delta).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "syncStateNotFound");
    // A fresh round gets a working token again.
    let (_, delta, _) = round(&sim, &token, "/v1.0/users/delta?$select=id,mail").await;
    round(&sim, &token, &delta).await;
    sim.reset_delta_tokens();
    let (status, headers, body) = get(&sim, &token, &delta).await;
    assert_eq!(status, 410, "{body}");
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with(&sim.base_url()), "{location}");
    assert!(location.ends_with("$deltatoken="), "{location}");
    let (items, _, _) = round(&sim, &token, location).await;
    assert_eq!(items.len(), sim.tenant().users.len());
    assert!(items
        .iter()
        .all(|u| u.get("mail").is_some() || u.as_object().unwrap().len() == 1));
    // A token that was never issued is refused the same way.
    let (status, _, body) = get(&sim, &token, "/v1.0/users/delta?$deltatoken=bm9wZQ").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("syncStateNotFound"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn documented_refusals() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    // $top is not supported for users; $select with a $skiptoken is not supported.
    let (status, _, _) = get(&sim, &token, "/v1.0/users/delta?$top=10").await;
    assert_eq!(status, 400);
    sim.mutate(|t| {
        for i in 0..150 {
            t.users.push(json!({"id": format!("x{i}")}));
        }
    });
    let (_, _, body) = get(&sim, &token, "/v1.0/users/delta?$select=id").await;
    let next = body["@odata.nextLink"].as_str().unwrap();
    let (status, _, _) = get(&sim, &token, &format!("{next}&$select=mail")).await;
    assert_eq!(status, 400);
    // Properties stored outside the directory cannot be tracked (the overview's skills example).
    let (status, _, body) = get(&sim, &token, "/v1.0/users/delta?$select=id,skills").await;
    assert_eq!(status, 501, "{body}");
    // The permission is the listing's.
    let limited = graph_sim::ClientRegistration {
        client_id: "c2".into(),
        client_secret: Some("s2".into()),
        certificate_pem: None,
        roles: vec!["Domain.Read.All".into()],
    };
    sim.mutate(|t| t.clients = Some(vec![limited]));
    let body: Value = token_for(&sim, "c2", "s2").await.json().await.unwrap();
    let narrow = body["access_token"].as_str().unwrap();
    for path in [
        "/v1.0/users/delta",
        "/v1.0/applications/delta",
        "/v1.0/servicePrincipals/delta",
    ] {
        let (status, _, body) = get(&sim, narrow, path).await;
        assert_eq!(status, 403, "{path}");
        assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn delta_pages_count_against_the_identity_bucket_and_faults_can_hit_later_pages_only() {
    let mut tenant = generate(250, 3);
    tenant.faults = Faults {
        paths: BTreeMap::from([(
            "/v1.0/users/delta".to_string(),
            PathFault {
                status: Some(503),
                rate: 1.0,
                query_contains: Some("$skiptoken".into()),
                ..Default::default()
            },
        )]),
        ..Default::default()
    };
    tenant.faults.throttle.identity_ru_per_10s = Some(5);
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let (status, headers, body) = get(&sim, &token, "/v1.0/users/delta?$select=id").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-ms-resource-unit"], "1");
    let next = body["@odata.nextLink"].as_str().unwrap().to_string();
    let (status, _, _) = get(&sim, &token, &next).await;
    assert_eq!(status, 503, "a later page fails");
    // Five units per 10 s: the bucket runs dry on delta pages as on listings.
    let mut throttled = false;
    for _ in 0..6 {
        let (status, _, _) = get(&sim, &token, "/v1.0/users/delta?$select=id").await;
        throttled |= status == 429;
    }
    assert!(throttled);
    sim.shutdown().await;
}
