//! Collection of the simulator's contoso tenant: every section arrives, per-user data is
//! keyed by user, 404 mailboxes are empty answers, DNS follows includes.

#[path = "collect_support/mod.rs"]
mod support;

use support::*;

const ADELE: &str = "a1000000-0000-4000-8000-000000000001";

#[tokio::test]
async fn collects_every_section_of_the_fixture_tenant() {
    let sim = sim(contoso()).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = collect(&ctx).await;
    assert_eq!(report.error, None);
    let snap = &report.snapshot;
    let tenant = sim.tenant();
    assert_eq!(snap.users.as_ref().unwrap().len(), tenant.users.len());
    assert_eq!(snap.domains.as_ref().unwrap().len(), tenant.domains.len());
    assert_eq!(
        snap.service_principals.as_ref().unwrap().len(),
        tenant.service_principals.len()
    );
    assert_eq!(
        snap.applications.as_ref().unwrap().len(),
        tenant.applications.len()
    );
    assert!(snap.organization.is_ok(), "{:?}", snap.organization);
    let rules = snap.message_rules.as_ref().unwrap();
    assert!(rules.get(ADELE).is_some_and(|r| r.is_ok()), "{rules:?}");
    let calendar = snap.calendar_permissions.as_ref().unwrap();
    assert!(calendar.values().all(|r| r.is_ok()), "{calendar:?}");
    assert!(snap.auth_methods.is_ok(), "{:?}", snap.auth_methods);
    assert!(
        snap.registration_details.is_ok(),
        "{:?}",
        snap.registration_details
    );
    assert_eq!(
        snap.dns.get("contoso.com"),
        Some(&Ok(tenant.dns["contoso.com"].clone()))
    );
    assert!(
        snap.dns.contains_key("spf.protection.outlook.com"),
        "{:?}",
        snap.dns.keys()
    );
    assert!(snap.dns.contains_key("_dmarc.fabrikam.net"));
    assert_eq!(counted_requests(&ctx), sim.stats().total_requests);
}

#[tokio::test]
async fn guests_with_a_mail_address_get_no_mailbox_requests() {
    let mut tenant = contoso();
    let guest = "9e000000-0000-4000-8000-00000000a001";
    tenant.users.push(serde_json::json!({
        "id": guest, "userPrincipalName": "pat_partner.example#EXT#@contoso.onmicrosoft.com",
        "displayName": "Pat Partner", "mail": "pat@partner.example", "userType": "Guest",
        "creationType": "Invitation", "accountEnabled": true
    }));
    let sim = sim(tenant).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = collect(&ctx).await;
    assert_eq!(report.error, None);
    let snap = &report.snapshot;
    assert!(snap.users.as_ref().unwrap().iter().any(|u| &*u.id == guest));
    assert!(!snap.message_rules.as_ref().unwrap().contains_key(guest));
    assert!(!snap
        .calendar_permissions
        .as_ref()
        .unwrap()
        .contains_key(guest));
    // Members with a mailbox are still read.
    assert!(snap.message_rules.as_ref().unwrap().contains_key(ADELE));
}

/// The daemon evaluates with `evaluate_releasing`, which frees the per-user sections as soon
/// as their checks have run: on a collected tenant its outcomes are exactly `evaluate_all`'s,
/// checks that read the freed sections included (so `checks::inputs` names all they read).
#[tokio::test]
async fn evaluation_that_frees_sections_early_gives_the_same_outcomes() {
    use m365_posture::checks::{evaluate_all, evaluate_releasing, CheckOptions, EvalCtx, Outcome};
    use m365_posture::findings::FindingId;
    let sim = sim(contoso()).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    let options = CheckOptions::default();
    let ctx = EvalCtx {
        now: m365_posture::scan::clock_now(),
        options: &options,
    };
    let all = evaluate_all(&snap, &ctx);
    let released = evaluate_releasing(snap, &ctx);
    assert_eq!(released, all);
    let found = |id: FindingId| match &all.iter().find(|(i, _)| *i == id).unwrap().1 {
        Outcome::Evaluated(evaluation) => evaluation.findings.len(),
        Outcome::Skipped { reason } => panic!("{id} skipped: {reason}"),
    };
    for id in [
        FindingId::Fido2Unattested,
        FindingId::CalendarSharedExternally,
        FindingId::RuleForwardsExternal,
        FindingId::PasswordNotChanged,
    ] {
        assert!(found(id) > 0, "{id} found nothing on contoso");
    }
}
