//! Validation of the finding-level settings: `[severity_overrides]` and `[[suppressions]]`.

use super::error::Problems;
use super::fields::{non_blank, required};
use super::raw::{RawSuppression, RawTenant};
use super::walk::override_path;
use super::Suppression;
use crate::findings::{FindingId, Severity};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Parses finding ids and severities of `[severity_overrides]`.
pub(super) fn severity_overrides(
    raw: &BTreeMap<String, String>,
    p: &mut Problems,
) -> BTreeMap<FindingId, Severity> {
    let mut overrides = BTreeMap::new();
    for (finding, severity) in raw {
        let path = override_path(finding);
        let id = finding_id(&path, finding, p);
        let severity = severity.parse::<Severity>().map_err(|_| {
            p.push(
                &path,
                format!("must be low, medium, high or critical, got {severity:?}"),
            );
        });
        if let (Some(id), Ok(severity)) = (id, severity) {
            overrides.insert(id, severity);
        }
    }
    overrides
}

fn finding_id(path: &str, text: &str, p: &mut Problems) -> Option<FindingId> {
    text.parse::<FindingId>()
        .map_err(|_| p.push(path, format!("unknown finding id {text:?}")))
        .ok()
}

/// Validates every `[[suppressions]]` entry against the finding ids and tenant names.
pub(super) fn suppressions(
    raw: &[RawSuppression],
    tenants: &[RawTenant],
    p: &mut Problems,
) -> Vec<Suppression> {
    raw.iter()
        .enumerate()
        .filter_map(|(index, s)| suppression(&format!("suppressions[{index}]"), s, tenants, p))
        .collect()
}

fn suppression(
    path: &str,
    raw: &RawSuppression,
    tenants: &[RawTenant],
    p: &mut Problems,
) -> Option<Suppression> {
    let at = |key: &str| format!("{path}.{key}");
    let finding = required(&at("finding"), raw.finding.as_deref(), p)
        .and_then(|text| finding_id(&at("finding"), text, p));
    check_scope(path, raw, tenants, p);
    let reason = non_blank(
        &at("reason"),
        raw.reason.as_deref(),
        "say why the finding is accepted",
        p,
    );
    let owner = non_blank(&at("owner"), raw.owner.as_deref(), "say who accepted it", p);
    let expires = match raw.expires.as_deref() {
        Some(text) => Some(Some(timestamp(&at("expires"), text, p)?)),
        None => Some(None),
    };
    Some(Suppression {
        finding: finding?,
        tenant: raw.tenant.clone(),
        resource_id: raw.resource_id.clone(),
        resource_name: raw.resource_name.clone(),
        reason: reason?,
        owner: owner?,
        expires: expires?,
    })
}

/// The optional tenant and resource filters of a suppression.
fn check_scope(path: &str, raw: &RawSuppression, tenants: &[RawTenant], p: &mut Problems) {
    let at = |key: &str| format!("{path}.{key}");
    if let Some(tenant) = raw.tenant.as_deref() {
        if !tenants.iter().any(|t| t.name.as_deref() == Some(tenant)) {
            p.push(
                at("tenant"),
                format!("unknown tenant {tenant:?}: no [[tenants]] entry has that name"),
            );
        }
    }
    for (key, value) in [
        ("resource_id", &raw.resource_id),
        ("resource_name", &raw.resource_name),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            p.push(
                at(key),
                "must not be empty (leave it out to match every resource)",
            );
        }
    }
}

fn timestamp(path: &str, text: &str, p: &mut Problems) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(time) => Some(time.with_timezone(&Utc)),
        Err(_) => {
            p.push(
                path,
                format!(
                    "must be an RFC 3339 timestamp like \"2026-01-31T00:00:00Z\", got {text:?}"
                ),
            );
            None
        }
    }
}
