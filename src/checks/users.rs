//! Checks for user account settings: the 13 `user.*` findings (U1-U13 of `findings-spec.md`).
//!
//! Nine read the `/users` section and give one instance per user (`<userId>`). Four read the
//! per-user authentication methods (FIDO2, Windows Hello, temporary access pass) and give one
//! instance per method (`<userId>/<methodId>`). `exclude_users` applies to all of them. Details
//! never carry a temporary access pass value (the parsed type has no field for it).

use super::internal::{
    available, details, evaluated, finding, is_excluded, is_excluded_id, normalize_domain,
    users_by_id, Unread,
};
use super::options::ProxyAddressMode;
use super::{CheckOptions, EvalCtx, Outcome};
use crate::findings::FindingId;
use crate::snapshot::{
    AuthMethod, Fido2Method, TapMethod, TenantSnapshot, User, WindowsHelloMethod,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Legal age group classifications that mean "not a legal adult" (lower-case).
const NOT_ADULT_CLASSIFICATIONS: [&str; 4] = [
    "minorwithoutparentalconsent",
    "minorwithparentalconsent",
    "minornoparentalconsentrequired",
    "notadult",
];

/// `ageGroup` values used when the classification is null (lower-case).
const NOT_ADULT_AGE_GROUPS: [&str; 2] = ["minor", "notadult"];

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    use FindingId::*;
    let outcome = match id {
        Fido2Unattested | WhfbWeakKey | TapReusable | TapLongLived => {
            evaluate_methods(id, snapshot, ctx)
        }
        _ => evaluate_users(id, snapshot, ctx),
    };
    outcome.unwrap_or_else(|skipped| skipped)
}

/// What a per-user rule sees besides the user.
struct Scope<'a> {
    now: DateTime<Utc>,
    options: &'a CheckOptions,
    /// Tenant-wide last directory sync, when `/organization` was read.
    tenant_last_sync: Option<DateTime<Utc>>,
}

