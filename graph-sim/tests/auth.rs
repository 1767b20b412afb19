//! Token endpoint flows: client assertions, refresh-token rotation, device code, roles claim.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::disallowed_methods
)] // test code

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use graph_sim::{ClientRegistration, SimHandle};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::Digest;

const CERT_CLIENT: &str = "33333333-3333-3333-3333-333333333333";
const CERT: &str = include_str!("fixtures/client-cert.pem");
const KEY: &str = include_str!("fixtures/client-key.pem");
const OTHER_KEY: &str = include_str!("fixtures/other-key.pem");

fn der() -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(CERT.as_bytes())
        .unwrap()
        .1
        .contents
}

async fn cert_sim() -> SimHandle {
    let mut tenant = fixture();
    tenant.clients = Some(vec![
        ClientRegistration {
            client_id: CERT_CLIENT.into(),
            client_secret: None,
            certificate_pem: Some(CERT.into()),
            roles: vec!["User.Read.All".into(), "Domain.Read.All".into()],
        },
        ClientRegistration {
            client_id: graph_sim::DEFAULT_CLIENT_ID.into(),
            client_secret: Some("sim-secret".into()),
            certificate_pem: None,
            roles: graph_sim::ALL_ROLES.iter().map(|r| r.to_string()).collect(),
        },
    ]);
    sim(tenant).await
}

fn assertion(alg: Algorithm, key: &str, claims: Value) -> String {
    let mut header = Header::new(alg);
    match alg {
        Algorithm::PS256 => {
            header.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der())))
        }
        _ => header.x5t = Some(URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der()))),
    }
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn claims(sim: &SimHandle) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"aud": sim.token_url(), "iss": CERT_CLIENT, "sub": CERT_CLIENT, "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "exp": now + 300})
}

