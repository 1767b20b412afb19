//! The client secret's expiry from the agent's own application registration, against
//! graph-sim: `/applications` with `$select=...,passwordCredentials` returns the agent's app
//! (appId = the tenant's client id) and its secrets' `hint` and `endDateTime`
//! (learn.microsoft.com/graph/api/resources/passwordcredential); the secret whose hint is the
//! first three characters of the configured secret sets
//! `m365_posture_credential_expiry_timestamp_seconds`, so `M365PostureCredentialExpiring`
//! fires for secrets. Without the registration in the tenant, the metric stays absent.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use serde_json::json;
use support::*;

const SECRET_END: &str = "2027-01-10T08:00:00Z";

/// The contoso fixture plus the agent's own registration with two secrets: the one in use
/// (hint "sim", as graph-sim's default secret "sim-secret") and an older one.
fn tenant_with_agent_app() -> graph_sim::TenantFile {
    let mut tenant = contoso();
    let mut app = tenant.applications[0].clone();
    app["id"] = json!("5f0c3a2e-7c1b-4b8e-9a77-0d3e6f1a2b3c");
    app["appId"] = json!(graph_sim::DEFAULT_CLIENT_ID);
    app["displayName"] = json!("m365-posture");
    app["certification"] = json!(null);
    let secret = |key: &str, hint: &str, end: &str| {
        json!({"customKeyIdentifier": null, "displayName": "agent", "endDateTime": end,
               "hint": hint, "keyId": key, "secretText": null,
               "startDateTime": "2026-01-10T08:00:00Z"})
    };
    app["passwordCredentials"] = json!([
        secret("0e5d7a1c-1111-4a7e-9f00-000000000001", "sim", SECRET_END),
        secret(
            "0e5d7a1c-2222-4a7e-9f00-000000000002",
            "old",
            "2026-06-01T00:00:00Z"
        ),
    ]);
    tenant.applications.push(app);
    tenant
}

#[tokio::test]
async fn secret_expiry_comes_from_the_agents_own_application() {
    let sim = sim(tenant_with_agent_app()).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = collect(&ctx).await;
    assert!(report.error.is_none(), "{:?}", report.error);
    let expiry = ctx
        .metrics
        .credential_expiry
        .with_label_values(&["contoso"])
        .get();
    let want: chrono::DateTime<chrono::Utc> = SECRET_END.parse().unwrap();
    assert_eq!(expiry, want.timestamp());
}

#[tokio::test]
async fn without_the_registration_in_the_tenant_no_expiry_is_claimed() {
    let sim = sim(contoso()).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    collect(&ctx).await;
    let text = m365_posture::sinks::metrics::render(&ctx.metrics).unwrap();
    assert!(
        !text.contains("m365_posture_credential_expiry_timestamp_seconds{"),
        "{text}"
    );
}
