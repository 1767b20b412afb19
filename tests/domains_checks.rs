//! The eight `domain.*` checks on a `GET /domains` body in Graph's shape and a DNS answer map
//! in the snapshot's serde form (`tests/fixtures/dns/domains_checks.json`). The Graph fixture's
//! shape is checked against the v1.0 schema by `tests/fixtures_schema.rs`.
// Helpers of a test crate: a panic here is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use chrono::{TimeZone, Utc};
use m365_posture::checks::domains::{dmarc_domains, dns_names_needed, spf_domains};
use m365_posture::checks::{self, CheckOptions, EvalCtx, Evaluation, Outcome};
use m365_posture::findings::FindingId;
use m365_posture::snapshot::{DnsAnswers, Domain, HostAnswers, TenantSnapshot, Unavailable};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn fixture_domains() -> Vec<Domain> {
    let body = read_json(&format!("{FIXTURES}/graph/domains_checks/domains.json"));
    serde_json::from_value(body["value"].clone()).unwrap()
}

fn fixture_dns() -> DnsAnswers {
    serde_json::from_value(read_json(&format!("{FIXTURES}/dns/domains_checks.json"))).unwrap()
}

fn snapshot() -> TenantSnapshot {
    let mut snapshot = TenantSnapshot::empty("tenant-1", "test");
    snapshot.domains = Ok(fixture_domains());
    snapshot.dns = fixture_dns();
    snapshot
}

fn run_with(id: FindingId, snapshot: &TenantSnapshot, options: &CheckOptions) -> Evaluation {
    let ctx = EvalCtx {
        now: Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(),
        options,
    };
    match checks::evaluate(id, snapshot, &ctx) {
        Outcome::Evaluated(evaluation) => evaluation,
        other => panic!("{id}: {other:?}"),
    }
}

fn run(id: FindingId) -> Evaluation {
    run_with(id, &snapshot(), &CheckOptions::default())
}

fn fired(evaluation: &Evaluation) -> Vec<&str> {
    let mut ids: Vec<&str> = evaluation
        .findings
        .iter()
        .map(|f| f.resource_id.as_str())
        .collect();
    ids.sort_unstable();
    ids
}

fn failed(evaluation: &Evaluation) -> Vec<(&str, &str)> {
    evaluation.failed_resources.iter().collect()
}

fn detail<'e>(evaluation: &'e Evaluation, domain: &str, key: &str) -> &'e Value {
    let finding = evaluation
        .findings
        .iter()
        .find(|f| f.resource_id == domain)
        .unwrap_or_else(|| panic!("no finding for {domain}"));
    assert_eq!(finding.resource_name, domain);
    finding.details.get(key).unwrap_or(&Value::Null)
}

#[test]
fn not_verified_fires_for_unverified_domains_only() {
    let evaluation = run(FindingId::DomainNotVerified);
    assert_eq!(fired(&evaluation), vec!["pending.example"]);
    assert!(evaluation.failed_resources.is_empty());
    assert_eq!(
        detail(&evaluation, "pending.example", "authentication_type"),
        "Managed"
    );
}

#[test]
fn spf_allows_any_fires_for_neutral_and_include_plus_all() {
    let evaluation = run(FindingId::SpfAllowsAny);
    assert_eq!(fired(&evaluation), vec!["open.example", "sub.contoso.com"]);
    assert_eq!(
        detail(&evaluation, "sub.contoso.com", "reason"),
        "neutral_all"
    );
    assert_eq!(detail(&evaluation, "sub.contoso.com", "term"), "?all");
    assert_eq!(
        detail(&evaluation, "open.example", "reason"),
        "include_plus_all:bad-relay.example"
    );
    assert_eq!(
        detail(&evaluation, "open.example", "spf_record"),
        "v=spf1 include:bad-relay.example ~all"
    );
    assert_eq!(
        failed(&evaluation),
        vec![
            ("broken.example", "dns_servfail: broken.example"),
            (
                "uncollected.example",
                "not_collected: no txt answer for uncollected.example"
            ),
        ]
    );
}

