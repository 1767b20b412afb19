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
    let report = probe_tenant(&ctx, &ctx.config.tenants[0], &CancellationToken::new()).await;
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
    assert!(report
        .render()
        .contains("contoso: MailboxSettings.Read MISSING (403"));
    assert!(
        sim.stats().total_requests <= 10,
        "one cheap request per permission"
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
    let report = probe_tenant(&ctx, &ctx.config.tenants[0], &CancellationToken::new()).await;
    assert!(report
        .token_error
        .as_deref()
        .is_some_and(|e| e.contains("AADSTS7000215")));
    assert!(report.permissions.is_empty() && !report.ok());
}
