//! `m365-posture report`: the posture of each tenant for people, from the state file — open
//! findings by severity and category with title, resource, first seen, evidence, remediation
//! and references, and suppressed ones apart with the reason, owner and expiry of the
//! suppression that covers them. Rendered as JSON (serde), CSV ([`csv`]) or one
//! self-contained HTML page ([`html`]).
//!
//! Building is pure: stored instances, the config's suppressions and a given `now` in, a
//! [`PostureReport`] out. Only open instances are listed; the state file keeps resolved ones
//! too, but a report is about what is wrong now. Checks the last scan skipped or evaluated only
//! in part are listed apart, so that no open finding under a check never evaluated reads as
//! clean.

pub mod csv;
pub mod html;

use crate::config::Suppression;
use crate::findings::{Category, FindingId, Severity};
use crate::references::{references, Reference};
use crate::state::summary::CheckRecord;
use crate::state::StoredInstance;
use crate::suppress::{covers, in_force, InstanceKey};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct PostureReport {
    /// When the report was made, RFC 3339.
    pub generated_at: String,
    /// One entry per tenant, in config order.
    pub tenants: Vec<TenantPosture>,
}

/// What one tenant looks like in the state file.
#[derive(Debug, Clone, Serialize)]
pub struct TenantPosture {
    /// Tenant name from config.
    pub tenant: String,
    /// End of the last successful scan, RFC 3339; `None` when the tenant was never scanned.
    pub last_success: Option<String>,
    /// Open unsuppressed instances per severity (highest first) and category.
    pub counts: Vec<SeverityCount>,
    /// Open unsuppressed instances: severity (highest first), category, finding, resource.
    pub open: Vec<ReportedInstance>,
    /// Open instances a suppression covers, in the same order.
    pub suppressed: Vec<SuppressedInstance>,
    /// Checks the last scan skipped or evaluated only in part, in catalogue order: their
    /// absence from `open` is no evidence.
    pub not_evaluated: Vec<UnevaluatedCheck>,
}

/// A check the last scan did not evaluate fully.
#[derive(Debug, Clone, Serialize)]
pub struct UnevaluatedCheck {
    /// Finding id.
    pub finding: FindingId,
    /// Catalogue title.
    pub title: &'static str,
    /// `skipped` (not evaluated) or `partial` (some resources' data missing).
    pub status: String,
    /// Why, as the scan recorded it.
    pub reason: Option<String>,
    /// When it was last evaluated at all, RFC 3339; `None` for never.
    pub last_evaluated: Option<String>,
}

/// Open instances of one severity and category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeverityCount {
    /// Severity.
    pub severity: Severity,
    /// Category.
    pub category: Category,
    /// How many open unsuppressed instances.
    pub count: usize,
}

/// One open instance with what a reader needs to act on it.
#[derive(Debug, Clone, Serialize)]
pub struct ReportedInstance {
    /// Finding id.
    pub finding: FindingId,
    /// Catalogue title.
    pub title: &'static str,
    /// Category.
    pub category: Category,
    /// Effective severity at the last scan that saw it.
    pub severity: Severity,
    /// Instance key.
    pub resource_id: String,
    /// UPN, app or domain name.
    pub resource_name: String,
    /// Start of the current open period, RFC 3339.
    pub first_seen: String,
    /// Last scan that saw it, RFC 3339.
    pub last_seen: String,
    /// Evidence as last seen.
    pub details: crate::details::Details,
    /// What to do about it.
    pub remediation: &'static str,
    /// Where the fix is documented.
    pub references: &'static [Reference],
}

/// A suppressed open instance and why it is accepted.
#[derive(Debug, Clone, Serialize)]
pub struct SuppressedInstance {
    /// The instance.
    #[serde(flatten)]
    pub instance: ReportedInstance,
    /// The suppression's reason, or a note that no current suppression covers it any more.
    pub reason: String,
    /// Who accepted it (empty when no current suppression covers it).
    pub owner: String,
    /// When the suppression stops applying, RFC 3339; `None` for never.
    pub expires: Option<String>,
}

/// Reason shown when the state says suppressed but no suppression in the config covers it.
pub const NO_SUPPRESSION_NOW: &str =
    "suppressed at the last scan; no suppression in the current config covers it";

