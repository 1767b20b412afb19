//! `m365-posture scan` end to end against graph-sim: a tenant with every finding present gives
//! exactly the expected findings in the CONTRACT section 5 JSON; a refused data source makes
//! only its checks `error`; an authentication failure fails the scan (exit 1); CEF lines.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use m365_posture::commands::scan::{scan, ScanError, ScanFormat};
use m365_posture::config::TenantAuth;
use m365_posture::findings::{FindingId, Severity};
use m365_posture::graph::auth::NoRefreshTokens;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use support::*;

const ADELE: &str = "a1000000-0000-4000-8000-000000000001";
const BOB: &str = "a1000000-0000-4000-8000-000000000002";
const CAROL: &str = "a1000000-0000-4000-8000-000000000003";
const ERIN: &str = "a1000000-0000-4000-8000-000000000005";
const SHADY_SP: &str = "59e617e5-e447-4adc-8b88-00af644d7c92";
const HR_APP: &str = "03ef14b0-ca33-4840-8f4f-d6e91916010e";
const RULE: &str = "AQAAAJ5dZqE=";

/// Every (finding, resource id) the full tenant must produce, and nothing else.
fn expected() -> BTreeSet<(String, String)> {
    let user = |f: &str, id: &str| (f.to_owned(), id.to_owned());
    let sub = |f: &str, id: &str, rest: &str| (f.to_owned(), format!("{id}/{rest}"));
    [
        sub("user.fido2_unattested", ADELE, "-2_GRUg2-HYz6_1YG4YRAQ2"),
        user("user.onprem_provisioning_error", ERIN),
        user("user.password_expiration_disabled", BOB),
        user("user.password_not_changed", ADELE),
        user("user.password_not_changed", CAROL),
        user("user.password_not_changed", ERIN),
        user("user.strong_password_disabled", BOB),
        user("user.onprem_sync_disabled", ERIN),
        sub(
            "user.whfb_weak_key",
            ADELE,
            "b5e01f81-1f81-b5e0-811f-e0b5811fe0b5",
        ),
        user("user.onprem_sync_stale", BOB),
        user("user.not_legal_adult", CAROL),
        user("user.proxy_addresses_configured", BOB),
        user("user.account_disabled", BOB),
        sub(
            "user.tap_reusable",
            BOB,
            "6f1c8a5c-8b1e-4d1f-9e6c-5b2a1c3d4e5f",
        ),
        sub(
            "user.tap_long_lived",
            BOB,
            "6f1c8a5c-8b1e-4d1f-9e6c-5b2a1c3d4e5f",
        ),
        sub(
            "calendar.shared_externally",
            ADELE,
            "RXhjaGFuZ2VQdWJsaXNoZWRVc2VyLnBhcnRuZXJAZ21haWwuY29t",
        ),
        user("app.not_microsoft_certified", SHADY_SP),
        user("app.not_publisher_attested", SHADY_SP),
        user("app.disabled_by_microsoft", SHADY_SP),
        user("domain.spf_allows_any", "fabrikam.net"),
        user("domain.spf_missing", "nospf.example"),
        user("domain.spf_invalid", "voids.example"),
        user("domain.dmarc_missing", "contoso.onmicrosoft.com"),
        user("domain.dmarc_not_enforced", "nospf.example"),
        user("domain.dmarc_subdomains_not_enforced", "nospf.example"),
        user("domain.dmarc_partial", "fabrikam.net"),
        user("domain.not_verified", "pending.example"),
        user("app.certification_expiring", HR_APP),
        sub("mail.rule_forwards_external_attachment", ADELE, RULE),
        sub("mail.rule_forwards_external", ADELE, RULE),
        sub("mail.rule_redirects_external", ADELE, RULE),
    ]
    .into_iter()
    .collect()
}

/// The full tenant, with the HR app's certification expiring in 30 days from now.
async fn full_sim() -> graph_sim::SimHandle {
    let mut tenant = fixture("full_tenant.json");
    #[allow(clippy::disallowed_methods)] // the fixture's one relative date
    let expires = chrono::Utc::now() + chrono::Duration::days(30);
    for app in &mut tenant.applications {
        if app["id"] == HR_APP {
            app["certification"]["certificationExpirationDateTime"] = json!(expires.to_rfc3339());
        }
    }
    sim(tenant).await
}

async fn scan_json(config: &m365_posture::config::Config) -> (Value, u8) {
    let result = scan(config, None, ScanFormat::Json, Arc::new(NoRefreshTokens))
        .await
        .unwrap();
    (
        serde_json::from_str(&result.output).unwrap(),
        result.exit_code,
    )
}

