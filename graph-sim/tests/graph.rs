//! Graph endpoints of the simulator over real HTTP: tokens, paging, `$select`, errors, stats.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::*;
use graph_sim::{ClientRegistration, DEFAULT_CLIENT_ID};
use serde_json::Value;

#[tokio::test]
async fn secret_in_body_and_basic_both_get_tokens() {
    let sim = sim(fixture()).await;
    let body: Value = token_for(&sim, DEFAULT_CLIENT_ID, "sim-secret")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        body["expires_in"].is_u64(),
        "expires_in must be a number: {body}"
    );
    let basic = client()
        .post(sim.token_url())
        .basic_auth(DEFAULT_CLIENT_ID, Some("sim-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn token_errors_carry_aadsts_codes() {
    let sim = sim(fixture()).await;
    let bad = token_for(&sim, DEFAULT_CLIENT_ID, "wrong").await;
    assert_eq!(bad.status(), 401);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7000215);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215:"));
    for key in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body.get(key).is_some(), "{key} missing");
    }
    let unknown = token_for(&sim, "99999999-9999-9999-9999-999999999999", "x").await;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("unauthorized_client"), Some(700016))
    );
    let wrong_tenant = client()
        .post(format!(
            "{}/nosuch.example/oauth2/v2.0/token",
            sim.base_url()
        ))
        .form(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "sim-secret"),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = wrong_tenant.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 90002);
    let scope = client()
        .post(sim.token_url())
        .form(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "sim-secret"),
            ("grant_type", "client_credentials"),
            ("scope", "User.Read.All"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(scope.status(), 400);
    let body: Value = scope.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope");
    sim.shutdown().await;
}

