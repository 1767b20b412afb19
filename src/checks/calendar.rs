//! `calendar.shared_externally` (F1): primary-calendar permissions granted outside the tenant.
//!
//! A permission fires when its role is not `none` and the sharee is outside the organization:
//! `isInsideOrganization == false`, or, when Graph leaves that flag out, a sharee address whose
//! domain is not internal ([`InternalDomains`]). One instance per `<userId>/<permissionId>`.
//! Guests and excluded users are skipped; a mailbox whose read failed is a failed resource.

use super::internal::{
    available, details, each_mailbox, evaluated, finding, AddressClass, InternalDomains,
};
use super::{EvalCtx, Outcome};
use crate::findings::FindingId;
use crate::snapshot::{CalendarPermission, TenantSnapshot};
use serde_json::{json, Value};

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    match id {
        FindingId::CalendarSharedExternally => {
            shared_externally(snapshot, ctx).unwrap_or_else(|skipped| skipped)
        }
        _ => super::not_implemented(),
    }
}

/// Needs the permissions, the users (names, guests) and the domains (what is external).
fn shared_externally(snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Result<Outcome, Outcome> {
    let permissions = available(&snapshot.calendar_permissions)?;
    let users = available(&snapshot.users)?;
    let internal = InternalDomains::new(available(&snapshot.domains)?, ctx.options);
    let mut findings = Vec::new();
    let unread = each_mailbox(permissions, users, ctx.options, |user_id, name, list| {
        for permission in list {
            if let Some(found) = external_share(permission, &internal) {
                let resource_id = format!("{user_id}/{}", permission.id);
                findings.push(finding(
                    FindingId::CalendarSharedExternally,
                    resource_id,
                    name,
                    details(found),
                ));
            }
        }
    });
    Ok(evaluated(findings, unread))
}

/// The details when `permission` shares the calendar outside the organization.
pub fn external_share(
    permission: &CalendarPermission,
    internal: &InternalDomains,
) -> Option<Value> {
    let role = permission.role.as_deref();
    if role.is_some_and(|r| r.eq_ignore_ascii_case("none")) {
        return None;
    }
    let email = permission.email_address.as_ref();
    let address = email.and_then(|e| e.address.as_deref());
    let basis = match permission.is_inside_organization {
        Some(true) => return None,
        Some(false) => "isInsideOrganization",
        None => match internal.classify(address) {
            AddressClass::External { .. } => "domain",
            AddressClass::Internal | AddressClass::Unresolved => return None,
        },
    };
    Some(json!({
        "role": role,
        "sharee_address": address,
        "sharee_name": email.and_then(|e| e.name.as_deref()),
        "is_inside_organization": permission.is_inside_organization,
        "is_removable": permission.is_removable,
        "basis": basis,
    }))
}

#[cfg(test)]
#[path = "calendar_tests.rs"]
mod tests;
