//! The output of `m365-posture scan`: the JSON document of CONTRACT section 5 and a table for
//! humans, built from a collection report and the check outcomes.
//!
//! A check skipped because its data failed, or with failed resources, is `error` with the
//! reason (its findings for other resources are still listed). Tenant status: `ok` when every
//! check is ok, `failed` when collection failed or every check errored, else `partial`.

use crate::checks::{Outcome, ResourceReasons};
use crate::collect::CollectReport;
use crate::config::{Config, TenantConfig};
use crate::events::{fingerprint, EventAction, FindingEvent};
use crate::findings::{Category, Finding, FindingId, Severity};
use crate::sinks::cef::render_cef;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Reason prefixes that mean "the data failed" (the `Unavailable` display forms).
const DATA_FAILURE_PREFIXES: &[&str] = &[
    "permission_denied",
    "throttled",
    "graph_error",
    "malformed_response",
    "transport_error",
    "dns_",
    "not_collected",
];

/// How many failed resources a check's reason names before summarising.
const FAILED_RESOURCES_SHOWN: usize = 3;

/// The whole scan document.
#[derive(Debug, Clone, Serialize)]
pub struct ScanDocument {
    /// One entry per scanned tenant.
    pub tenants: Vec<TenantScan>,
}

/// One tenant's scan.
#[derive(Debug, Clone, Serialize)]
pub struct TenantScan {
    /// Tenant name from config.
    pub tenant: String,
    /// Entra tenant id.
    pub tenant_id: String,
    /// Scan start, RFC 3339.
    pub started_at: String,
    /// Scan end, RFC 3339.
    pub finished_at: String,
    /// `ok`, `partial` or `failed`.
    pub status: ScanStatus,
    /// One entry per check, catalogue order.
    pub checks: Vec<CheckReport>,
    /// Every finding instance, catalogue order then resource id.
    pub findings: Vec<ReportedFinding>,
    /// Scan start (the detection time of `new` events).
    #[serde(skip)]
    pub started: DateTime<Utc>,
}

/// A tenant scan's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanStatus {
    /// Every check ran cleanly.
    Ok,
    /// Some checks errored.
    Partial,
    /// Collection failed or every check errored.
    Failed,
}

/// A check's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    /// Ran on complete data.
    Ok,
    /// Not run on purpose (disabled, not applicable).
    Skipped,
    /// Its data (or part of it) failed; nothing of it may be resolved.
    Error,
}

/// One check in the document.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Finding id.
    pub finding: FindingId,
    /// `ok`, `skipped` or `error`.
    pub status: CheckState,
    /// Why, when not ok.
    pub reason: Option<String>,
    /// Resources (users) the check could not evaluate although its data arrived, counted by
    /// reason: `mailbox_not_enabled_for_rest_api` (mailbox inactive, soft-deleted or on
    /// premises), `user_not_found`, `no_relevant_method_in_registration_report`. Their
    /// findings keep their state. Absent when there are none.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unevaluated: BTreeMap<String, usize>,
    /// When the oldest data the check evaluated was read (RFC 3339): the scan's start for
    /// what the scan read. Absent when the check did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_read_at: Option<String>,
    /// Seconds from `data_read_at` to the scan's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_age_seconds: Option<i64>,
}

/// One finding instance in the document.
#[derive(Debug, Clone, Serialize)]
pub struct ReportedFinding {
    /// Finding id.
    pub finding: FindingId,
    /// Catalogue title.
    pub title: &'static str,
    /// Category.
    pub category: Category,
    /// Effective severity after config overrides.
    pub severity: Severity,
    /// Instance key.
    pub resource_id: String,
    /// UPN, app or domain name.
    pub resource_name: String,
    /// Evidence.
    pub details: crate::details::Details,
    /// What to do about it (the catalogue's remediation text).
    pub remediation: &'static str,
    /// Where the fix is documented: Microsoft Learn, then CIS / CISA SCuBA controls.
    pub references: &'static [crate::references::Reference],
}