/// One tenant's stored state, as the report reads it.
#[derive(Debug, Clone)]
pub struct TenantState {
    /// Tenant name.
    pub tenant: String,
    /// Every stored instance (open and resolved).
    pub instances: Vec<StoredInstance>,
    /// End of the last successful scan.
    pub last_success: Option<DateTime<Utc>>,
    /// How each check ended at the last committed scan.
    pub checks: Vec<CheckRecord>,
}

/// Builds the report of `tenants` with the config's `suppressions` at `now`.
pub fn build(
    tenants: Vec<TenantState>,
    suppressions: &[Suppression],
    now: DateTime<Utc>,
) -> PostureReport {
    PostureReport {
        generated_at: rfc3339(now),
        tenants: tenants
            .into_iter()
            .map(|state| tenant_posture(state, suppressions, now))
            .collect(),
    }
}

fn tenant_posture(
    state: TenantState,
    suppressions: &[Suppression],
    now: DateTime<Utc>,
) -> TenantPosture {
    let mut instances: Vec<StoredInstance> = state
        .instances
        .into_iter()
        .filter(|i| i.is_open())
        .collect();
    instances.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.finding.meta().category.cmp(&b.finding.meta().category))
            .then_with(|| a.finding.cmp(&b.finding))
            .then_with(|| a.resource_id.cmp(&b.resource_id))
    });
    let mut open = Vec::new();
    let mut suppressed = Vec::new();
    for stored in instances {
        if stored.suppressed {
            suppressed.push(suppressed_instance(
                &state.tenant,
                stored,
                suppressions,
                now,
            ));
        } else {
            open.push(reported(stored));
        }
    }
    TenantPosture {
        not_evaluated: not_evaluated(&state.checks),
        counts: counts(&open),
        tenant: state.tenant,
        last_success: state.last_success.map(rfc3339),
        open,
        suppressed,
    }
}

fn not_evaluated(checks: &[CheckRecord]) -> Vec<UnevaluatedCheck> {
    let mut listed: Vec<UnevaluatedCheck> = checks
        .iter()
        .filter(|check| check.status != "ok")
        .map(|check| UnevaluatedCheck {
            finding: check.finding,
            title: check.finding.meta().title,
            status: check.status.clone(),
            reason: check.reason.clone(),
            last_evaluated: check.evaluated_at.map(rfc3339),
        })
        .collect();
    listed.sort_by_key(|check| check.finding);
    listed
}

fn counts(open: &[ReportedInstance]) -> Vec<SeverityCount> {
    let mut counts: Vec<SeverityCount> = Vec::new();
    for instance in open {
        match counts
            .iter_mut()
            .find(|c| c.severity == instance.severity && c.category == instance.category)
        {
            Some(count) => count.count += 1,
            None => counts.push(SeverityCount {
                severity: instance.severity,
                category: instance.category,
                count: 1,
            }),
        }
    }
    counts
}

fn suppressed_instance(
    tenant: &str,
    stored: StoredInstance,
    suppressions: &[Suppression],
    now: DateTime<Utc>,
) -> SuppressedInstance {
    let key = InstanceKey {
        tenant,
        finding: stored.finding,
        resource_id: &stored.resource_id,
        resource_name: &stored.resource_name,
    };
    let rule = suppressions
        .iter()
        .find(|rule| in_force(rule, now) && covers(rule, &key));
    SuppressedInstance {
        reason: rule.map_or_else(|| NO_SUPPRESSION_NOW.to_owned(), |r| r.reason.clone()),
        owner: rule.map(|r| r.owner.clone()).unwrap_or_default(),
        expires: rule.and_then(|r| r.expires).map(rfc3339),
        instance: reported(stored),
    }
}

fn reported(stored: StoredInstance) -> ReportedInstance {
    let meta = stored.finding.meta();
    ReportedInstance {
        finding: stored.finding,
        title: meta.title,
        category: meta.category,
        severity: stored.severity,
        resource_id: stored.resource_id,
        resource_name: stored.resource_name,
        first_seen: rfc3339(stored.first_seen),
        last_seen: rfc3339(stored.last_seen),
        details: stored.details,
        remediation: meta.remediation,
        references: references(meta.id),
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The report as one pretty-printed JSON document with a trailing newline.
pub fn render_json(report: &PostureReport) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests;
