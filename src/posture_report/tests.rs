//! Pure tests of the report: order, counts, suppressions, HTML escaping, CSV quoting.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::csv::{render_csv, COLUMNS};
use super::html::render_html;
use super::*;
use chrono::TimeZone;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 8, 0, 0).unwrap()
}

fn instance(finding: FindingId, resource: &str, name: &str, suppressed: bool) -> StoredInstance {
    let mut details = serde_json::Map::new();
    details.insert("record".into(), serde_json::json!("v=spf1 +all"));
    StoredInstance {
        finding,
        resource_id: resource.into(),
        fingerprint: format!("fp-{resource}"),
        resource_name: name.into(),
        severity: finding.meta().severity,
        first_seen: at(1),
        last_seen: at(2),
        resolved_at: None,
        suppressed,
        announced: !suppressed,
        details: details.into(),
    }
}

fn state() -> TenantState {
    let mut resolved = instance(FindingId::DmarcMissing, "old.example", "old.example", false);
    resolved.resolved_at = Some(at(2));
    TenantState {
        tenant: "contoso".into(),
        instances: vec![
            instance(
                FindingId::AccountDisabled,
                "u1",
                "=HYPERLINK(\"x\")<b>",
                false,
            ),
            instance(FindingId::SpfAllowsAny, "contoso.com", "contoso.com", false),
            instance(
                FindingId::PasswordExpirationDisabled,
                "u2",
                "svc-backup@contoso.com",
                true,
            ),
            instance(
                FindingId::PasswordExpirationDisabled,
                "u3",
                "adele@contoso.com",
                true,
            ),
            resolved,
        ],
        last_success: Some(at(2)),
        checks: Vec::new(),
    }
}

fn suppression() -> Suppression {
    Suppression {
        finding: FindingId::PasswordExpirationDisabled,
        tenant: Some("contoso".into()),
        resource_id: None,
        resource_name: Some("svc-*@contoso.com".into()),
        reason: "vaulted & rotated".into(),
        owner: "secops@contoso.com".into(),
        expires: Some(at(30)),
    }
}

fn report() -> PostureReport {
    build(vec![state()], &[suppression()], at(3))
}

#[test]
fn open_instances_highest_severity_first_resolved_left_out() {
    let tenant = &report().tenants[0];
    let open: Vec<&str> = tenant.open.iter().map(|i| i.finding.as_str()).collect();
    assert_eq!(open, ["domain.spf_allows_any", "user.account_disabled"]);
    assert_eq!(tenant.counts.len(), 2);
    assert_eq!(tenant.counts[0].severity, Severity::High);
    assert_eq!(tenant.counts[0].count, 1);
    assert_eq!(tenant.last_success.as_deref(), Some("2026-11-02T08:00:00Z"));
    let spf = &tenant.open[0];
    assert_eq!(spf.first_seen, "2026-11-01T08:00:00Z");
    assert!(spf.remediation.contains("-all"));
    assert_eq!(
        spf.references[0].source,
        crate::references::Source::Microsoft
    );
}

#[test]
fn suppressed_instances_carry_the_covering_rule_or_say_none_covers_them() {
    let tenant = &report().tenants[0];
    assert_eq!(tenant.suppressed.len(), 2);
    let by_id = |id: &str| {
        tenant
            .suppressed
            .iter()
            .find(|s| s.instance.resource_id == id)
            .unwrap()
    };
    let covered = by_id("u2");
    assert_eq!(covered.reason, "vaulted & rotated");
    assert_eq!(covered.owner, "secops@contoso.com");
    assert_eq!(covered.expires.as_deref(), Some("2026-11-30T08:00:00Z"));
    let orphan = by_id("u3");
    assert_eq!(orphan.reason, NO_SUPPRESSION_NOW);
    assert_eq!(orphan.expires, None);
}

#[test]
fn html_is_self_contained_and_escapes_tenant_values() {
    let page = render_html(&report());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script"));
    assert!(!page.contains("src="), "no external assets");
    assert!(!page.contains("<b>"), "names are escaped");
    assert!(page.contains("=HYPERLINK(&quot;x&quot;)&lt;b&gt;"));
    assert_eq!(page.matches("<tr class=\"finding ").count(), 4);
    assert!(page.contains("vaulted &amp; rotated"));
    assert!(page.contains(
        "<a href=\"https://learn.microsoft.com/en-us/defender-office-365/email-authentication-spf-configure\">"
    ));
}

#[test]
fn csv_has_one_row_per_open_instance_quoted_and_defused() {
    let text = render_csv(&report());
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], COLUMNS.join(","));
    assert_eq!(lines.len(), 5, "header, two open, two suppressed");
    assert!(lines[1].starts_with("contoso,open,high,email_admin_settings,domain.spf_allows_any,"));
    assert!(
        lines[2].contains(",\"'=HYPERLINK(\"\"x\"\")<b>\","),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains(",suppressed,"));
    assert!(lines[1].contains("; CIS M365 2.1.8; CISA SCuBA MS.EXO.2.2v3;"));
}

/// A check the last scan skipped (a permission missing) or evaluated in part is listed apart,
/// and a tenant without open findings under such checks is not called clean.
#[test]
fn checks_not_fully_evaluated_are_listed_and_the_page_does_not_say_clean() {
    use crate::state::summary::CheckRecord;
    let record = |finding, status: &str, reason: Option<&str>, evaluated| CheckRecord {
        finding,
        status: status.into(),
        reason: reason.map(str::to_owned),
        evaluated_at: evaluated,
    };
    let mut partly = state();
    partly.instances.clear();
    partly.checks = vec![
        record(FindingId::AccountDisabled, "ok", None, Some(at(2))),
        record(
            FindingId::RuleForwardsExternal,
            "skipped",
            Some("permission_denied: MailboxSettings.Read"),
            None,
        ),
        record(
            FindingId::SpfAllowsAny,
            "partial",
            Some("1 resources failed, first: dns_servfail: contoso.com"),
            Some(at(2)),
        ),
    ];
    let report = build(vec![partly], &[], at(3));
    let listed: Vec<(&str, &str, Option<&str>)> = report.tenants[0]
        .not_evaluated
        .iter()
        .map(|c| {
            (
                c.finding.as_str(),
                c.status.as_str(),
                c.last_evaluated.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "domain.spf_allows_any",
                "partial",
                Some("2026-11-02T08:00:00Z")
            ),
            ("mail.rule_forwards_external", "skipped", None),
        ]
    );
    let page = render_html(&report);
    assert!(!page.contains("No open findings.</p>"), "{page}");
    assert!(page.contains("Checks not fully evaluated at the last scan"));
    assert!(page.contains("permission_denied: MailboxSettings.Read"));
    let json: serde_json::Value = serde_json::from_str(&render_json(&report)).unwrap();
    assert_eq!(
        json["tenants"][0]["not_evaluated"][1]["finding"],
        "mail.rule_forwards_external"
    );
    // With every check evaluated fully, the page says there is nothing open.
    let mut clean = state();
    clean.instances.clear();
    let page = render_html(&build(vec![clean], &[], at(3)));
    assert!(page.contains("No open findings.</p>"));
}