fn found(tenant: &Value) -> BTreeSet<(String, String)> {
    tenant["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["finding"].as_str().unwrap().to_owned(),
                f["resource_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn full_tenant_gives_exactly_the_expected_findings() {
    let sim = full_sim().await;
    let files = Files::new();
    let mut config = config(&sim, files.secret());
    config
        .severity_overrides
        .insert(FindingId::AccountDisabled, Severity::High);
    let (doc, exit) = scan_json(&config).await;
    assert_eq!(exit, 0);
    let tenant = &doc["tenants"][0];
    assert_eq!(tenant["tenant"], "contoso");
    assert_eq!(tenant["tenant_id"], sim.tenant_id());
    assert_eq!(tenant["status"], "ok", "{:#}", tenant["checks"]);
    let checks = tenant["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 29);
    assert!(checks.iter().all(|c| c["status"] == "ok"), "{checks:#?}");
    assert_eq!(found(tenant), expected());
    let started =
        chrono::DateTime::parse_from_rfc3339(tenant["started_at"].as_str().unwrap()).unwrap();
    let finished =
        chrono::DateTime::parse_from_rfc3339(tenant["finished_at"].as_str().unwrap()).unwrap();
    for check in checks {
        let read_at = check["data_read_at"]
            .as_str()
            .unwrap_or_else(|| panic!("{check}"));
        let age = chrono::DateTime::parse_from_rfc3339(read_at).unwrap();
        assert!(
            started <= age && age <= finished,
            "a one-shot scan reads everything itself: {check}"
        );
        assert_eq!(
            check["data_age_seconds"].as_i64(),
            Some((finished - age).num_seconds()),
            "{check}"
        );
    }
    let kinds: BTreeSet<&str> = tenant["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["finding"].as_str())
        .collect();
    assert_eq!(kinds.len(), 29, "every finding is present");
    let invalid = tenant["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["finding"] == "domain.spf_invalid")
        .unwrap();
    assert_eq!(invalid["severity"], "medium");
    assert_eq!(invalid["category"], "email_admin_settings");
    assert_eq!(
        invalid["title"],
        "Microsoft Domain SPF Record Invalid (PermError)"
    );
    assert_eq!(invalid["details"]["cause"], "too_many_void_lookups");
    assert_eq!(invalid["details"]["term"], "exists:gone3.voids.example");
    let disabled = tenant["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["finding"] == "user.account_disabled")
        .unwrap();
    assert_eq!(disabled["severity"], "high", "config override applies");
    assert_eq!(disabled["resource_name"], "bob@contoso.com");
    assert_eq!(disabled["category"], "user_account_settings");
    assert_eq!(disabled["title"], "User account disabled");
    assert!(disabled["details"].is_object());
    for finding in tenant["findings"].as_array().unwrap() {
        let id = finding["finding"].as_str().unwrap();
        assert!(
            finding["remediation"]
                .as_str()
                .is_some_and(|r| r.len() > 40),
            "{id}: remediation"
        );
        let first = &finding["references"][0];
        assert_eq!(first["source"], "microsoft", "{id}");
        assert!(
            first["url"]
                .as_str()
                .unwrap()
                .starts_with("https://learn.microsoft.com/"),
            "{id}"
        );
    }
    let spf = tenant["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["finding"] == "domain.spf_allows_any")
        .unwrap();
    let controls: Vec<(&str, &str)> = spf["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["source"].as_str().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    assert!(controls.contains(&("cis", "2.1.8")), "{controls:?}");
    assert!(
        controls.contains(&("cisa_scuba", "MS.EXO.2.2v3")),
        "{controls:?}"
    );
    for key in ["started_at", "finished_at"] {
        let text = tenant[key].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "{key}: {text}"
        );
    }
}

#[tokio::test]
async fn refused_source_errors_only_its_checks_and_keeps_other_findings() {
    let sim = full_sim().await;
    sim.mutate(|t| t.faults.forbidden_roles = vec!["MailboxSettings.Read".into()]);
    let files = Files::new();
    let (doc, exit) = scan_json(&config(&sim, files.secret())).await;
    assert_eq!(exit, 0, "a partial scan still ran");
    let tenant = &doc["tenants"][0];
    assert_eq!(tenant["status"], "partial");
    for check in tenant["checks"].as_array().unwrap() {
        let finding = check["finding"].as_str().unwrap();
        if finding.starts_with("mail.") {
            assert_eq!(check["status"], "error");
            assert_eq!(check["reason"], "permission_denied: MailboxSettings.Read");
            assert!(
                check.get("data_age_seconds").is_none(),
                "no data, no age: {check}"
            );
        } else {
            assert_eq!(check["status"], "ok", "{check}");
            assert!(check["data_age_seconds"].as_i64().is_some(), "{check}");
        }
    }
    let without_mail: BTreeSet<_> = expected()
        .into_iter()
        .filter(|(f, _)| !f.starts_with("mail."))
        .collect();
    assert_eq!(found(tenant), without_mail);
}

#[tokio::test]
async fn dns_servfail_errors_that_domains_checks_only() {
    let sim = full_sim().await;
    sim.mutate(|t| t.faults.dns_servfail = vec!["fabrikam.net".into()]);
    let files = Files::new();
    let (doc, _) = scan_json(&config(&sim, files.secret())).await;
    let tenant = &doc["tenants"][0];
    let spf_any = tenant["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["finding"] == "domain.spf_allows_any")
        .unwrap();
    assert_eq!(spf_any["status"], "error");
    assert!(
        spf_any["reason"].as_str().unwrap().contains("fabrikam.net"),
        "{spf_any}"
    );
    assert!(!found(tenant).contains(&(
        "domain.spf_allows_any".to_owned(),
        "fabrikam.net".to_owned()
    )));
    assert!(found(tenant).contains(&("domain.spf_missing".to_owned(), "nospf.example".to_owned())));
}

#[tokio::test]
async fn authentication_failure_fails_the_scan_with_exit_1() {
    let sim = full_sim().await;
    let files = Files::new();
    let auth = TenantAuth::ClientSecret {
        secret_file: files.write("s", "wrong"),
    };
    let (doc, exit) = scan_json(&config(&sim, auth)).await;
    assert_eq!(exit, 1);
    let tenant = &doc["tenants"][0];
    assert_eq!(tenant["status"], "failed");
    assert!(tenant["findings"].as_array().unwrap().is_empty());
    for check in tenant["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "error");
        assert!(
            check["reason"].as_str().unwrap().contains("AADSTS7000215"),
            "{check}"
        );
    }
}

#[tokio::test]
async fn cef_prints_one_new_event_per_finding_and_unknown_tenant_is_a_usage_error() {
    let sim = full_sim().await;
    let files = Files::new();
    let config = config(&sim, files.secret());
    let result = scan(
        &config,
        Some("contoso"),
        ScanFormat::Cef,
        Arc::new(NoRefreshTokens),
    )
    .await
    .unwrap();
    let lines: Vec<&str> = result.output.lines().collect();
    assert_eq!(lines.len(), expected().len());
    assert!(lines
        .iter()
        .all(|l| l.starts_with("CEF:0|m365-posture|m365-posture|")
            && l.contains(":new|")
            && l.contains("act=new")));
    let table = scan(&config, None, ScanFormat::Table, Arc::new(NoRefreshTokens))
        .await
        .unwrap();
    // The permerror is shown in CEF with its cause and term (third void lookup, RFC 7208 4.6.4).
    let invalid = lines
        .iter()
        .find(|l| l.contains("|domain.spf_invalid:new|"))
        .unwrap();
    assert!(invalid.contains("voids.example"), "{invalid}");
    assert!(invalid.contains("too_many_void_lookups"), "{invalid}");
    assert!(invalid.contains("exists:gone3.voids.example"), "{invalid}");
    assert!(
        table.output.contains("domain.spf_allows_any") && table.output.contains("fabrikam.net")
    );
    let err = scan(
        &config,
        Some("nope"),
        ScanFormat::Json,
        Arc::new(NoRefreshTokens),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ScanError::UnknownTenant(_)));
    assert_eq!(err.exit_code(), 64);
}

/// A hybrid mailbox (synced user, mailbox on premises: 404 `MailboxNotEnabledForRESTAPI`) is
/// counted per mailbox check under `unevaluated`, and the checks stay `ok`.
#[tokio::test]
async fn unreadable_mailboxes_are_counted_per_check_by_reason() {
    let mut tenant = fixture("full_tenant.json");
    tenant.mailboxes.retain(|id| id != ADELE);
    if let Some(adele) = tenant.user_mut(ADELE) {
        adele["onPremisesSyncEnabled"] = json!(true);
    }
    let sim = sim(tenant).await;
    let files = Files::new();
    let (doc, _) = scan_json(&config(&sim, files.secret())).await;
    let checks = doc["tenants"][0]["checks"].as_array().unwrap();
    for finding in [
        "calendar.shared_externally",
        "mail.rule_forwards_external",
        "mail.rule_redirects_external",
    ] {
        let check = checks.iter().find(|c| c["finding"] == finding).unwrap();
        assert_eq!(check["status"], "ok", "{check}");
        assert_eq!(
            check["unevaluated"],
            json!({"mailbox_not_enabled_for_rest_api": 1}),
            "{check}"
        );
    }
    let account = checks
        .iter()
        .find(|c| c["finding"] == "user.account_disabled")
        .unwrap();
    assert!(account.get("unevaluated").is_none(), "{account}");
}
