//! Tests of `calendar.shared_externally` against Graph-shaped fixtures.

use super::*;
use crate::checks::test_fixtures::*;
use crate::checks::CheckOptions;
use crate::snapshot::Unavailable;

const ID: FindingId = FindingId::CalendarSharedExternally;

fn with_permissions(
    entries: Vec<(&str, Result<Vec<CalendarPermission>, Unavailable>)>,
) -> TenantSnapshot {
    let mut snapshot = snapshot("mailbox_owners");
    snapshot.calendar_permissions = Ok(per_user(&snapshot, entries));
    snapshot
}

fn sharees(findings: &[crate::findings::Finding]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f.details["sharee_address"].as_str().unwrap_or("<null>"))
        .collect()
}

#[test]
fn the_doc_example_fires_for_the_external_reader_only() {
    let snapshot = with_permissions(vec![(
        "alice",
        Ok(list("calendar_permissions", "doc_example")),
    )]);
    let found = findings(ID, &snapshot);
    assert_eq!(found.len(), 1);
    let hit = &found[0];
    let alice = user_id(&snapshot, "alice");
    assert_eq!(
        hit.resource_id,
        format!(
            "{alice}/RXhjaGFuZ2VQdWJsaXNoZWRVc2VyLmFkbWluQE0zNjVCODc3NzE5Lm9ubWljcm9zb2Z0LmNvbQ=="
        )
    );
    assert_eq!(hit.resource_name, "alice@contoso.com");
    assert_eq!(hit.details["role"], "read");
    assert_eq!(
        hit.details["sharee_address"],
        "admin@M365B877719.onmicrosoft.com"
    );
    assert_eq!(hit.details["basis"], "isInsideOrganization");
}

#[test]
fn role_none_inside_flag_my_organization_and_internal_domains_do_not_fire() {
    let snapshot = with_permissions(vec![("bob", Ok(list("calendar_permissions", "mixed")))]);
    let found = findings(ID, &snapshot);
    assert_eq!(
        sharees(&found),
        [
            "reader@Fabrikam.com",
            "freebusy@fabrikam.com",
            "pat@partner.example",
            "eve@eu.contoso.com",
        ]
    );
    let by_domain = &found[0];
    assert_eq!(by_domain.details["basis"], "domain");
    assert_eq!(by_domain.details["is_inside_organization"], Value::Null);
    assert_eq!(found[1].details["role"], "freeBusyRead");
}

#[test]
fn subdomains_and_extra_internal_domains_follow_the_options() {
    let snapshot = with_permissions(vec![("bob", Ok(list("calendar_permissions", "mixed")))]);
    let options = CheckOptions {
        subdomains_internal: true,
        extra_internal_domains: vec!["PARTNER.example".to_owned()],
        ..CheckOptions::default()
    };
    let found = evaluation(run(ID, &snapshot, &options)).findings;
    assert_eq!(
        sharees(&found),
        ["reader@Fabrikam.com", "freebusy@fabrikam.com"]
    );
}

#[test]
fn guests_and_excluded_users_are_skipped() {
    let doc = || Ok(list("calendar_permissions", "doc_example"));
    let snapshot = with_permissions(vec![
        ("carol", doc()),
        ("svc.scanner", doc()),
        ("bob", doc()),
    ]);
    let options = CheckOptions {
        exclude_users: vec!["SVC.SCANNER@contoso.com".to_owned()],
        ..CheckOptions::default()
    };
    let found = evaluation(run(ID, &snapshot, &options)).findings;
    assert_eq!(names(&found), ["bob@contoso.com"]);
}

#[test]
fn a_failed_mailbox_is_a_failed_resource_and_others_still_fire() {
    let snapshot = with_permissions(vec![
        ("alice", Err(denied("Calendars.ReadBasic.All"))),
        ("bob", Ok(list("calendar_permissions", "doc_example"))),
    ]);
    let evaluation = evaluation(run(ID, &snapshot, &CheckOptions::default()));
    assert_eq!(
        evaluation.failed_resources.iter().collect::<Vec<_>>(),
        [(
            user_id(&snapshot, "alice").as_str(),
            "permission_denied: Calendars.ReadBasic.All"
        )]
    );
    assert_eq!(names(&evaluation.findings), ["bob@contoso.com"]);
}

#[test]
fn missing_permissions_users_or_domains_skip_the_check() {
    let base = with_permissions(vec![(
        "bob",
        Ok(list("calendar_permissions", "doc_example")),
    )]);
    let mut no_permissions = base.clone();
    no_permissions.calendar_permissions = Err(denied("Calendars.ReadBasic.All"));
    let mut no_domains = base.clone();
    no_domains.domains = Err(Unavailable::Throttled);
    let mut no_users = base;
    no_users.users = Err(Unavailable::GraphError { status: 500 });
    let options = CheckOptions::default();
    assert_eq!(
        skip_reason(run(ID, &no_permissions, &options)),
        "permission_denied: Calendars.ReadBasic.All"
    );
    assert_eq!(skip_reason(run(ID, &no_domains, &options)), "throttled");
    assert_eq!(skip_reason(run(ID, &no_users, &options)), "graph_error 500");
}