#[test]
fn spf_neutral_counts_off_keeps_only_real_passes() {
    let options = CheckOptions {
        spf_neutral_counts: false,
        ..CheckOptions::default()
    };
    let evaluation = run_with(FindingId::SpfAllowsAny, &snapshot(), &options);
    assert_eq!(fired(&evaluation), vec!["open.example"]);
}

#[test]
fn spf_missing_fires_for_none_and_several_records_not_for_permerror() {
    let evaluation = run(FindingId::SpfMissing);
    assert_eq!(fired(&evaluation), vec!["fabrikam.co.uk", "lync.example"]);
    assert_eq!(detail(&evaluation, "fabrikam.co.uk", "reason"), "multiple");
    assert_eq!(
        detail(&evaluation, "fabrikam.co.uk", "spf_records")
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(detail(&evaluation, "lync.example", "reason"), "missing");
    let failed_ids: Vec<_> = failed(&evaluation).into_iter().map(|(id, _)| id).collect();
    assert_eq!(failed_ids, vec!["broken.example", "uncollected.example"]);
}

#[test]
fn spf_invalid_fires_for_a_permerror_alone_with_cause_and_term() {
    let invalid = run(FindingId::SpfInvalid);
    assert_eq!(fired(&invalid), vec!["permerror.example"]);
    assert_eq!(detail(&invalid, "permerror.example", "cause"), "syntax");
    assert_eq!(detail(&invalid, "permerror.example", "term"), "include:");
    assert_eq!(
        detail(&invalid, "permerror.example", "record_domain"),
        "permerror.example"
    );
    // Several records stay domain.spf_missing; the permerror raises nothing else.
    assert!(!fired(&invalid).contains(&"fabrikam.co.uk"));
    for other in [FindingId::SpfMissing, FindingId::SpfAllowsAny] {
        assert!(
            !fired(&run(other)).contains(&"permerror.example"),
            "{other}"
        );
    }
    let failed_ids: Vec<_> = failed(&invalid).into_iter().map(|(id, _)| id).collect();
    assert_eq!(failed_ids, vec!["broken.example", "uncollected.example"]);
}

#[test]
fn only_email_domains_drops_domains_without_email() {
    let options = CheckOptions {
        only_email_domains: true,
        ..CheckOptions::default()
    };
    let spf = run_with(FindingId::SpfMissing, &snapshot(), &options);
    assert_eq!(fired(&spf), vec!["fabrikam.co.uk"]);
    let dmarc = run_with(FindingId::DmarcMissing, &snapshot(), &options);
    assert_eq!(fired(&dmarc), vec!["contoso.onmicrosoft.com"]);
}

#[test]
fn dmarc_missing_fires_without_fallback_for_onmicrosoft() {
    let evaluation = run(FindingId::DmarcMissing);
    assert_eq!(
        fired(&evaluation),
        vec!["contoso.onmicrosoft.com", "lync.example"]
    );
    assert_eq!(
        detail(&evaluation, "contoso.onmicrosoft.com", "location"),
        "_dmarc.contoso.onmicrosoft.com"
    );
    assert_eq!(
        detail(&evaluation, "contoso.onmicrosoft.com", "reason"),
        "missing"
    );
    assert_eq!(
        failed(&evaluation),
        vec![
            ("dmarcfail.example", "dns_timeout: _dmarc.dmarcfail.example"),
            (
                "uncollected.example",
                "not_collected: no txt answer for _dmarc.uncollected.example"
            ),
        ]
    );
    let options = CheckOptions {
        dmarc_include_moera: false,
        ..CheckOptions::default()
    };
    let without_moera = run_with(FindingId::DmarcMissing, &snapshot(), &options);
    assert_eq!(fired(&without_moera), vec!["lync.example"]);
}

#[test]
fn dmarc_not_enforced_uses_the_organizational_sp_for_subdomains() {
    let evaluation = run(FindingId::DmarcNotEnforced);
    assert_eq!(fired(&evaluation), vec!["open.example", "sub.contoso.com"]);
    assert_eq!(
        detail(&evaluation, "sub.contoso.com", "source"),
        "organizational"
    );
    assert_eq!(
        detail(&evaluation, "sub.contoso.com", "location"),
        "_dmarc.contoso.com"
    );
    assert_eq!(detail(&evaluation, "sub.contoso.com", "p"), "reject");
    assert_eq!(detail(&evaluation, "sub.contoso.com", "sp"), "none");
    assert_eq!(detail(&evaluation, "open.example", "source"), "domain");
}

#[test]
fn dmarc_subdomains_not_enforced_only_where_the_record_is_the_domains_own() {
    let evaluation = run(FindingId::DmarcSubdomainsNotEnforced);
    assert_eq!(fired(&evaluation), vec!["contoso.com", "open.example"]);
    assert_eq!(
        detail(&evaluation, "contoso.com", "subdomain_policy"),
        "none"
    );
    assert_eq!(
        detail(&evaluation, "contoso.com", "dmarc_record"),
        "v=DMARC1; p=reject; sp=none; rua=mailto:dmarc@contoso.com"
    );
}

#[test]
fn dmarc_partial_fires_for_pct_and_t_flag_not_for_quarantine_alone() {
    let evaluation = run(FindingId::DmarcPartial);
    assert_eq!(
        fired(&evaluation),
        vec!["fabrikam.co.uk", "testing.example"]
    );
    assert_eq!(detail(&evaluation, "fabrikam.co.uk", "reason"), "pct");
    assert_eq!(detail(&evaluation, "fabrikam.co.uk", "pct"), 25);
    assert_eq!(detail(&evaluation, "testing.example", "reason"), "t_flag");

    let options = CheckOptions {
        dmarc_quarantine_is_partial: true,
        dmarc_t_flag_counts: false,
        ..CheckOptions::default()
    };
    let evaluation = run_with(FindingId::DmarcPartial, &snapshot(), &options);
    assert_eq!(
        fired(&evaluation),
        vec!["fabrikam.co.uk", "quarantine.example"]
    );
    assert_eq!(
        detail(&evaluation, "quarantine.example", "reason"),
        "quarantine"
    );
}

#[test]
fn excluded_and_unverified_domains_never_appear() {
    for id in FindingId::ALL
        .iter()
        .filter(|id| id.as_str().starts_with("domain."))
    {
        let evaluation = run(*id);
        for (resource, _) in evaluation.failed_resources.iter() {
            assert_ne!(resource, "contoso.mail.onmicrosoft.com", "{id}");
        }
        for finding in &evaluation.findings {
            assert_ne!(finding.resource_id, "contoso.mail.onmicrosoft.com", "{id}");
            if *id != FindingId::DomainNotVerified {
                assert_ne!(finding.resource_id, "pending.example", "{id}");
            }
            if !matches!(*id, FindingId::DomainNotVerified | FindingId::SpfInvalid) {
                assert_ne!(finding.resource_id, "permerror.example", "{id}");
            }
        }
    }
}

#[test]
fn servfail_for_one_domain_fails_only_that_domain() {
    let mut snapshot = snapshot();
    snapshot.dns.insert(
        "open.example".to_owned(),
        Err(Unavailable::dns_failure("open.example", "servfail")),
    );
    let spf = run_with(FindingId::SpfAllowsAny, &snapshot, &CheckOptions::default());
    assert_eq!(fired(&spf), vec!["sub.contoso.com"]);
    let failed_ids: Vec<_> = failed(&spf).into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        failed_ids,
        vec!["broken.example", "open.example", "uncollected.example"]
    );
    // DMARC for the same domain is unaffected.
    let dmarc = run_with(
        FindingId::DmarcNotEnforced,
        &snapshot,
        &CheckOptions::default(),
    );
    assert_eq!(fired(&dmarc), vec!["open.example", "sub.contoso.com"]);
}