/// Builds one tenant's entry from its collection and check outcomes.
pub fn tenant_scan(
    config: &Config,
    tenant: &TenantConfig,
    collected: &CollectReport,
    outcomes: Vec<(FindingId, Outcome)>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
) -> TenantScan {
    let mut checks = Vec::with_capacity(outcomes.len());
    let mut findings = Vec::new();
    for (id, outcome) in outcomes {
        let check = match (&collected.error, outcome) {
            (Some(err), _) => check(id, CheckState::Error, Some(err.clone())),
            (None, Outcome::Skipped { reason }) => {
                let state = if is_data_failure(&reason) {
                    CheckState::Error
                } else {
                    CheckState::Skipped
                };
                check(id, state, Some(reason))
            }
            (None, Outcome::Evaluated(evaluation)) => {
                let mut report = match failed_resources_reason(&evaluation.failed_resources) {
                    Some(reason) => check(id, CheckState::Error, Some(reason)),
                    None => check(id, CheckState::Ok, None),
                };
                report.unevaluated = evaluation.unevaluated.count_by_reason();
                let read = collected.snapshot.oldest_read(crate::checks::inputs(id));
                if let Some(read) = read {
                    report.data_read_at = Some(read.to_rfc3339_opts(SecondsFormat::Secs, true));
                    report.data_age_seconds = Some((finished_at - read).num_seconds().max(0));
                }
                findings.extend(evaluation.findings.into_iter().map(|f| reported(config, f)));
                report
            }
        };
        checks.push(check);
    }
    findings.sort_by(|a, b| (a.finding, &a.resource_id).cmp(&(b.finding, &b.resource_id)));
    TenantScan {
        tenant: tenant.name.clone(),
        tenant_id: tenant.tenant_id.clone(),
        started_at: started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        finished_at: finished_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        status: status_of(collected.error.is_some(), &checks),
        checks,
        findings,
        started: started_at,
    }
}

fn check(finding: FindingId, status: CheckState, reason: Option<String>) -> CheckReport {
    CheckReport {
        finding,
        status,
        reason,
        unevaluated: BTreeMap::new(),
        data_read_at: None,
        data_age_seconds: None,
    }
}

fn is_data_failure(reason: &str) -> bool {
    DATA_FAILURE_PREFIXES.iter().any(|p| reason.starts_with(p))
}

fn failed_resources_reason(failed: &ResourceReasons) -> Option<String> {
    let shown: Vec<String> = failed
        .iter()
        .take(FAILED_RESOURCES_SHOWN)
        .map(|(resource, reason)| format!("{resource} ({reason})"))
        .collect();
    if shown.is_empty() {
        return None;
    }
    let more = failed.len().saturating_sub(FAILED_RESOURCES_SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "{} resources failed: {}{tail}",
        failed.len(),
        shown.join(", ")
    ))
}

fn status_of(collection_failed: bool, checks: &[CheckReport]) -> ScanStatus {
    let errors = checks
        .iter()
        .filter(|c| c.status == CheckState::Error)
        .count();
    if collection_failed || (errors > 0 && errors == checks.len()) {
        ScanStatus::Failed
    } else if errors > 0 {
        ScanStatus::Partial
    } else {
        ScanStatus::Ok
    }
}

fn reported(config: &Config, finding: Finding) -> ReportedFinding {
    let meta = finding.finding.meta();
    ReportedFinding {
        finding: finding.finding,
        title: meta.title,
        category: meta.category,
        severity: config.severity_of(finding.finding),
        resource_id: finding.resource_id,
        resource_name: finding.resource_name,
        details: finding.details,
        remediation: meta.remediation,
        references: crate::references::references(meta.id),
    }
}

