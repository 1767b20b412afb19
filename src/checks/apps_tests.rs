//! Tests of the `app.*` checks against Graph-shaped fixtures.

use super::*;
use crate::checks::options::UnknownCertification;
use crate::checks::test_fixtures::*;
use crate::checks::CheckOptions;
use crate::snapshot::Unavailable;
use FindingId::*;

fn apps_snapshot() -> TenantSnapshot {
    let mut snapshot = snapshot("mailbox_owners");
    snapshot.applications = Ok(list("applications", "tenant_apps"));
    snapshot.service_principals = Ok(list("service_principals", "mixed"));
    snapshot
}

fn sorted_names(id: FindingId, options: &CheckOptions) -> Vec<String> {
    let found = evaluation(run(id, &apps_snapshot(), options)).findings;
    let mut names: Vec<String> = found.iter().map(|f| f.resource_name.clone()).collect();
    names.sort();
    names
}

fn skip_unknown() -> CheckOptions {
    CheckOptions {
        unknown_certification: UnknownCertification::Skip,
        ..CheckOptions::default()
    }
}

#[test]
fn not_certified_flags_unknown_and_false_but_excludes_first_party_and_non_applications() {
    let found = sorted_names(AppNotMicrosoftCertified, &CheckOptions::default());
    assert_eq!(
        found,
        [
            "Partner Not Disabled",
            "Partner Unknown Cert",
            "Rogue Partner App",
            "Uncertified Partner Tool",
        ]
    );
    let snapshot = apps_snapshot();
    let found = findings(AppNotMicrosoftCertified, &snapshot);
    let tool = found
        .iter()
        .find(|f| f.resource_name == "Uncertified Partner Tool")
        .unwrap();
    assert_eq!(tool.details["certification"], "false");
    let rogue = found
        .iter()
        .find(|f| f.resource_name == "Rogue Partner App")
        .unwrap();
    assert_eq!(rogue.details["certification"], "unknown");
    assert_eq!(rogue.details["verified_publisher"], true);
    assert_eq!(
        rogue.details["app_owner_organization_id"],
        "9b2d7c1e-4f3a-4e8b-a1c2-3d4e5f607182"
    );
    let sps = snapshot.service_principals.as_ref().unwrap();
    assert!(
        sps.iter().any(|sp| sp.id == rogue.resource_id),
        "resource id is the SP object id"
    );
}

#[test]
fn unknown_certification_can_be_skipped() {
    let found = sorted_names(AppNotMicrosoftCertified, &skip_unknown());
    assert_eq!(found, ["Uncertified Partner Tool"]);
    assert!(sorted_names(AppNotPublisherAttested, &skip_unknown()).is_empty());
}

#[test]
fn not_attested_reads_the_publisher_attestation_flag() {
    let found = sorted_names(AppNotPublisherAttested, &CheckOptions::default());
    assert_eq!(
        found,
        [
            "Partner Not Disabled",
            "Partner Unknown Cert",
            "Rogue Partner App"
        ]
    );
}

#[test]
fn the_organization_id_also_marks_tenant_owned_apps() {
    let mut snapshot = apps_snapshot();
    snapshot.tenant_id = "configured-under-another-spelling".to_owned();
    let found = evaluation(run(
        AppNotMicrosoftCertified,
        &snapshot,
        &CheckOptions::default(),
    ));
    assert!(!names(&found.findings).contains(&"Contoso Own App"));
    snapshot.organization = Err(Unavailable::Throttled);
    let found = evaluation(run(
        AppNotMicrosoftCertified,
        &snapshot,
        &CheckOptions::default(),
    ));
    assert!(names(&found.findings).contains(&"Contoso Own App"));
}

#[test]
fn disabled_by_microsoft_covers_third_party_sps_and_own_apps_only() {
    let found = sorted_names(AppDisabledByMicrosoft, &CheckOptions::default());
    assert_eq!(found, ["Disabled Own App", "Rogue Partner App"]);
    let snapshot = apps_snapshot();
    let found = findings(AppDisabledByMicrosoft, &snapshot);
    let own = found
        .iter()
        .find(|f| f.resource_name == "Disabled Own App")
        .unwrap();
    assert_eq!(own.details["object_type"], "application");
    assert_eq!(
        own.details["disabled_by_microsoft_status"],
        "DisabledDueToViolationOfServicesAgreement"
    );
    let apps = snapshot.applications.as_ref().unwrap();
    assert!(
        apps.iter().any(|a| a.id == own.resource_id),
        "resource id is the app object id"
    );
}

