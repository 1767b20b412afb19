//! Third-party app checks (A1-A3) and `app.certification_expiring` (E8).
//!
//! Third-party scope: service principals of type `Application` whose `appOwnerOrganizationId`
//! is neither this tenant (config tenant id or `/organization` id) nor a tenant that owns
//! Microsoft's first-party apps ([`MICROSOFT_TENANT_IDS`] and `first_party_tenant_ids`). Microsoft 365 certification is readable only on the tenant's own `/applications`,
//! matched by `appId`; for other apps it is unknown, which counts as not certified / not
//! attested unless `unknown_certification = "skip"`. `app.disabled_by_microsoft` also covers
//! the tenant's own applications. Resource ids are object ids.

use super::internal::{available, details, evaluated, finding, Unread};
use super::options::UnknownCertification;
use super::{EvalCtx, Outcome};
use crate::findings::FindingId;
use crate::snapshot::{Application, Certification, ServicePrincipal, TenantSnapshot};
use chrono::Duration;
use serde_json::json;
use std::collections::BTreeMap;

/// Tenants that own Microsoft's first-party apps (`appOwnerOrganizationId`); more can be added
/// with `[checks] first_party_tenant_ids`. Microsoft Services and Microsoft (Microsoft's
/// "verify first-party apps" guidance and the tools that filter first-party apps, Maester
/// among them); AME, which Microsoft's Zero Trust Assessment skips alongside Microsoft
/// Services; and the AME tenants of the national clouds (US Government, China operated by
/// 21Vianet), as Microsoft's Azure code lists them per cloud.
pub const MICROSOFT_TENANT_IDS: [&str; 5] = [
    "f8cdef31-a31e-4b4a-93e4-5f571e91255a", // Microsoft Services
    "72f988bf-86f1-41af-91ab-2d7cd011db47", // Microsoft
    "33e01921-4d64-4f8c-a055-5bdaffd5e33d", // AME
    "cab8a31a-1906-4287-a0d8-4eef66b95f6e", // AME, Azure US Government
    "a55a4d5b-9241-49b1-b4ff-befa8db00269", // AME, Azure China (21Vianet)
];

/// Which certification flag a finding reads.
type CertificationFlag = fn(&Certification) -> Option<bool>;

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    let outcome = match id {
        FindingId::AppNotMicrosoftCertified => {
            not_certified(id, |c| c.is_certified_by_microsoft, snapshot, ctx)
        }
        FindingId::AppNotPublisherAttested => {
            not_certified(id, |c| c.is_publisher_attested, snapshot, ctx)
        }
        FindingId::AppDisabledByMicrosoft => disabled_by_microsoft(snapshot, ctx),
        FindingId::AppCertificationExpiring => certification_expiring(snapshot, ctx),
        _ => Ok(super::not_implemented()),
    };
    outcome.unwrap_or_else(|skipped| skipped)
}

/// The tenant ids that own first-party apps: this tenant (both ids we know), Microsoft's and
/// the configured `first_party_tenant_ids`.
fn own_tenant_ids(snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Vec<String> {
    let mut ids: Vec<String> = MICROSOFT_TENANT_IDS.iter().map(|s| s.to_string()).collect();
    let extra = &ctx.options.first_party_tenant_ids;
    ids.extend(extra.iter().map(|id| id.to_ascii_lowercase()));
    ids.push(snapshot.tenant_id.to_ascii_lowercase());
    if let Ok(organization) = &snapshot.organization {
        ids.push(organization.id.to_ascii_lowercase());
    }
    ids
}

/// True when `sp` is a third-party application (see the module doc).
pub fn is_third_party(sp: &ServicePrincipal, own_tenant_ids: &[String]) -> bool {
    let is_application = sp
        .service_principal_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("Application"));
    let owner = sp.app_owner_organization_id.as_deref().map(str::trim);
    let first_party = owner.is_some_and(|owner| {
        own_tenant_ids
            .iter()
            .any(|id| id.eq_ignore_ascii_case(owner))
    });
    is_application && !first_party
}

fn sp_name(sp: &ServicePrincipal) -> &str {
    sp.display_name
        .as_deref()
        .or(sp.app_display_name.as_deref())
        .unwrap_or(&sp.id)
}

fn app_name(app: &Application) -> &str {
    app.display_name
        .as_deref()
        .or(app.app_id.as_deref())
        .unwrap_or(&app.id)
}

/// True when a publisher id is present on the service principal, or else on the application.
fn has_verified_publisher(sp: &ServicePrincipal, app: Option<&Application>) -> bool {
    let on_sp = sp.verified_publisher.as_ref();
    let on_app = app.and_then(|a| a.verified_publisher.as_ref());
    [on_sp, on_app]
        .into_iter()
        .flatten()
        .any(|p| p.verified_publisher_id.is_some())
}

