//! The tenant generator: determinism, speed, validity, and the finding shares the README
//! documents.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use graph_sim::{generate_at, TenantFile};
use serde_json::Value;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
}

fn older_than(value: &Value, days: i64) -> bool {
    value
        .as_str()
        .map(|s| DateTime::parse_from_rfc3339(s).unwrap() < now() - Duration::days(days))
        .unwrap_or(false)
}

/// Instances of each user-level finding, by the CONTRACT section 4 rules (simplified).
fn count_findings(t: &TenantFile) -> BTreeMap<&'static str, usize> {
    let mut c: BTreeMap<&'static str, usize> = BTreeMap::new();
    let verified: HashSet<String> = t
        .domains
        .iter()
        .filter(|d| d["isVerified"] == true)
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    let external = |addr: &str| !verified.contains(addr.rsplit('@').next().unwrap_or_default());
    for u in &t.users {
        let mut bump = |k| *c.entry(k).or_default() += 1;
        let policies = u["passwordPolicies"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if u["accountEnabled"] == false {
            bump("user.account_disabled")
        }
        if u["accountEnabled"] == true
            && u["userType"] != "Guest"
            && older_than(&u["lastPasswordChangeDateTime"], 90)
        {
            bump("user.password_not_changed")
        }
        if policies.contains("disablepasswordexpiration") {
            bump("user.password_expiration_disabled")
        }
        if policies.contains("disablestrongpassword") {
            bump("user.strong_password_disabled")
        }
        if u["onPremisesSyncEnabled"] == false {
            bump("user.onprem_sync_disabled")
        }
        if u["onPremisesSyncEnabled"] == true && older_than(&u["onPremisesLastSyncDateTime"], 7) {
            bump("user.onprem_sync_stale")
        }
        if !u["onPremisesProvisioningErrors"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            bump("user.onprem_provisioning_error")
        }
        if u["legalAgeGroupClassification"].is_string() {
            bump("user.not_legal_adult")
        }
        let aliases = u["proxyAddresses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .any(|p| p.starts_with("smtp:") && !p.ends_with(".onmicrosoft.com"));
        if aliases {
            bump("user.proxy_addresses_configured")
        }
    }
    for methods in t.authentication_methods.values() {
        for m in methods {
            let mut bump = |k| *c.entry(k).or_default() += 1;
            if m["attestationLevel"] == "notAttested" {
                bump("user.fido2_unattested")
            }
            if m["keyStrength"] == "weak" {
                bump("user.whfb_weak")
            }
            if m["isUsableOnce"] == false && m["isUsable"] == true {
                bump("user.tap_reusable")
            }
            if m["lifetimeInMinutes"].as_i64().is_some_and(|l| l > 480) {
                bump("user.tap_long_lived")
            }
        }
    }
    for perms in t.calendar_permissions.values() {
        *c.entry("calendar.shared_externally").or_default() += perms
            .iter()
            .filter(|p| p["isInsideOrganization"] == false && p["role"] != "none")
            .count();
    }
    for rules in t.message_rules.values() {
        for r in rules.iter().filter(|r| r["isEnabled"] == true) {
            for (action, finding) in [
                ("forwardTo", "mail.rule_forwards_external"),
                (
                    "forwardAsAttachmentTo",
                    "mail.rule_forwards_external_attachment",
                ),
                ("redirectTo", "mail.rule_redirects_external"),
            ] {
                let hit = r["actions"][action].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|x| external(x["emailAddress"]["address"].as_str().unwrap()))
                });
                if hit {
                    *c.entry(finding).or_default() += 1
                }
            }
        }
    }
    c
}

#[test]
fn same_seed_same_tenant_other_seed_other_tenant() {
    let a = generate_at(300, 42, now());
    assert_eq!(a, generate_at(300, 42, now()));
    assert_ne!(a.users, generate_at(300, 43, now()).users);
    assert_eq!(a.users.len(), 300);
    a.validate().unwrap();
    TenantFile::from_json(&a.to_json()).unwrap();
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "timing needs a release build: cargo test --release -p graph-sim --test generator"
)]
fn hundred_thousand_users_in_under_ten_seconds() {
    let started = Instant::now();
    let t = generate_at(100_000, 1, now());
    let elapsed = started.elapsed();
    assert_eq!(t.users.len(), 100_000);
    assert!(elapsed.as_secs_f64() < 10.0, "took {elapsed:?}");
}

/// The README's table: per 1,000 users, with the tolerance a 20,000-user sample allows.
const DOCUMENTED_PER_1000: &[(&str, f64)] = &[
    ("user.account_disabled", 57.6),
    ("user.password_not_changed", 302.7),
    ("user.password_expiration_disabled", 341.6),
    ("user.strong_password_disabled", 5.3),
    ("user.onprem_sync_disabled", 18.4),
    ("user.onprem_sync_stale", 18.4),
    ("user.onprem_provisioning_error", 7.7),
    ("user.not_legal_adult", 4.6),
    ("user.proxy_addresses_configured", 92.0),
    ("user.fido2_unattested", 22.1),
    ("user.whfb_weak", 13.8),
    ("user.tap_reusable", 9.2),
    ("user.tap_long_lived", 9.2),
    ("calendar.shared_externally", 24.8),
    ("mail.rule_forwards_external", 12.4),
    ("mail.rule_forwards_external_attachment", 4.1),
    ("mail.rule_redirects_external", 4.1),
];

#[test]
fn finding_shares_match_the_readme() {
    let n = 20_000.0;
    let counts = count_findings(&generate_at(20_000, 1, now()));
    let mut report = String::new();
    for (finding, expected) in DOCUMENTED_PER_1000 {
        let measured = *counts.get(finding).unwrap_or(&0) as f64 * 1000.0 / n;
        report.push_str(&format!(
            "{finding}: expected {expected}, measured {measured:.1}\n"
        ));
        let tolerance =
            3.0 * (expected / 1000.0 * (1.0 - expected / 1000.0) / n).sqrt() * 1000.0 + 0.5;
        assert!((measured - expected).abs() <= tolerance, "{report}");
    }
    println!("{report}");
}