#[test]
fn include_target_failure_fails_the_including_domain() {
    let mut snapshot = snapshot();
    snapshot.dns.remove("bad-relay.example");
    let spf = run_with(FindingId::SpfAllowsAny, &snapshot, &CheckOptions::default());
    assert_eq!(fired(&spf), vec!["sub.contoso.com"]);
    assert!(failed(&spf).contains(&(
        "open.example",
        "not_collected: no txt answer for bad-relay.example"
    )));
}

#[test]
fn domains_section_unavailable_skips_every_domain_check() {
    let mut snapshot = snapshot();
    snapshot.domains = Err(Unavailable::PermissionDenied {
        permission: "Domain.Read.All".to_owned(),
    });
    let ctx_options = CheckOptions::default();
    let ctx = EvalCtx {
        now: Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(),
        options: &ctx_options,
    };
    let domain_ids: Vec<_> = FindingId::ALL
        .iter()
        .filter(|id| id.as_str().starts_with("domain."))
        .collect();
    assert_eq!(domain_ids.len(), 8);
    for id in domain_ids {
        assert_eq!(
            checks::evaluate(*id, &snapshot, &ctx),
            Outcome::Skipped {
                reason: "permission_denied: Domain.Read.All".to_owned()
            },
            "{id}"
        );
    }
}

