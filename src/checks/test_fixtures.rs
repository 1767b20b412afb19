//! Test support: loads Graph-shaped JSON fixtures from `tests/fixtures/graph/<resource>/<case>.json`
//! and builds snapshots from them. Compiled only for tests.

use super::{evaluate, CheckOptions, EvalCtx, Evaluation, Outcome};
use crate::findings::{Finding, FindingId};
use crate::snapshot::{AuthMethod, TenantSnapshot, Unavailable};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The tenant id of the fixture tenant (also the organization id in `organization/contoso.json`).
pub(crate) const TENANT_ID: &str = "2f5a8e4c-3b1d-4c6e-9a7f-1e2d3c4b5a69";

/// The scan time every fixture date is relative to.
pub(crate) fn now() -> DateTime<Utc> {
    "2025-06-01T00:00:00Z".parse().unwrap()
}

/// One fixture file as JSON.
pub(crate) fn read(resource: &str, case: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/graph/{resource}/{case}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `value` array of a collection response.
pub(crate) fn values(resource: &str, case: &str) -> Vec<Value> {
    match read(resource, case).get("value") {
        Some(Value::Array(items)) => items.clone(),
        other => panic!("{resource}/{case}: no value array: {other:?}"),
    }
}

/// The `value` array parsed into snapshot types.
pub(crate) fn list<T: DeserializeOwned>(resource: &str, case: &str) -> Vec<T> {
    values(resource, case)
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

/// One user's `/authentication/methods` response.
pub(crate) fn methods(case: &str) -> Vec<AuthMethod> {
    values("auth_methods", case)
        .into_iter()
        .map(|v| AuthMethod::from_graph(v, None).unwrap())
        .collect()
}

/// A 403 for one resource or section.
pub(crate) fn denied(permission: &str) -> Unavailable {
    Unavailable::PermissionDenied {
        permission: permission.to_owned(),
    }
}

/// The fixture tenant: organization and domains loaded, users from `users/<users_case>.json`,
/// every other section not collected.
pub(crate) fn snapshot(users_case: &str) -> TenantSnapshot {
    let mut snapshot = TenantSnapshot::empty(TENANT_ID, "test");
    snapshot.organization = list("organization", "contoso")
        .into_iter()
        .next()
        .ok_or_else(|| Unavailable::NotCollected {
            detail: "empty".to_owned(),
        });
    snapshot.domains = Ok(list("domains", "contoso"));
    snapshot.users = Ok(list("users", users_case));
    snapshot
}

/// Runs one check at [`now`].
pub(crate) fn run(id: FindingId, snapshot: &TenantSnapshot, options: &CheckOptions) -> Outcome {
    let ctx = EvalCtx {
        now: now(),
        options,
    };
    evaluate(id, snapshot, &ctx)
}

/// The evaluation of a check that must have run.
pub(crate) fn evaluation(outcome: Outcome) -> Evaluation {
    match outcome {
        Outcome::Evaluated(evaluation) => evaluation,
        Outcome::Skipped { reason } => panic!("check skipped: {reason}"),
    }
}

/// The findings of a check that must have run, with default options.
pub(crate) fn findings(id: FindingId, snapshot: &TenantSnapshot) -> Vec<Finding> {
    evaluation(run(id, snapshot, &CheckOptions::default())).findings
}

/// Resource names (UPNs, app names) of findings, in output order.
pub(crate) fn names(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.resource_name.as_str()).collect()
}

/// The skip reason of a check that must have been skipped.
pub(crate) fn skip_reason(outcome: Outcome) -> String {
    match outcome {
        Outcome::Skipped { reason } => reason,
        Outcome::Evaluated(evaluation) => panic!("check ran: {evaluation:?}"),
    }
}

/// The object id of the fixture user whose UPN starts with `nick` followed by `@` or `_`.
pub(crate) fn user_id(snapshot: &TenantSnapshot, nick: &str) -> String {
    let users = snapshot.users.as_ref().unwrap();
    users
        .iter()
        .find(|u| {
            let upn = u.user_principal_name.as_deref().unwrap_or_default();
            upn.starts_with(&format!("{nick}@")) || upn.starts_with(&format!("{nick}_"))
        })
        .map(|u| u.id.to_string())
        .unwrap_or_else(|| panic!("no fixture user {nick}"))
}

/// A per-user section keyed by the ids of the fixture users named by `nick`.
pub(crate) fn per_user<T>(
    snapshot: &TenantSnapshot,
    entries: Vec<(&str, Result<Vec<T>, Unavailable>)>,
) -> crate::snapshot::PerUser<T> {
    entries
        .into_iter()
        .map(|(nick, result)| (user_id(snapshot, nick).into(), result))
        .collect()
}
