//! Partial failure against graph-sim faults: inner `$batch` 429 and 5xx are retried per item,
//! outer throttling honours `Retry-After`, and a failing source fails only its own section
//! with a reason (403, throttled, malformed JSON, DNS SERVFAIL).

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::Faults;
use m365_posture::snapshot::Unavailable;
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

#[allow(clippy::unwrap_used)]
fn faults(value: serde_json::Value) -> Faults {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn inner_batch_429_and_5xx_are_retried_per_item() {
    let clean_sim = sim(contoso()).await;
    let files = Files::new();
    let clean = collect(&context(config(&clean_sim, files.secret())))
        .await
        .snapshot;

    let mut tenant = contoso();
    tenant.faults = faults(json!({"seed": 3, "paths": {
        "/v1.0/users/{id}/mailFolders/inbox/messageRules": {"status": 429, "rate": 0.5, "retry_after_secs": 0.1},
        "/v1.0/users/{id}/calendar/calendarPermissions": {"status": 500, "rate": 0.5}
    }}));
    let sim = sim(tenant).await;
    let ctx = context(config(&sim, files.secret()));
    let report = collect(&ctx).await;
    let stats = sim.stats();
    let inner_429 = stats.batch_count("/v1.0/users/{id}/mailFolders/inbox/messageRules", 429);
    let inner_500 = stats.batch_count("/v1.0/users/{id}/calendar/calendarPermissions", 500);
    assert!(
        inner_429 > 0 && inner_500 > 0,
        "faults were not injected: {stats:?}"
    );
    assert_eq!(report.snapshot.message_rules, clean.message_rules);
    assert_eq!(
        report.snapshot.calendar_permissions,
        clean.calendar_permissions
    );
    assert!(metric_sum(&ctx, "m365_posture_graph_throttled_total") >= inner_429);
}

#[tokio::test]
async fn outer_throttling_waits_retry_after_then_succeeds() {
    let mut tenant = contoso();
    tenant.faults = faults(json!({"seed": 5, "paths": {
        "/v1.0/domains": {"status": 429, "rate": 0.6, "retry_after_secs": 0.3}
    }}));
    let sim = sim(tenant).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = collect(&ctx).await;
    let throttled = sim.stats().count("/v1.0/domains", 429);
    assert!(throttled > 0, "no 429 was injected");
    assert_eq!(
        report.snapshot.domains.as_ref().map(Vec::len).ok(),
        Some(sim.tenant().domains.len())
    );
    assert_eq!(
        metric_sum(&ctx, "m365_posture_graph_throttled_total"),
        throttled
    );
}

#[tokio::test]
async fn persistent_throttling_fails_only_that_section_after_retries() {
    let mut tenant = contoso();
    tenant.faults = faults(json!({"paths": {
        "/v1.0/servicePrincipals": {"status": 429, "rate": 1.0, "retry_after_secs": 0.2}
    }}));
    let sim = sim(tenant).await;
    let files = Files::new();
    let started = Instant::now();
    let report = collect(&context(config(&sim, files.secret()))).await;
    let snap = report.snapshot;
    assert_eq!(snap.service_principals, Err(Unavailable::Throttled));
    assert!(
        started.elapsed() >= Duration::from_millis(6 * 200),
        "retried before Retry-After"
    );
    assert_eq!(sim.stats().count("/v1.0/servicePrincipals", 429), 7);
    assert!(snap.applications.is_ok() && snap.users.is_ok() && snap.domains.is_ok());
    assert_eq!(report.error, None);
}

#[tokio::test]
async fn forbidden_permission_fails_only_its_sections() {
    let mut tenant = contoso();
    tenant.faults = faults(json!({"forbidden_roles": ["MailboxSettings.Read"]}));
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    assert_eq!(
        snap.message_rules
            .as_ref()
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        "permission_denied: MailboxSettings.Read"
    );
    let calendar = snap.calendar_permissions.as_ref().unwrap();
    assert!(
        !calendar.is_empty() && calendar.values().all(Result::is_ok),
        "{calendar:?}"
    );
    assert!(snap.users.is_ok() && snap.auth_methods.is_ok() && snap.service_principals.is_ok());
}

#[tokio::test]
async fn one_denied_mailbox_fails_only_that_mailbox() {
    const BOB: &str = "a1000000-0000-4000-8000-000000000002";
    let mut tenant = contoso();
    tenant.faults = faults(json!({"denied_mailboxes": [BOB]}));
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    let rules = snap.message_rules.as_ref().unwrap();
    assert!(
        matches!(
            rules.get(BOB),
            Some(Err(Unavailable::PermissionDenied { .. }))
        ),
        "{rules:?}"
    );
    assert!(
        rules
            .iter()
            .filter(|(id, _)| &***id != BOB)
            .all(|(_, r)| r.is_ok()),
        "{rules:?}"
    );
}

#[tokio::test]
async fn malformed_page_fails_the_section_and_its_dependants() {
    let mut tenant = contoso();
    tenant.faults = faults(json!({"paths": {"/v1.0/users": {"malformed_rate": 1.0}}}));
    let sim = sim(tenant).await;
    let files = Files::new();
    let report = collect(&context(config(&sim, files.secret()))).await;
    let snap = report.snapshot;
    assert!(
        matches!(snap.users, Err(Unavailable::Malformed { .. })),
        "{:?}",
        snap.users
    );
    assert!(snap.message_rules.is_err() && snap.calendar_permissions.is_err());
    assert!(snap.domains.is_ok() && snap.applications.is_ok());
    assert_eq!(report.error, None);
}

#[tokio::test]
async fn dns_servfail_is_an_error_for_that_name_only() {
    let mut tenant = contoso();
    tenant.faults = faults(json!({"dns_servfail": ["fabrikam.net"]}));
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    let failed = snap.dns.get("fabrikam.net").cloned();
    assert_eq!(
        failed.map(|r| r.map_err(|e| e.to_string())),
        Some(Err("dns_servfail: fabrikam.net".to_owned()))
    );
    assert!(matches!(snap.dns.get("contoso.com"), Some(Ok(records)) if !records.is_empty()));
    assert_eq!(snap.dns.get("_dmarc.nonexistent.example"), None);
}