#[test]
fn domain_sets_follow_the_options() {
    let domains = fixture_domains();
    let spf = spf_domains(&domains, &CheckOptions::default());
    assert!(spf.contains(&"contoso.onmicrosoft.com".to_owned()));
    assert!(!spf.contains(&"contoso.mail.onmicrosoft.com".to_owned()));
    assert!(!spf.contains(&"pending.example".to_owned()));
    assert_eq!(spf.len(), 12);
    let options = CheckOptions {
        dmarc_include_moera: false,
        ..CheckOptions::default()
    };
    let dmarc = dmarc_domains(&domains, &options);
    assert_eq!(dmarc.len(), 11);
    assert!(!dmarc.contains(&"contoso.onmicrosoft.com".to_owned()));
}

#[test]
fn dns_names_needed_on_the_fixture_asks_only_for_what_is_absent() {
    let needed = dns_names_needed(
        &fixture_domains(),
        &CheckOptions::default(),
        &fixture_dns(),
        &HostAnswers::default(),
    );
    assert_eq!(
        needed.txt,
        vec!["_dmarc.uncollected.example", "uncollected.example"]
    );
    assert!(needed.addresses.is_empty() && needed.mx.is_empty());
}

#[test]
fn collecting_in_rounds_until_nothing_is_needed_reaches_a_full_verdict() {
    // A fake resolver that answers from the fixture (absent names are NXDOMAIN), driven the way
    // collection drives it.
    let world = fixture_dns();
    let domains = fixture_domains();
    let options = CheckOptions::default();
    let mut answers = DnsAnswers::new();
    let mut rounds = 0;
    loop {
        let needed = dns_names_needed(&domains, &options, &answers, &HostAnswers::default());
        if needed.is_empty() {
            break;
        }
        rounds += 1;
        assert!(rounds < 12, "collection does not converge: {needed:?}");
        for name in needed.txt {
            let answer = world.get(&name).cloned().unwrap_or(Ok(Vec::new()));
            answers.insert(name, answer);
        }
    }
    assert!(answers.contains_key("spfd.protection.outlook.com"));
    assert!(answers.contains_key("bad-relay.example"));
    assert!(answers.contains_key("_dmarc.contoso.com"));
    assert!(!answers.contains_key("_dmarc.onmicrosoft.com"));
    assert!(!answers.contains_key("contoso.mail.onmicrosoft.com"));
    let mut snapshot = snapshot();
    snapshot.dns = answers;
    for id in FindingId::ALL
        .iter()
        .filter(|id| id.as_str().starts_with("domain."))
    {
        let evaluation = run_with(*id, &snapshot, &options);
        let not_collected = evaluation
            .failed_resources
            .iter()
            .any(|(_, reason)| reason.starts_with("not_collected"));
        assert!(!not_collected, "{id}: {:?}", evaluation.failed_resources);
    }
    let spf_missing = run_with(FindingId::SpfMissing, &snapshot, &options);
    assert!(fired(&spf_missing).contains(&"uncollected.example"));
}

