//! Authentication against graph-sim: client assertion accepted and a wrong key refused,
//! secret errors named with their AADSTS code, tokens expiring mid-scan, delegated consent
//! and refresh-token rotation.

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::{ClientRegistration, ALL_ROLES, DEFAULT_CLIENT_ID};
use m365_posture::commands::consent::consent;
use m365_posture::config::TenantAuth;
use m365_posture::graph::RefreshTokenStore;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio_util::sync::CancellationToken;

const CERT: &str = include_str!("fixtures/auth/cert.pem");
const KEY: &str = include_str!("fixtures/auth/key.pem");
const OTHER_KEY: &str = include_str!("fixtures/auth/other-key.pem");

fn certificate_tenant() -> graph_sim::TenantFile {
    let mut tenant = contoso();
    tenant.clients = Some(vec![ClientRegistration {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: None,
        certificate_pem: Some(CERT.into()),
        roles: ALL_ROLES.iter().map(|r| r.to_string()).collect(),
    }]);
    tenant
}

fn certificate_auth(files: &Files, key: &str) -> TenantAuth {
    TenantAuth::Certificate {
        certificate_file: files.write("cert.pem", CERT),
        private_key_file: files.write("key.pem", key),
    }
}

#[tokio::test]
async fn client_assertion_is_accepted() {
    let sim = sim(certificate_tenant()).await;
    let files = Files::new();
    let ctx = context(config(&sim, certificate_auth(&files, KEY)));
    let report = collect(&ctx).await;
    assert_eq!(report.error, None);
    assert!(report.snapshot.users.is_ok());
    assert!(metric_sum(&ctx, "m365_posture_credential_expiry_timestamp_seconds") > 1_700_000_000);
}

#[tokio::test]
async fn client_assertion_with_wrong_key_is_refused_in_words() {
    let sim = sim(certificate_tenant()).await;
    let files = Files::new();
    let report = collect(&context(config(&sim, certificate_auth(&files, OTHER_KEY)))).await;
    let error = report.error.expect("scan must fail");
    assert!(
        error.contains("client assertion refused") && error.ends_with("(AADSTS700027)"),
        "{error}"
    );
    assert!(report.snapshot.users.is_err() && report.snapshot.domains.is_err());
    assert_eq!(
        sim.stats().total_to("/v1.0/users"),
        0,
        "no Graph call without a token"
    );
}

#[tokio::test]
async fn wrong_secret_names_the_cause_without_the_secret() {
    let sim = sim(contoso()).await;
    let files = Files::new();
    let auth = TenantAuth::ClientSecret {
        secret_file: files.write("s", "not-the-secret-value"),
    };
    let error = collect(&context(config(&sim, auth))).await.error.unwrap();
    assert!(
        error.contains("invalid client secret") && error.ends_with("(AADSTS7000215)"),
        "{error}"
    );
    assert!(!error.contains("not-the-secret-value"));
}

#[tokio::test]
async fn tokens_expiring_mid_scan_are_replaced() {
    let mut tenant = contoso();
    tenant.faults =
        serde_json::from_value(json!({"paths": {"*": {"latency_ms": [150, 200]}}})).unwrap();
    let sim = Arc::new(sim(tenant).await);
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let expirer = {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            sim.expire_access_tokens();
        })
    };
    let report = collect(&ctx).await;
    expirer.await.unwrap();
    let stats = sim.stats();
    let rejected: u64 = stats
        .by_template
        .values()
        .filter_map(|codes| codes.get("401"))
        .sum();
    assert!(rejected > 0, "no request met the expired token: {stats:?}");
    assert!(stats.tokens_issued >= 2);
    assert_eq!(report.error, None);
    let snap = report.snapshot;
    assert!(snap.users.is_ok() && snap.domains.is_ok() && snap.service_principals.is_ok());
    assert!(snap.message_rules.is_ok() && snap.calendar_permissions.is_ok());
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_ahead_of_expiry() {
    let mut tenant = contoso();
    tenant.faults =
        serde_json::from_value(json!({"paths": {"*": {"latency_ms": [300, 400]}}})).unwrap();
    let sim = sim(tenant).await;
    sim.set_token_lifetime(Duration::from_secs(1));
    let files = Files::new();
    let report = collect(&context(config(&sim, files.secret()))).await;
    assert_eq!(report.error, None);
    assert!(report.snapshot.users.is_ok() && report.snapshot.message_rules.is_ok());
    assert!(sim.stats().tokens_issued >= 2);
}

#[tokio::test]
async fn delegated_consent_then_refresh_tokens_rotate_and_persist() {
    let sim = sim(contoso()).await;
    sim.set_device_code_interval(1);
    let config = config(&sim, TenantAuth::Delegated);
    let store = Arc::new(MemoryTokens::default());
    let before = collect(&context_with(config.clone(), store.clone())).await;
    assert!(
        before.error.unwrap().contains("consent"),
        "no token stored yet"
    );

    consent(
        &config,
        "contoso",
        store.as_ref(),
        |prompt| {
            assert!(!prompt.user_code.is_empty() && !prompt.verification_uri.is_empty());
            assert!(sim.approve_device_code(&prompt.user_code));
        },
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(store.saves.lock().unwrap().len(), 1);

    for scan in 0..2 {
        let report = collect(&context_with(config.clone(), store.clone())).await;
        assert_eq!(report.error, None, "scan {scan}");
        assert!(report.snapshot.users.is_ok());
    }
    let saves = store.saves.lock().unwrap().clone();
    assert_eq!(saves.len(), 3, "each refresh stores the rotated token");
    assert!(saves[0] != saves[1] && saves[1] != saves[2]);
    assert_eq!(store.load("contoso").unwrap().expose(), saves[2]);

    sim.revoke_refresh_tokens();
    let error = collect(&context_with(config, store.clone()))
        .await
        .error
        .unwrap();
    assert!(
        error.contains("run consent again") && error.contains("AADSTS50173"),
        "{error}"
    );
}