type UserRule = fn(&User, &Scope<'_>) -> Option<Value>;

/// Runs a `/users` rule; `Err` is the skipped outcome.
fn evaluate_users(
    id: FindingId,
    snapshot: &TenantSnapshot,
    ctx: &EvalCtx<'_>,
) -> Result<Outcome, Outcome> {
    let users = available(&snapshot.users)?;
    if id == FindingId::OnpremSyncStale && ctx.options.sync_require_tenant_stale {
        available(&snapshot.organization)?;
    }
    let scope = Scope {
        now: ctx.now,
        options: ctx.options,
        tenant_last_sync: snapshot
            .organization
            .as_ref()
            .ok()
            .and_then(|org| org.on_premises_last_sync_date_time),
    };
    let rule: UserRule = match id {
        FindingId::OnpremProvisioningError => provisioning_error,
        FindingId::PasswordExpirationDisabled => password_expiration_disabled,
        FindingId::PasswordNotChanged => password_not_changed,
        FindingId::StrongPasswordDisabled => strong_password_disabled,
        FindingId::OnpremSyncDisabled => sync_disabled,
        FindingId::OnpremSyncStale => sync_stale,
        FindingId::NotLegalAdult => not_legal_adult,
        FindingId::ProxyAddressesConfigured => proxy_addresses_configured,
        FindingId::AccountDisabled => account_disabled,
        _ => return Ok(super::not_implemented()),
    };
    let findings = users
        .iter()
        .filter(|user| !is_excluded(user, ctx.options))
        .filter_map(|user| {
            rule(user, &scope).map(|d| finding(id, user.id.to_string(), user.name(), details(d)))
        })
        .collect();
    Ok(evaluated(findings, Unread::default()))
}

/// U2: any on-premises provisioning error, synced or formerly synced.
fn provisioning_error(user: &User, _: &Scope<'_>) -> Option<Value> {
    let errors = user.on_premises_provisioning_errors();
    if errors.is_empty() {
        return None;
    }
    let canonical = serde_json::to_string(errors).unwrap_or_default();
    Some(json!({
        "errors": errors,
        "error_count": errors.len(),
        "errors_sha256": hex::encode(Sha256::digest(canonical.as_bytes())),
        "on_premises_sync_enabled": user.on_premises_sync_enabled,
    }))
}

/// True when the comma list `passwordPolicies` holds `policy` (trimmed, case-insensitive).
fn has_password_policy(user: &User, policy: &str) -> bool {
    user.password_policies.as_deref().is_some_and(|list| {
        list.split(',')
            .any(|p| p.trim().eq_ignore_ascii_case(policy))
    })
}

fn is_synced(user: &User) -> bool {
    user.on_premises_sync_enabled == Some(true)
}

fn password_policy_details(user: &User) -> Value {
    json!({
        "password_policies": user.password_policies,
        "synced": is_synced(user),
    })
}

/// U3: `DisablePasswordExpiration`; synced users optionally skipped.
fn password_expiration_disabled(user: &User, scope: &Scope<'_>) -> Option<Value> {
    let skip_synced = scope.options.password_expiration_exclude_synced && is_synced(user);
    (has_password_policy(user, "DisablePasswordExpiration") && !skip_synced)
        .then(|| password_policy_details(user))
}

/// U5: `DisableStrongPassword`.
fn strong_password_disabled(user: &User, _: &Scope<'_>) -> Option<Value> {
    has_password_policy(user, "DisableStrongPassword").then(|| password_policy_details(user))
}

/// U4: enabled members with a known last password change older than the maximum age.
fn password_not_changed(user: &User, scope: &Scope<'_>) -> Option<Value> {
    let options = scope.options;
    if user.is_guest() && !options.password_age_include_guests {
        return None;
    }
    if user.account_enabled != Some(true) && !options.password_age_include_disabled {
        return None;
    }
    let changed = user.last_password_change_date_time?;
    let max_age_days = options.password_max_age_days;
    if scope.now - changed <= Duration::days(i64::from(max_age_days)) {
        return None;
    }
    Some(json!({
        "last_password_change_date_time": changed,
        "age_days": (scope.now - changed).num_days(),
        "max_age_days": max_age_days,
        "on_premises_sync_enabled": user.on_premises_sync_enabled,
        "account_enabled": user.account_enabled,
        "user_type": user.user_type,
    }))
}

/// U6: `onPremisesSyncEnabled == false` (formerly synced); null is never flagged.
fn sync_disabled(user: &User, _: &Scope<'_>) -> Option<Value> {
    (user.on_premises_sync_enabled == Some(false)).then(|| {
        json!({
            "on_premises_immutable_id_set": user.on_premises_immutable_id.is_some(),
            "on_premises_last_sync_date_time": user.on_premises_last_sync_date_time,
        })
    })
}

/// True when a sync time is missing or older than `max_days`.
fn is_stale(now: DateTime<Utc>, last: Option<DateTime<Utc>>, max_days: u32) -> bool {
    last.map_or(true, |last| {
        now - last > Duration::days(i64::from(max_days))
    })
}

/// U8: synced users whose last sync is missing or older than the maximum age.
fn sync_stale(user: &User, scope: &Scope<'_>) -> Option<Value> {
    let max_days = scope.options.sync_max_age_days;
    let last = user.on_premises_last_sync_date_time;
    if !is_synced(user) || !is_stale(scope.now, last, max_days) {
        return None;
    }
    if scope.options.sync_require_tenant_stale
        && !is_stale(scope.now, scope.tenant_last_sync, max_days)
    {
        return None;
    }
    Some(json!({
        "on_premises_last_sync_date_time": last,
        "age_days": last.map(|t| (scope.now - t).num_days()),
        "max_age_days": max_days,
        "tenant_last_sync_date_time": scope.tenant_last_sync,
    }))
}

/// U9: the computed classification, or `ageGroup` when the classification is null.
fn not_legal_adult(user: &User, _: &Scope<'_>) -> Option<Value> {
    let is_in = |value: &str, list: &[&str]| list.iter().any(|v| value.eq_ignore_ascii_case(v));
    let basis = match (user.legal_age_group_classification(), user.age_group()) {
        (Some(class), _) if is_in(class, &NOT_ADULT_CLASSIFICATIONS) => {
            "legalAgeGroupClassification"
        }
        (None, Some(group)) if is_in(group, &NOT_ADULT_AGE_GROUPS) => "ageGroup",
        _ => return None,
    };
    Some(json!({
        "legal_age_group_classification": user.legal_age_group_classification(),
        "age_group": user.age_group(),
        "consent_provided_for_minor": user.consent_provided_for_minor(),
        "basis": basis,
    }))
}

/// The proxy addresses that count as "configured" in `mode`.
pub fn configured_proxy_addresses(user: &User, mode: ProxyAddressMode) -> Vec<&str> {
    let is_configured = |entry: &str| {
        let (prefix, address) = entry.split_once(':').unwrap_or(("", entry));
        let address = address.trim();
        match mode {
            ProxyAddressMode::Strict => true,
            ProxyAddressMode::AnyNonPrimary => prefix != "SMTP",
            ProxyAddressMode::Aliases if prefix == "smtp" => {
                let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
                !normalize_domain(domain).ends_with(".onmicrosoft.com")
            }
            ProxyAddressMode::Aliases if prefix == "SMTP" => !user
                .mail
                .as_deref()
                .is_some_and(|mail| mail.trim().eq_ignore_ascii_case(address)),
            ProxyAddressMode::Aliases => false,
        }
    };
    user.proxy_addresses
        .iter()
        .map(AsRef::as_ref)
        .filter(|entry| is_configured(entry))
        .collect()
}

/// U10: see [`configured_proxy_addresses`].
fn proxy_addresses_configured(user: &User, scope: &Scope<'_>) -> Option<Value> {
    let mode = scope.options.proxy_addresses_mode;
    let configured = configured_proxy_addresses(user, mode);
    (!configured.is_empty()).then(|| {
        json!({
            "mode": mode,
            "configured_addresses": configured,
            "mail": user.mail,
        })
    })
}

/// U11: `accountEnabled == false`.
fn account_disabled(user: &User, _: &Scope<'_>) -> Option<Value> {
    (user.account_enabled == Some(false)).then(|| {
        json!({
            "user_type": user.user_type,
            "creation_type": user.creation_type(),
            "on_premises_sync_enabled": user.on_premises_sync_enabled,
        })
    })
}

/// Why a listed user's methods were not evaluated: the report showed no relevant label.
const NOT_LISTED_BY_REPORT: &str = "no_relevant_method_in_registration_report";

/// Runs a per-method rule over every user's methods; `Err` is the skipped outcome.
///
/// A method instance resolves only when its user's methods were read and no longer show it,
/// or the user is gone from the (complete) user list: listed users whose methods were not
/// read are unevaluated, so the registration report dropping a user resolves nothing.
fn evaluate_methods(
    id: FindingId,
    snapshot: &TenantSnapshot,
    ctx: &EvalCtx<'_>,
) -> Result<Outcome, Outcome> {
    let methods = available(&snapshot.auth_methods)?;
    let listed = available(&snapshot.users)?;
    let users = users_by_id(listed);
    let mut findings = Vec::new();
    let mut unread = Unread::default();
    let not_read = |u: &&User| !methods.contains_key(&u.id) && !is_excluded(u, ctx.options);
    for user in listed.iter().filter(not_read) {
        unread.unevaluated.insert(&user.id, NOT_LISTED_BY_REPORT);
    }
    for (user_id, result) in methods {
        let user = users.get(&**user_id).copied();
        if is_excluded_id(user_id, user, ctx.options) {
            continue;
        }
        let list = match result {
            Ok(list) => list,
            Err(reason) => {
                unread.add(user_id, reason);
                continue;
            }
        };
        let name = user.map_or(&**user_id, User::name);
        for (method_id, found) in list.iter().filter_map(|m| judge_method(id, m, ctx)) {
            let resource_id = format!("{user_id}/{method_id}");
            findings.push(finding(id, resource_id, name, details(found)));
        }
    }
    Ok(evaluated(findings, unread))
}

/// The method id and details when `method` is an instance of finding `id`.
fn judge_method<'m>(
    id: FindingId,
    method: &'m AuthMethod,
    ctx: &EvalCtx<'_>,
) -> Option<(&'m str, Value)> {
    let options = ctx.options;
    let details = match (id, method) {
        (FindingId::Fido2Unattested, AuthMethod::Fido2(m)) => fido2_unattested(m, options),
        (FindingId::WhfbWeakKey, AuthMethod::WindowsHello(m)) => whfb_weak(m, options),
        (FindingId::TapReusable, AuthMethod::TemporaryAccessPass(m)) => tap_reusable(m, options),
        (FindingId::TapLongLived, AuthMethod::TemporaryAccessPass(m)) => tap_long_lived(m, options),
        _ => None,
    }?;
    let method_id = match method {
        AuthMethod::Fido2(m) => m.id.as_str(),
        AuthMethod::WindowsHello(m) => m.id.as_str(),
        AuthMethod::TemporaryAccessPass(m) => m.id.as_str(),
        AuthMethod::Other { id, .. } => id,
    };
    Some((method_id, details))
}

