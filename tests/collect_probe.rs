//! `check-config --probe` against graph-sim: a token, then one request per permission; each
//! missing permission is named.

#[path = "collect_support/mod.rs"]
mod support;

use m365_posture::collect::probe::{probe_tenant, PermissionStatus};
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn probe_names_each_missing_permission() {
    let mut tenant = contoso();
    tenant.faults.forbidden_roles = vec!["MailboxSettings.Read".into(), "Domain.Read.All".into()];
    let sim = sim(tenant).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = probe_tenant(&ctx, &ctx.config().tenants[0], &CancellationToken::new()).await;
    assert_eq!(report.token_error, None);
    let missing: Vec<&str> = report
        .permissions
        .iter()
        .filter(|p| matches!(p.status, PermissionStatus::Missing(_)))
        .map(|p| p.permission)
        .collect();
    assert_eq!(missing, vec!["Domain.Read.All", "MailboxSettings.Read"]);
    assert!(report
        .permissions
        .iter()
        .any(|p| p.permission == "User.Read.All" && p.status == PermissionStatus::Granted));
    assert!(!report.ok());
    let text = report.render();
    assert!(
        text.contains(
            "contoso: MailboxSettings.Read MISSING (not in the token's roles; disables mail.rule_"
        ),
        "{text}"
    );
    assert!(
        sim.stats().total_requests <= 10,
        "one cheap request per permission"
    );
}

/// An app granted `Calendars.ReadBasic` (a delegated name, never in `roles`) and
/// `User.Read.All` (which does not grant `/organization`): the token's roles name every
/// missing permission, with the checks it disables, before any Graph request.
#[tokio::test]
async fn probe_decodes_the_token_roles_before_any_request() {
    let mut tenant = contoso();
    tenant.clients = Some(vec![graph_sim::ClientRegistration {
        client_id: graph_sim::DEFAULT_CLIENT_ID.into(),
        client_secret: Some(graph_sim::DEFAULT_CLIENT_SECRET.into()),
        certificate_pem: None,
        roles: [
            "User.Read.All",
            "Directory.Read.All",
            "Calendars.ReadBasic",
            "MailboxSettings.Read",
        ]
        .map(String::from)
        .to_vec(),
    }]);
    let sim = sim(tenant).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = probe_tenant(&ctx, &ctx.config().tenants[0], &CancellationToken::new()).await;
    let missing: Vec<&str> = report
        .permissions
        .iter()
        .filter(|p| matches!(p.status, PermissionStatus::Missing(_)))
        .map(|p| p.permission)
        .collect();
    assert_eq!(
        missing,
        [
            "AuditLog.Read.All",
            "UserAuthenticationMethod.Read.All",
            "Calendars.ReadBasic.All"
        ]
    );
    let text = report.render();
    assert!(
        text.contains("contoso: Calendars.ReadBasic.All MISSING (not in the token's roles; disables calendar.shared_externally)"),
        "{text}"
    );
    assert!(text.contains("contoso: Organization.Read.All ok"), "{text}");
    let stats = sim.stats();
    assert_eq!(
        stats.total_to("/v1.0/users/{id}/calendar/calendarPermissions"),
        0
    );
    assert_eq!(stats.total_to("/v1.0/users/{id}/authentication/methods"), 0);
}

/// graph-sim enforces the documented application permission: `User.Read.All` does not read
/// `/organization` (organization-get lists `Organization.Read.All` and `Directory.Read.All`).
#[tokio::test]
async fn organization_needs_organization_read_all_not_user_read_all() {
    let mut tenant = contoso();
    tenant.clients = Some(vec![graph_sim::ClientRegistration {
        client_id: graph_sim::DEFAULT_CLIENT_ID.into(),
        client_secret: Some(graph_sim::DEFAULT_CLIENT_SECRET.into()),
        certificate_pem: None,
        roles: vec!["User.Read.All".into()],
    }]);
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    assert!(snap.users.is_ok());
    assert_eq!(
        snap.organization.unwrap_err().to_string(),
        "permission_denied: Organization.Read.All"
    );
}

#[tokio::test]
async fn probe_reports_token_failure_in_words() {
    let sim = sim(contoso()).await;
    let files = Files::new();
    let auth = m365_posture::config::TenantAuth::ClientSecret {
        secret_file: files.write("s", "bad"),
    };
    let ctx = context(config(&sim, auth));
    let report = probe_tenant(&ctx, &ctx.config().tenants[0], &CancellationToken::new()).await;
    assert!(report
        .token_error
        .as_deref()
        .is_some_and(|e| e.contains("AADSTS7000215")));
    assert!(report.permissions.is_empty() && !report.ok());
}