/// A1 / A2: in-scope service principals without positive certification evidence.
fn not_certified(
    id: FindingId,
    flag: CertificationFlag,
    snapshot: &TenantSnapshot,
    ctx: &EvalCtx<'_>,
) -> Result<Outcome, Outcome> {
    let service_principals = available(&snapshot.service_principals)?;
    let applications = available(&snapshot.applications)?;
    let by_app_id: BTreeMap<String, &Application> = applications
        .iter()
        .filter_map(|app| Some((app.app_id.as_deref()?.to_ascii_lowercase(), app)))
        .collect();
    let own = own_tenant_ids(snapshot, ctx);
    let mut findings = Vec::new();
    for sp in service_principals
        .iter()
        .filter(|sp| is_third_party(sp, &own))
    {
        let app = sp
            .app_id
            .as_deref()
            .and_then(|app_id| by_app_id.get(&app_id.to_ascii_lowercase()).copied());
        let known = app.and_then(|a| a.certification.as_ref()).and_then(flag);
        let certification = match (known, ctx.options.unknown_certification) {
            (Some(true), _) | (None, UnknownCertification::Skip) => continue,
            (Some(false), _) => "false",
            (None, UnknownCertification::Flag) => "unknown",
        };
        let found = json!({
            "certification": certification,
            "app_id": sp.app_id,
            "app_owner_organization_id": sp.app_owner_organization_id,
            "verified_publisher": has_verified_publisher(sp, app),
            "account_enabled": sp.account_enabled,
        });
        findings.push(finding(id, sp.id.clone(), sp_name(sp), details(found)));
    }
    Ok(evaluated(findings, Unread::default()))
}

/// True for a non-null status other than `NotDisabled` (case-insensitive).
fn is_disabled(status: Option<&str>) -> bool {
    status.is_some_and(|s| !s.trim().eq_ignore_ascii_case("NotDisabled"))
}

/// A3: in-scope service principals and the tenant's own applications that Microsoft disabled.
fn disabled_by_microsoft(snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Result<Outcome, Outcome> {
    let service_principals = available(&snapshot.service_principals)?;
    let applications = available(&snapshot.applications)?;
    let own = own_tenant_ids(snapshot, ctx);
    let id = FindingId::AppDisabledByMicrosoft;
    let from_sps = service_principals
        .iter()
        .filter(|sp| is_third_party(sp, &own))
        .filter(|sp| is_disabled(sp.disabled_by_microsoft_status.as_deref()))
        .map(|sp| {
            let found = json!({
                "object_type": "servicePrincipal",
                "disabled_by_microsoft_status": sp.disabled_by_microsoft_status,
                "app_id": sp.app_id,
                "app_owner_organization_id": sp.app_owner_organization_id,
            });
            finding(id, sp.id.clone(), sp_name(sp), details(found))
        });
    let from_apps = applications
        .iter()
        .filter(|app| is_disabled(app.disabled_by_microsoft_status.as_deref()))
        .map(|app| {
            let found = json!({
                "object_type": "application",
                "disabled_by_microsoft_status": app.disabled_by_microsoft_status,
                "app_id": app.app_id,
            });
            finding(id, app.id.clone(), app_name(app), details(found))
        });
    Ok(evaluated(
        from_sps.chain(from_apps).collect(),
        Unread::default(),
    ))
}

/// E8: certified applications whose certification expires within the window or has expired.
fn certification_expiring(
    snapshot: &TenantSnapshot,
    ctx: &EvalCtx<'_>,
) -> Result<Outcome, Outcome> {
    let applications = available(&snapshot.applications)?;
    let window = Duration::days(i64::from(ctx.options.certification_expiry_days));
    let findings = applications
        .iter()
        .filter_map(|app| {
            let certification = app.certification.as_ref()?;
            if certification.is_certified_by_microsoft != Some(true) {
                return None;
            }
            let expires = certification.certification_expiration_date_time?;
            let remaining = expires - ctx.now;
            if remaining > window {
                return None;
            }
            let reason = if expires <= ctx.now {
                "expired"
            } else {
                "expiring"
            };
            let found = json!({
                "reason": reason,
                "certification_expiration_date_time": expires,
                "days_remaining": remaining.num_days(),
                "window_days": ctx.options.certification_expiry_days,
                "last_certification_date_time": certification.last_certification_date_time,
                "certification_details_url": certification.certification_details_url,
                "app_id": app.app_id,
            });
            let id = FindingId::AppCertificationExpiring;
            Some(finding(id, app.id.clone(), app_name(app), details(found)))
        })
        .collect();
    Ok(evaluated(findings, Unread::default()))
}

#[cfg(test)]
#[path = "apps_tests.rs"]
mod tests;