#[test]
fn spf_missing_needs_only_the_domains_own_answer() {
    // open.example has exactly one SPF record; its include target failing leaves
    // domain.spf_allows_any unknown but domain.spf_missing decided (not missing).
    let mut snapshot = snapshot();
    snapshot.dns.insert(
        "bad-relay.example".to_owned(),
        Err(Unavailable::dns_failure("bad-relay.example", "servfail")),
    );
    let any = run_with(FindingId::SpfAllowsAny, &snapshot, &CheckOptions::default());
    assert!(failed(&any).contains(&("open.example", "dns_servfail: bad-relay.example")));
    let missing = run_with(FindingId::SpfMissing, &snapshot, &CheckOptions::default());
    let failed_ids: Vec<_> = failed(&missing).into_iter().map(|(id, _)| id).collect();
    assert_eq!(failed_ids, vec!["broken.example", "uncollected.example"]);
    assert!(!fired(&missing).contains(&"open.example"));
}

#[test]
fn not_verified_findings_come_in_resource_id_order() {
    let mut snapshot = snapshot();
    let mut domains = fixture_domains();
    for id in ["zeta.example", "Alpha.example"] {
        domains.push(Domain {
            id: id.to_owned(),
            is_verified: Some(false),
            ..Domain::default()
        });
    }
    snapshot.domains = Ok(domains);
    let evaluation = run_with(
        FindingId::DomainNotVerified,
        &snapshot,
        &CheckOptions::default(),
    );
    let in_output_order: Vec<&str> = evaluation
        .findings
        .iter()
        .map(|f| f.resource_id.as_str())
        .collect();
    assert_eq!(
        in_output_order,
        vec!["alpha.example", "pending.example", "zeta.example"]
    );
}

#[test]
fn a_redirect_to_a_macro_leaves_spf_allows_any_unevaluated_not_clean() {
    // open.example fires today (its include passes every address). When its record becomes a
    // redirect to a macro target, nothing says whether any address may send: the domain is
    // unevaluated for domain.spf_allows_any (its instance keeps its state; the check is not in
    // error, since DNS answered), while
    // domain.spf_missing and domain.spf_invalid have their answer (one record, no permerror).
    let mut snapshot = snapshot();
    let before = run_with(FindingId::SpfAllowsAny, &snapshot, &CheckOptions::default());
    assert!(fired(&before).contains(&"open.example"));
    snapshot.dns.insert(
        "open.example".to_owned(),
        Ok(vec!["v=spf1 redirect=%{d}._spf.example.net".to_owned()]),
    );
    let any = run_with(FindingId::SpfAllowsAny, &snapshot, &CheckOptions::default());
    assert!(!fired(&any).contains(&"open.example"));
    assert_eq!(
        any.unevaluated.iter().collect::<Vec<_>>(),
        [("open.example", "spf_redirect_macro")]
    );
    assert!(!failed(&any).iter().any(|(d, _)| *d == "open.example"));
    for id in [FindingId::SpfMissing, FindingId::SpfInvalid] {
        let evaluation = run_with(id, &snapshot, &CheckOptions::default());
        assert!(!fired(&evaluation).contains(&"open.example"), "{id}");
        assert!(
            !failed(&evaluation)
                .iter()
                .any(|(d, _)| *d == "open.example"),
            "{id}"
        );
    }
}