/// Every finding of a tenant scan as a `new` event detected at the scan's start, for
/// `scan --format cef` (rendered by the CEF sink's renderer).
pub fn new_events(scan: &TenantScan) -> Vec<FindingEvent> {
    let detected_at = scan.started;
    scan.findings
        .iter()
        .map(|f| FindingEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            action: EventAction::New,
            detected_at,
            tenant: scan.tenant.clone(),
            finding: f.finding,
            title: f.title.to_owned(),
            category: f.category,
            severity: f.severity,
            resource_id: f.resource_id.clone(),
            resource_name: f.resource_name.clone(),
            user_principal_name: matches!(
                f.category,
                Category::UserAccountSettings | Category::FileSharing | Category::EmailForwarding
            )
            .then(|| f.resource_name.clone()),
            fingerprint: fingerprint(&scan.tenant_id, f.finding, &f.resource_id),
            first_seen: detected_at,
            last_seen: detected_at,
            details: f.details.clone(),
        })
        .collect()
}

/// One CEF line per finding, each a `new` event.
pub fn render_cef_lines(document: &ScanDocument) -> String {
    document
        .tenants
        .iter()
        .flat_map(new_events)
        .map(|event| {
            let mut line = render_cef(&event, env!("CARGO_PKG_VERSION"), usize::MAX);
            line.push('\n');
            line
        })
        .collect()
}

/// The JSON document, pretty-printed.
pub fn render_json(document: &ScanDocument) -> String {
    serde_json::to_string_pretty(document).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// A table for humans: per tenant a status line, the findings, then checks that did not run.
pub fn render_table(document: &ScanDocument) -> String {
    let mut out = String::new();
    for t in &document.tenants {
        let errors = t
            .checks
            .iter()
            .filter(|c| c.status == CheckState::Error)
            .count();
        let _ = writeln!(
            out,
            "tenant {} ({}): {:?}, {} findings, {} of {} checks errored",
            t.tenant,
            t.tenant_id,
            t.status,
            t.findings.len(),
            errors,
            t.checks.len()
        );
        let _ = writeln!(
            out,
            "{:<8} {:<40} {:<40} RESOURCE ID",
            "SEVERITY", "FINDING", "RESOURCE"
        );
        for f in &t.findings {
            let _ = writeln!(
                out,
                "{:<8} {:<40} {:<40} {}",
                f.severity.as_str(),
                f.finding.as_str(),
                one_line(&f.resource_name),
                f.resource_id
            );
        }
        for c in t.checks.iter().filter(|c| c.status != CheckState::Ok) {
            let reason = c.reason.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "{:?} {}: {}",
                c.status,
                c.finding.as_str(),
                one_line(reason)
            );
        }
        out.push('\n');
    }
    out
}

/// Attacker-controlled names (display names, rule names) printed on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_classify_errors_and_skips() {
        assert!(is_data_failure("permission_denied: MailboxSettings.Read"));
        assert!(is_data_failure("dns_servfail: contoso.com"));
        assert!(!is_data_failure("not_implemented"));
        assert_eq!(
            failed_resources_reason(&[("u1".into(), "throttled".into())].into_iter().collect())
                .as_deref(),
            Some("1 resources failed: u1 (throttled)")
        );
        assert_eq!(failed_resources_reason(&ResourceReasons::default()), None);
        let many = (0..5).map(|i| (format!("u{i}"), "x".to_owned())).collect();
        assert!(failed_resources_reason(&many)
            .unwrap()
            .ends_with("and 2 more"));
    }

    #[test]
    fn status_rules() {
        let ok = check(FindingId::AccountDisabled, CheckState::Ok, None);
        let err = check(FindingId::SpfMissing, CheckState::Error, Some("x".into()));
        assert_eq!(status_of(false, std::slice::from_ref(&ok)), ScanStatus::Ok);
        assert_eq!(
            status_of(false, &[ok.clone(), err.clone()]),
            ScanStatus::Partial
        );
        assert_eq!(
            status_of(false, std::slice::from_ref(&err)),
            ScanStatus::Failed
        );
        assert_eq!(status_of(true, &[ok]), ScanStatus::Failed);
    }
}
