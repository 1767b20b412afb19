//! Tests of the `mail.rule_*` checks against Graph-shaped fixtures.

use super::*;
use crate::checks::test_fixtures::*;
use crate::checks::CheckOptions;
use crate::findings::Finding;
use crate::snapshot::Unavailable;
use FindingId::*;

fn with_rules(entries: Vec<(&str, Result<Vec<MessageRule>, Unavailable>)>) -> TenantSnapshot {
    let mut snapshot = snapshot("mailbox_owners");
    snapshot.message_rules = Ok(per_user(&snapshot, entries));
    snapshot
}

fn rule_names(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f.details["rule_name"].as_str().unwrap())
        .collect()
}

fn mixed() -> TenantSnapshot {
    with_rules(vec![("alice", Ok(list("message_rules", "mixed")))])
}

#[test]
fn one_rule_with_all_three_external_actions_fires_all_three_findings() {
    let snapshot = with_rules(vec![("bob", Ok(list("message_rules", "doc_example")))]);
    let bob = user_id(&snapshot, "bob");
    for (id, recipient) in [
        (RuleForwardsExternalAttachment, "y@evil.example"),
        (RuleForwardsExternal, "x@gmail.com"),
        (RuleRedirectsExternal, "z@outlook.com"),
    ] {
        let found = findings(id, &snapshot);
        assert_eq!(found.len(), 1, "{id}");
        assert_eq!(found[0].resource_id, format!("{bob}/AQAAAJ5dZqE="));
        assert_eq!(found[0].resource_name, "bob@contoso.com");
        assert_eq!(found[0].details["external_recipients"], json!([recipient]));
        assert_eq!(found[0].details["rule_name"], "fwd");
    }
}

#[test]
fn forwards_skip_disabled_rules_and_internal_or_unresolved_recipients() {
    let found = findings(RuleForwardsExternal, &mixed());
    // Sorted by resource id (the rule ids), not by sequence.
    assert_eq!(
        rule_names(&found),
        ["Mixed recipients", "Subdomain forward"]
    );
    let mixed_rule = &found[0];
    assert_eq!(
        mixed_rule.details["external_recipients"],
        json!(["ext@Fabrikam.com."])
    );
    assert_eq!(
        mixed_rule.details["external_domains"],
        json!(["fabrikam.com"])
    );
    assert_eq!(
        mixed_rule.details["unresolved_recipients"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(mixed_rule.details["action"], "forwardTo");
}

#[test]
fn redirects_in_error_still_fire_with_has_error() {
    let found = findings(RuleRedirectsExternal, &mixed());
    assert_eq!(rule_names(&found), ["Broken redirect"]);
    assert_eq!(found[0].details["has_error"], true);
    assert_eq!(found[0].details["sequence"], 2);
}

#[test]
fn attachment_forwards_respect_extra_internal_domains() {
    let snapshot = mixed();
    assert_eq!(
        rule_names(&findings(RuleForwardsExternalAttachment, &snapshot)),
        ["Partner attachment"]
    );
    let options = CheckOptions {
        extra_internal_domains: vec!["partner.example".to_owned()],
        ..CheckOptions::default()
    };
    let found = evaluation(run(RuleForwardsExternalAttachment, &snapshot, &options)).findings;
    assert!(found.is_empty());
}

#[test]
fn subdomains_are_external_unless_configured() {
    let options = CheckOptions {
        subdomains_internal: true,
        ..CheckOptions::default()
    };
    let found = evaluation(run(RuleForwardsExternal, &mixed(), &options)).findings;
    assert_eq!(rule_names(&found), ["Mixed recipients"]);
}

#[test]
fn redirect_to_as_a_single_object_is_read() {
    let rule: MessageRule = serde_json::from_value(json!({
        "id": "b2xkLWRvYw==", "displayName": "old doc shape", "isEnabled": true,
        "actions": {"redirectTo": {"emailAddress": {"name": "z", "address": "z@outlook.com"}}}
    }))
    .unwrap();
    let snapshot = with_rules(vec![("alice", Ok(vec![rule]))]);
    let found = findings(RuleRedirectsExternal, &snapshot);
    assert_eq!(
        found[0].details["external_recipients"],
        json!(["z@outlook.com"])
    );
}

#[test]
fn guests_excluded_users_and_failed_mailboxes() {
    let doc = || Ok(list("message_rules", "doc_example"));
    let snapshot = with_rules(vec![
        ("alice", doc()),
        ("bob", Err(Unavailable::Throttled)),
        ("carol", doc()),
        ("svc.scanner", doc()),
    ]);
    let options = CheckOptions {
        exclude_users: vec![user_id(&snapshot, "svc.scanner")],
        ..CheckOptions::default()
    };
    let evaluation = evaluation(run(RuleForwardsExternal, &snapshot, &options));
    assert_eq!(names(&evaluation.findings), ["alice@contoso.com"]);
    assert_eq!(
        evaluation.failed_resources.iter().collect::<Vec<_>>(),
        [(user_id(&snapshot, "bob").as_str(), "throttled")]
    );
}

#[test]
fn mailboxes_graph_cannot_read_are_unevaluated_not_failed() {
    let on_premises = Unavailable::NotReadable {
        reason: "mailbox_not_enabled_for_rest_api".to_owned(),
    };
    let snapshot = with_rules(vec![
        ("alice", Ok(list("message_rules", "doc_example"))),
        ("bob", Err(on_premises)),
    ]);
    let evaluation = evaluation(run(
        RuleForwardsExternal,
        &snapshot,
        &CheckOptions::default(),
    ));
    assert_eq!(names(&evaluation.findings), ["alice@contoso.com"]);
    assert!(evaluation.failed_resources.is_empty());
    let bob = user_id(&snapshot, "bob");
    assert_eq!(
        evaluation.unevaluated.get(&bob),
        Some("mailbox_not_enabled_for_rest_api")
    );
}

#[test]
fn missing_rules_or_domains_skip_every_mail_check() {
    let mut no_rules = mixed();
    no_rules.message_rules = Err(denied("MailboxSettings.Read"));
    let mut no_domains = mixed();
    no_domains.domains = Err(denied("Domain.Read.All"));
    let options = CheckOptions::default();
    for id in [
        RuleForwardsExternalAttachment,
        RuleForwardsExternal,
        RuleRedirectsExternal,
    ] {
        assert_eq!(
            skip_reason(run(id, &no_rules, &options)),
            "permission_denied: MailboxSettings.Read"
        );
        assert_eq!(
            skip_reason(run(id, &no_domains, &options)),
            "permission_denied: Domain.Read.All"
        );
    }
}