/// U1: `attestationLevel == notAttested`; `unknownFutureValue` and missing are not flagged.
fn fido2_unattested(method: &Fido2Method, options: &CheckOptions) -> Option<Value> {
    let unattested = method
        .attestation_level
        .as_deref()
        .is_some_and(|level| level.eq_ignore_ascii_case("notAttested"));
    let synced = method
        .passkey_type
        .as_deref()
        .is_some_and(|kind| kind.eq_ignore_ascii_case("synced"));
    (unattested && !(synced && options.fido2_exclude_synced_passkeys)).then(|| {
        json!({
            "display_name": method.display_name,
            "model": method.model,
            "aa_guid": method.aa_guid,
            "attestation_level": method.attestation_level,
            "passkey_type": method.passkey_type,
            "created_date_time": method.created_date_time,
        })
    })
}

/// U7: `keyStrength == weak` (and `unknown` when configured).
fn whfb_weak(method: &WindowsHelloMethod, options: &CheckOptions) -> Option<Value> {
    let strength = method.key_strength.as_deref()?;
    let weak = strength.eq_ignore_ascii_case("weak")
        || (options.whfb_flag_unknown && strength.eq_ignore_ascii_case("unknown"));
    weak.then(|| {
        json!({
            "display_name": method.display_name,
            "key_strength": strength,
            "created_date_time": method.created_date_time,
        })
    })
}