async fn redeem(sim: &SimHandle, jwt: &str) -> (u16, Value) {
    let response = client()
        .post(sim.token_url())
        .form(&[
            ("client_id", CERT_CLIENT),
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", jwt),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn payload(jwt: &str) -> Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn rs256_and_ps256_assertions_are_accepted_and_tokens_carry_roles() {
    let sim = cert_sim().await;
    for alg in [Algorithm::RS256, Algorithm::PS256] {
        let (status, body) = redeem(&sim, &assertion(alg, KEY, claims(&sim))).await;
        assert_eq!(status, 200, "{alg:?}: {body}");
        let roles = payload(body["access_token"].as_str().unwrap())["roles"].clone();
        assert_eq!(roles, json!(["User.Read.All", "Domain.Read.All"]));
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(get(&sim, token, "/v1.0/domains").await.0, 200);
        assert_eq!(get(&sim, token, "/v1.0/applications").await.0, 403);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_assertions_are_refused_with_their_codes() {
    let sim = cert_sim().await;
    let replay = assertion(Algorithm::RS256, KEY, claims(&sim));
    assert_eq!(redeem(&sim, &replay).await.0, 200);
    let cases: Vec<(String, u64)> = vec![
        (replay, 50012),
        (assertion(Algorithm::RS256, OTHER_KEY, claims(&sim)), 700027),
        (
            assertion(Algorithm::RS256, KEY, {
                let mut c = claims(&sim);
                c["aud"] = json!("https://login.microsoftonline.com/other/oauth2/v2.0/token");
                c
            }),
            50012,
        ),
        (
            assertion(Algorithm::PS256, KEY, {
                let mut c = claims(&sim);
                c["iss"] = json!("someone-else");
                c
            }),
            700021,
        ),
        (
            assertion(Algorithm::RS256, KEY, {
                let mut c = claims(&sim);
                c["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
                c
            }),
            700024,
        ),
        ("not.a.jwt".to_string(), 50027),
    ];
    for (jwt, code) in cases {
        let (status, body) = redeem(&sim, &jwt).await;
        assert!(status == 401 || status == 400, "{body}");
        assert_eq!(body["error_codes"][0], code, "{body}");
    }
    sim.shutdown().await;
}

async fn post_form(sim: &SimHandle, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(format!("{}/{}/{path}", sim.base_url(), sim.tenant_id()))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn device_tokens(sim: &SimHandle) -> Value {
    device_tokens_for(
        sim,
        "offline_access https://graph.microsoft.com/User.Read.All",
    )
    .await
}

async fn device_tokens_for(sim: &SimHandle, scope: &str) -> Value {
    let client_id = graph_sim::DEFAULT_CLIENT_ID;
    let (status, start) = post_form(
        sim,
        "oauth2/v2.0/devicecode",
        &[("client_id", client_id), ("scope", scope)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (start["expires_in"].as_u64(), start["interval"].as_u64()),
        (Some(900), Some(5))
    );
    let device_code = start["device_code"].as_str().unwrap();
    let poll = [
        ("client_id", client_id),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code),
    ];
    let (status, pending) = post_form(sim, "oauth2/v2.0/token", &poll).await;
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert!(sim.approve_device_code(start["user_code"].as_str().unwrap()));
    let (status, tokens) = post_form(sim, "oauth2/v2.0/token", &poll).await;
    assert_eq!(status, 200, "{tokens}");
    let (_, reused) = post_form(sim, "oauth2/v2.0/token", &poll).await;
    assert_eq!(reused["error"], "invalid_grant");
    tokens
}

#[tokio::test]
async fn device_code_then_refresh_rotation_and_its_failures() {
    let sim = sim(fixture()).await;
    let tokens = device_tokens(&sim).await;
    assert_eq!(
        payload(tokens["access_token"].as_str().unwrap())["scp"],
        "User.Read.All"
    );
    assert_eq!(
        get(
            &sim,
            tokens["access_token"].as_str().unwrap(),
            "/v1.0/users"
        )
        .await
        .0,
        200
    );
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let sim = &sim;
        async move {
            post_form(
                sim,
                "oauth2/v2.0/token",
                &[
                    ("client_id", graph_sim::DEFAULT_CLIENT_ID),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    (
                        "scope",
                        "offline_access https://graph.microsoft.com/User.Read.All",
                    ),
                ],
            )
            .await
        }
    };
    let (status, rotated) = refresh(first.clone()).await;
    assert_eq!(status, 200);
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second, "every refresh returns a new refresh token");
    sim.set_require_mfa(true);
    let (_, mfa) = refresh(second.clone()).await;
    assert_eq!(
        (mfa["error_codes"][0].as_u64(), mfa["suberror"].as_str()),
        (Some(50076), Some("basic_action"))
    );
    sim.set_require_mfa(false);
    sim.set_refresh_token_inactivity(std::time::Duration::ZERO);
    assert_eq!(refresh(second.clone()).await.1["error_codes"][0], 700082);
    sim.set_refresh_token_inactivity(std::time::Duration::from_secs(3600));
    sim.revoke_refresh_tokens();
    assert_eq!(refresh(second).await.1["error_codes"][0], 50173);
    sim.shutdown().await;
}

/// calendarPermission resource type: listing "is supported on behalf of only the calendar
/// owner", and a delegate gets an empty collection; other mailbox paths of other users are 403.
#[tokio::test]
async fn delegates_list_an_empty_calendar_of_others_and_are_refused_their_rules() {
    let sim = sim(fixture()).await;
    let scope = "offline_access https://graph.microsoft.com/Calendars.ReadBasic https://graph.microsoft.com/MailboxSettings.Read";
    let tokens = device_tokens_for(&sim, scope).await;
    let access = tokens["access_token"].as_str().unwrap();
    let me = payload(access)["oid"].as_str().unwrap().to_owned();
    let other = "a1000000-0000-4000-8000-000000000005";
    assert_ne!(me, other);
    let calendar = |user: &str| format!("/v1.0/users/{user}/calendar/calendarPermissions");
    let (status, _, body) = get(&sim, access, &calendar(other)).await;
    assert_eq!(
        (status, body["value"].clone()),
        (200, serde_json::json!([]))
    );
    let (status, _, body) = get(&sim, access, &calendar(&me)).await;
    assert_eq!(status, 200);
    assert!(!body["value"].as_array().unwrap().is_empty(), "{body}");
    let rules = format!("/v1.0/users/{other}/mailFolders/inbox/messageRules");
    assert_eq!(get(&sim, access, &rules).await.0, 403);
    sim.shutdown().await;
}

#[tokio::test]
async fn declined_device_code() {
    let sim = sim(fixture()).await;
    let (_, start) = post_form(
        &sim,
        "oauth2/v2.0/devicecode",
        &[
            ("client_id", graph_sim::DEFAULT_CLIENT_ID),
            ("scope", "User.Read.All"),
        ],
    )
    .await;
    assert!(sim.decline_device_code(start["user_code"].as_str().unwrap()));
    let (_, body) = post_form(
        &sim,
        "oauth2/v2.0/token",
        &[
            ("client_id", graph_sim::DEFAULT_CLIENT_ID),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", start["device_code"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(body["error"], "authorization_declined");
    sim.shutdown().await;
}

#[tokio::test]
async fn discovery_document_points_at_the_simulator() {
    let sim = sim(fixture()).await;
    let doc: Value = client()
        .get(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            sim.base_url(),
            sim.tenant_id()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["token_endpoint"], sim.token_url());
    sim.shutdown().await;
}