#[test]
fn certification_expiring_fires_within_the_window_and_for_expired() {
    let found = sorted_names(AppCertificationExpiring, &CheckOptions::default());
    assert_eq!(
        found,
        [
            "Exactly Ninety App",
            "Expired Cert App",
            "Expiring Soon App"
        ]
    );
    let found = findings(AppCertificationExpiring, &apps_snapshot());
    let expired = found
        .iter()
        .find(|f| f.resource_name == "Expired Cert App")
        .unwrap();
    assert_eq!(expired.details["reason"], "expired");
    assert_eq!(expired.details["days_remaining"], -20);
    let soon = found
        .iter()
        .find(|f| f.resource_name == "Expiring Soon App")
        .unwrap();
    assert_eq!(soon.details["reason"], "expiring");
    assert_eq!(soon.details["days_remaining"], 30);
    let longer = CheckOptions {
        certification_expiry_days: 365,
        ..CheckOptions::default()
    };
    let found = sorted_names(AppCertificationExpiring, &longer);
    let expected = [
        "Certified Partner Connector",
        "Exactly Ninety App",
        "Expired Cert App",
        "Expiring Soon App",
        "Far Future App",
        "Ninety One Days App",
    ];
    assert_eq!(found, expected, "not certified and no expiry never fire");
}

#[test]
fn unavailable_sections_skip_the_app_checks() {
    let mut no_sps = apps_snapshot();
    no_sps.service_principals = Err(denied("Application.Read.All"));
    let mut no_apps = apps_snapshot();
    no_apps.applications = Err(Unavailable::GraphError { status: 502 });
    let options = CheckOptions::default();
    for id in [
        AppNotMicrosoftCertified,
        AppNotPublisherAttested,
        AppDisabledByMicrosoft,
    ] {
        assert_eq!(
            skip_reason(run(id, &no_sps, &options)),
            "permission_denied: Application.Read.All"
        );
        assert_eq!(skip_reason(run(id, &no_apps, &options)), "graph_error 502");
    }
    assert_eq!(
        skip_reason(run(AppCertificationExpiring, &no_apps, &options)),
        "graph_error 502"
    );
    let ran = evaluation(run(AppCertificationExpiring, &no_sps, &options));
    assert_eq!(ran.findings.len(), 3, "E8 needs only /applications");
}

/// A Microsoft app published from the AME tenant, Graph-shaped.
fn ame_app() -> ServicePrincipal {
    serde_json::from_value(serde_json::json!({
        "id": "5e1b8c9a-0000-4000-8000-00000000a0e1",
        "appId": "05a65629-4c1b-48c1-a78b-804c4abdd4af",
        "displayName": "Microsoft Defender for Cloud Apps - Session Controls",
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": "33e01921-4d64-4f8c-a055-5bdaffd5e33d",
        "accountEnabled": true,
        "verifiedPublisher": {"displayName": null, "verifiedPublisherId": null},
        "disabledByMicrosoftStatus": "DisabledDueToViolationOfServicesAgreement"
    }))
    .unwrap()
}

#[test]
fn a_microsoft_app_owned_by_ame_raises_nothing() {
    let mut snapshot = apps_snapshot();
    let ame = ame_app();
    if let Ok(sps) = snapshot.service_principals.as_mut() {
        sps.push(ame.clone());
    }
    for id in [
        AppNotMicrosoftCertified,
        AppNotPublisherAttested,
        AppDisabledByMicrosoft,
        AppCertificationExpiring,
    ] {
        let found = evaluation(run(id, &snapshot, &CheckOptions::default())).findings;
        assert!(found.iter().all(|f| f.resource_id != ame.id), "{id}");
    }
}

#[test]
fn configured_first_party_tenants_are_not_third_party() {
    let partner = "9b2d7c1e-4f3a-4e8b-a1c2-3d4e5f607182";
    let owned_by_partner = |options: &CheckOptions| {
        let found = evaluation(run(AppNotMicrosoftCertified, &apps_snapshot(), options));
        let partner_apps = found.findings.iter();
        partner_apps
            .filter(|f| f.details["app_owner_organization_id"] == partner)
            .count()
    };
    assert!(owned_by_partner(&CheckOptions::default()) > 0);
    let options = CheckOptions {
        first_party_tenant_ids: vec![partner.to_ascii_uppercase()],
        ..CheckOptions::default()
    };
    assert_eq!(owned_by_partner(&options), 0);
}