/// True when the pass is in scope: usable, unless `tap_usable_only` is off.
fn tap_in_scope(method: &TapMethod, options: &CheckOptions) -> bool {
    !options.tap_usable_only || method.is_usable == Some(true)
}

fn tap_details(method: &TapMethod) -> Value {
    json!({
        "is_usable_once": method.is_usable_once,
        "is_usable": method.is_usable,
        "method_usability_reason": method.method_usability_reason,
        "lifetime_in_minutes": method.lifetime_in_minutes,
        "start_date_time": method.start_date_time,
        "created_date_time": method.created_date_time,
    })
}

/// U12: `isUsableOnce == false`.
fn tap_reusable(method: &TapMethod, options: &CheckOptions) -> Option<Value> {
    (method.is_usable_once == Some(false) && tap_in_scope(method, options))
        .then(|| tap_details(method))
}

/// U13: `lifetimeInMinutes` above the maximum.
fn tap_long_lived(method: &TapMethod, options: &CheckOptions) -> Option<Value> {
    let max = i64::from(options.tap_max_lifetime_minutes);
    let long = method
        .lifetime_in_minutes
        .is_some_and(|minutes| minutes > max);
    (long && tap_in_scope(method, options)).then(|| {
        let mut value = tap_details(method);
        if let Value::Object(map) = &mut value {
            map.insert("max_lifetime_minutes".to_owned(), json!(max));
        }
        value
    })
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