#[tokio::test]
async fn tenant_domain_is_accepted_as_tenant() {
    let sim = sim(fixture()).await;
    let response = client()
        .post(format!(
            "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
            sim.base_url()
        ))
        .form(&[
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", "sim-secret"),
            ("grant_type", "client_credentials"),
            ("scope", format!("{}/.default", sim.base_url()).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn users_without_select_lack_select_only_properties() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let (status, headers, body) = get(&sim, &token, "/v1.0/users").await;
    assert_eq!(status, 200);
    assert!(headers.get("request-id").is_some());
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json;odata.metadata=minimal"));
    let first = &body["value"][0];
    assert!(first.get("displayName").is_some());
    assert!(
        first.get("accountEnabled").is_none(),
        "accountEnabled is $select-only"
    );
    let (_, _, selected) = get(
        &sim,
        &token,
        "/v1.0/users?$select=id,accountEnabled,passwordPolicies",
    )
    .await;
    let bob = selected["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == BOB)
        .unwrap();
    assert_eq!(bob["accountEnabled"], false);
    assert!(bob.get("displayName").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn strict_client_sees_every_user_exactly_once() {
    let tenant = graph_sim::generate(1234, 5);
    let expected: Vec<String> = tenant
        .users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let mut next = Some(format!(
        "{}/v1.0/users?$select=id,userType&$top=100",
        sim.base_url()
    ));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next {
        assert!(
            url.starts_with(&sim.base_url()),
            "nextLink must be absolute on the simulator: {url}"
        );
        let (status, _, body) = get(&sim, &token, &url).await;
        assert_eq!(status, 200, "{body}");
        seen.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap().to_string()),
        );
        next = body
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(str::to_string);
        pages += 1;
    }
    assert_eq!(pages, 13);
    assert_eq!(seen, expected);
    sim.shutdown().await;
}

#[tokio::test]
async fn top_above_999_and_unknown_select_are_rejected() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let (status, _, body) = get(&sim, &token, "/v1.0/users?$top=1000").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "Request_BadRequest");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    let (status, _, _) = get(&sim, &token, "/v1.0/users?$select=nosuch").await;
    assert_eq!(status, 400);
    let (status, _, body) = get(&sim, &token, "/v1.0/users?$select=id,mailboxSettings").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (501, Some("NotImplemented"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_or_expired_token_is_401() {
    let sim = sim(fixture()).await;
    let (status, _, body) = get(&sim, "", "/v1.0/users").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("InvalidAuthenticationToken"))
    );
    let token = token(&sim).await;
    sim.expire_access_tokens();
    let (status, _, body) = get(&sim, &token, "/v1.0/users").await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["message"],
        "Lifetime validation failed, the token is expired."
    );
    sim.set_token_lifetime(std::time::Duration::from_millis(300));
    let short = common::token(&sim).await;
    assert_eq!(get(&sim, &short, "/v1.0/organization").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(get(&sim, &short, "/v1.0/organization").await.0, 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn client_with_fewer_roles_gets_403_with_the_right_code() {
    let mut tenant = fixture();
    tenant.clients = Some(vec![ClientRegistration {
        client_id: "22222222-2222-2222-2222-222222222222".into(),
        client_secret: Some("s2".into()),
        certificate_pem: None,
        roles: vec!["User.Read.All".into()],
    }]);
    let sim = sim(tenant).await;
    let body: Value = token_for(&sim, "22222222-2222-2222-2222-222222222222", "s2")
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(get(&sim, token, "/v1.0/users").await.0, 200);
    let (status, _, body) = get(&sim, token, "/v1.0/domains").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("Authorization_RequestDenied"))
    );
    let (status, _, body) = get(
        &sim,
        token,
        &format!("/v1.0/users/{ADELE}/mailFolders/inbox/messageRules"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("ErrorAccessDenied"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn mailbox_paths_and_their_errors() {
    let mut tenant = fixture();
    tenant.faults.denied_mailboxes = vec![BOB.to_string()];
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let (status, _, rules) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{ADELE}/mailFolders/inbox/messageRules"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(rules["value"].as_array().unwrap().len(), 2);
    let (status, _, body) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{GUEST}/calendar/calendarPermissions"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("MailboxNotEnabledForRESTAPI"))
    );
    let (status, _, body) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{BOB}/calendar/calendarPermissions"),
    )
    .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (403, Some("Access to OData is disabled."))
    );
    let (status, _, body) = get(
        &sim,
        &token,
        "/v1.0/users/adele@contoso.com/mailboxSettings",
    )
    .await;
    assert_eq!((status, body["userPurpose"].as_str()), (200, Some("user")));
    let (status, _, _) = get(
        &sim,
        &token,
        "/v1.0/users/nobody/mailFolders/inbox/messageRules",
    )
    .await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn typed_method_lists_and_registration_report() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let (_, _, fido) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{ADELE}/authentication/fido2Methods"),
    )
    .await;
    assert_eq!(fido["value"].as_array().unwrap().len(), 1);
    assert_eq!(fido["value"][0]["attestationLevel"], "notAttested");
    let (_, _, all) = get(
        &sim,
        &token,
        &format!("/v1.0/users/{ADELE}/authentication/methods"),
    )
    .await;
    assert_eq!(all["value"].as_array().unwrap().len(), 3);
    let filter = "methodsRegistered/any(m:m eq 'passKeyDeviceBound') or methodsRegistered/any(m:m eq 'temporaryAccessPass')";
    let url = format!(
        "/v1.0/reports/authenticationMethods/userRegistrationDetails?$filter={}",
        urlencode(filter)
    );
    let (status, _, report) = get(&sim, &token, &url).await;
    assert_eq!(status, 200, "{report}");
    let ids: Vec<&str> = report["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![ADELE, BOB]);
    sim.shutdown().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn advanced_query_needs_consistency_level() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let url = format!(
        "{}/v1.0/users?$filter={}&$count=true",
        sim.base_url(),
        urlencode("userType ne 'Guest'")
    );
    let (status, _, body) = get(&sim, &token, &url).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("Request_UnsupportedQuery"))
    );
    let response = client()
        .get(&url)
        .bearer_auth(&token)
        .header("ConsistencyLevel", "eventual")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["@odata.count"], 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn stats_count_by_template_and_status() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    get(
        &sim,
        &token,
        &format!("/v1.0/users/{ADELE}/mailFolders/inbox/messageRules"),
    )
    .await;
    get(
        &sim,
        &token,
        &format!("/v1.0/users/{GUEST}/mailFolders/inbox/messageRules"),
    )
    .await;
    let stats = sim.stats();
    assert_eq!(
        stats.count("/v1.0/users/{id}/mailFolders/inbox/messageRules", 200),
        1
    );
    assert_eq!(
        stats.count("/v1.0/users/{id}/mailFolders/inbox/messageRules", 404),
        1
    );
    assert_eq!(stats.count("/{tenant}/oauth2/v2.0/token", 200), 1);
    assert!(stats.bytes_sent > 0);
    let over_http: graph_sim::Stats = client()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        over_http.count("/v1.0/users/{id}/mailFolders/inbox/messageRules", 404),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn mutations_show_up_on_the_next_request() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    sim.mutate(|t| t.remove_user(BOB));
    let response = client()
        .post(format!("{}/_sim/mutate", sim.base_url()))
        .body(r#"{"op": "patch", "collection": "users", "id": "a1000000-0000-4000-8000-000000000001", "changes": {"accountEnabled": false}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, _, users) = get(&sim, &token, "/v1.0/users?$select=id,accountEnabled").await;
    let list = users["value"].as_array().unwrap();
    assert!(list.iter().all(|u| u["id"] != BOB));
    assert_eq!(
        list.iter().find(|u| u["id"] == ADELE).unwrap()["accountEnabled"],
        false
    );
    sim.shutdown().await;
}

/// `lastUpdatedDateTime` of a derived registration row moves only when that user's
/// `methodsRegistered` change, so a client can tell which users' methods may have changed.
#[tokio::test]
async fn registration_rows_keep_their_update_time_until_their_methods_change() {
    let sim = sim(fixture()).await;
    let token = token(&sim).await;
    let report = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
    let updated = |body: &Value, user: &str| {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == user)
            .map(|r| r["lastUpdatedDateTime"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (_, _, before) = get(&sim, &token, report).await;
    // The rows' time has a resolution of one second.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    sim.mutate(|t| {
        let methods = t.authentication_methods.entry(BOB.into()).or_default();
        methods.push(serde_json::json!({
            "@odata.type": "#microsoft.graph.emailAuthenticationMethod",
            "id": "email-1", "emailAddress": "bob@example.net"}));
    });
    let (_, _, after) = get(&sim, &token, report).await;
    assert_eq!(updated(&before, ADELE), updated(&after, ADELE));
    assert_ne!(updated(&before, BOB), updated(&after, BOB));
    sim.shutdown().await;
}
