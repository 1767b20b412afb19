//! Reconcile: the pure diff of one scan's check outcomes against a tenant's stored instances.
//!
//! Only checks that ran are diffed, and inside a check only resources whose data succeeded:
//! a skipped check, or an instance under a failed resource prefix, keeps its stored state.
//! An instance seen for the first time, or again after it resolved (same fingerprint, new
//! event id), is `new`; an open instance a successful check no longer sees is `resolved`.
//! Suppressed instances are stored without a `new` event; when the suppression ends and the
//! instance is still there, it is announced as `new`. Only announced instances produce a
//! `resolved` event. [`super::commit::apply`] writes the result in one transaction.

use super::StoredInstance;
use crate::checks::{Evaluation, Outcome, ResourceReasons};
use crate::config::{FirstScan, Suppression};
use crate::events::{fingerprint, EventAction, FindingEvent};
use crate::findings::{Category, Finding, FindingId, Severity};
use crate::snapshot::TRANSIENT_REASONS;
use crate::suppress::{is_suppressed, InstanceKey};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// What the config says about findings, for one reconcile.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Accepted findings.
    pub suppressions: &'a [Suppression],
    /// Per-finding severity overrides.
    pub severity_overrides: &'a BTreeMap<FindingId, Severity>,
    /// What a check's first successful evaluation for the tenant emits.
    pub first_scan: FirstScan,
}

impl Policy<'_> {
    /// Effective severity after overrides.
    pub fn severity_of(&self, finding: FindingId) -> Severity {
        self.severity_overrides
            .get(&finding)
            .copied()
            .unwrap_or(finding.meta().severity)
    }
}

/// Everything one diff looks at.
#[derive(Debug, Clone, Copy)]
pub struct DiffInput<'a> {
    /// Tenant name from config.
    pub tenant: &'a str,
    /// Entra tenant id (part of the fingerprint).
    pub tenant_id: &'a str,
    /// The scan's start.
    pub now: DateTime<Utc>,
    /// Every stored instance of the tenant.
    pub stored: &'a [StoredInstance],
    /// Findings whose baseline is over for this tenant ([`crate::state::Store::baseline_over`]);
    /// with `first_scan = "baseline"` the others record their instances without events.
    pub baseline_over: &'a BTreeSet<FindingId>,
    /// The scan's check outcomes.
    pub outcomes: &'a [(FindingId, Outcome)],
    /// Config policy.
    pub policy: Policy<'a>,
}

/// How a check ended in the last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// Evaluated with all its data.
    Ok,
    /// Evaluated, but some resources' data failed (those instances kept their state).
    Partial,
    /// Not evaluated (its input did not arrive).
    Skipped,
}

impl CheckState {
    /// `ok`, `partial` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Partial => "partial",
            Self::Skipped => "skipped",
        }
    }
}

/// One check's status after the scan.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckStatus {
    /// Which check.
    pub finding: FindingId,
    /// How it ended.
    pub state: CheckState,
    /// Why it was skipped or partial, for humans.
    pub reason: Option<String>,
    /// Effective severity at this scan.
    pub severity: Severity,
    /// Evaluated with every resource's data collected, or refused for a lasting reason (a 403,
    /// a 404, a malformed answer): none pending in the per-user sweep, left out by a scan cut
    /// short, throttled, or failed in transit or in DNS
    /// ([`crate::snapshot::TRANSIENT_REASONS`]). Ends a `first_scan = "baseline"`.
    pub all_collected: bool,
}

/// The result of a diff: rows to upsert, events to enqueue, check statuses to record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Instances to write (changed or seen again).
    pub instances: Vec<StoredInstance>,
    /// Transitions, in a stable order.
    pub events: Vec<FindingEvent>,
    /// One per outcome.
    pub checks: Vec<CheckStatus>,
}

/// Computes the changes of one scan. Pure apart from fresh event ids.
pub fn diff(input: &DiffInput<'_>) -> Changes {
    diff_each(input, input.outcomes.iter().cloned())
}

/// [`diff`] of `outcomes`, taken by value (`input.outcomes` is not read): each check's
/// findings move into the rows written rather than being copied, and each outcome is freed once
/// diffed. The daemon's commit diffs this way, since at 100,000 users the outcomes and the
/// changes together were its peak of memory (issue 10).
pub fn diff_owned(input: &DiffInput<'_>, outcomes: Vec<(FindingId, Outcome)>) -> Changes {
    diff_each(input, outcomes.into_iter())
}

fn diff_each(
    input: &DiffInput<'_>,
    outcomes: impl Iterator<Item = (FindingId, Outcome)>,
) -> Changes {
    let mut stored: BTreeMap<(FindingId, &str), &StoredInstance> = BTreeMap::new();
    for row in input.stored {
        stored.insert((row.finding, row.resource_id.as_str()), row);
    }
    let mut changes = Changes::default();
    for (finding, outcome) in outcomes {
        let severity = input.policy.severity_of(finding);
        let status = match outcome {
            Outcome::Skipped { reason } => CheckStatus {
                finding,
                state: CheckState::Skipped,
                reason: Some(reason),
                severity,
                all_collected: false,
            },
            Outcome::Evaluated(evaluation) => {
                let check = CheckDiff {
                    input,
                    finding,
                    severity,
                    stored: &stored,
                    baseline: input.policy.first_scan == FirstScan::Baseline
                        && !input.baseline_over.contains(&finding),
                };
                let Evaluation {
                    findings,
                    failed_resources,
                    unevaluated,
                } = evaluation;
                let first_row = changes.instances.len();
                check.seen(findings, &mut changes);
                check.gone((&failed_resources, &unevaluated), first_row, &mut changes);
                evaluated_status(finding, severity, &failed_resources)
            }
        };
        changes.checks.push(status);
    }
    changes
}

fn evaluated_status(
    finding: FindingId,
    severity: Severity,
    failed: &ResourceReasons,
) -> CheckStatus {
    let reason = (!failed.is_empty()).then(|| {
        let first = failed.first().map(|(_, why)| why).unwrap_or_default();
        format!("{} resources failed, first: {first}", failed.len())
    });
    CheckStatus {
        finding,
        state: if failed.is_empty() {
            CheckState::Ok
        } else {
            CheckState::Partial
        },
        reason,
        severity,
        all_collected: !TRANSIENT_REASONS
            .iter()
            .any(|prefix| failed.has_reason_starting_with(prefix)),
    }
}

/// Whether a stored instance sits under a failed resource prefix.
pub fn is_protected(resource_id: &str, failed: &ResourceReasons) -> bool {
    failed.covers(resource_id)
}

/// Whether a stored instance belongs to a resource the check did not evaluate (its id, or its
/// first segment: the user of `<userId>/<methodId>`).
pub fn is_unevaluated(resource_id: &str, unevaluated: &ResourceReasons) -> bool {
    let owner = resource_id.split('/').next().unwrap_or(resource_id);
    unevaluated.contains_key(owner) || unevaluated.contains_key(resource_id)
}

struct CheckDiff<'a, 'b> {
    input: &'b DiffInput<'a>,
    finding: FindingId,
    severity: Severity,
    stored: &'b BTreeMap<(FindingId, &'a str), &'a StoredInstance>,
    baseline: bool,
}

impl CheckDiff<'_, '_> {
    /// Instances the check sees: open new periods, refresh open ones, announce unsuppressed.
    /// The findings' ids, names and details move into the rows.
    fn seen(&self, findings: Vec<Finding>, changes: &mut Changes) {
        let now = self.input.now;
        let first: Vec<bool> = {
            let mut done = BTreeSet::new();
            findings
                .iter()
                .map(|f| f.finding == self.finding && done.insert(f.resource_id.as_str()))
                .collect()
        };
        changes
            .instances
            .reserve(first.iter().filter(|first| **first).count());
        for (found, _) in findings.into_iter().zip(first).filter(|(_, first)| *first) {
            let suppressed = self.suppressed(&found.resource_id, &found.resource_name);
            let previous = self
                .stored
                .get(&(self.finding, found.resource_id.as_str()))
                .filter(|row| row.is_open())
                .map(|p| (p.first_seen, p.announced));
            let mut row = StoredInstance {
                finding: self.finding,
                fingerprint: fingerprint(self.input.tenant_id, self.finding, &found.resource_id),
                resource_id: found.resource_id,
                resource_name: found.resource_name,
                severity: self.severity,
                first_seen: previous.map_or(now, |(first_seen, _)| first_seen),
                last_seen: now,
                resolved_at: None,
                suppressed,
                announced: previous.is_some_and(|(_, announced)| announced),
                details: found.details,
            };
            if !row.announced && !suppressed {
                row.announced = true;
                if !(self.baseline && previous.is_none()) {
                    changes.events.push(self.event(&row, EventAction::New, now));
                }
            }
            changes.instances.push(row);
        }
    }

    /// Open instances the check no longer sees (its rows from `first_row` on), outside failed
    /// and unevaluated prefixes: resolve them.
    fn gone(
        &self,
        (failed, unevaluated): (&ResourceReasons, &ResourceReasons),
        first_row: usize,
        changes: &mut Changes,
    ) {
        let seen: BTreeSet<&str> = changes
            .instances
            .get(first_row..)
            .unwrap_or_default()
            .iter()
            .map(|row| row.resource_id.as_str())
            .collect();
        let mut resolved_rows = Vec::new();
        let mut events = Vec::new();
        let range = self.stored.range((self.finding, "")..);
        for (_, row) in range.take_while(|((finding, _), _)| *finding == self.finding) {
            if !row.is_open() || seen.contains(row.resource_id.as_str()) {
                continue;
            }
            if is_protected(&row.resource_id, failed)
                || is_unevaluated(&row.resource_id, unevaluated)
            {
                continue;
            }
            let mut resolved = (*row).clone();
            resolved.resolved_at = Some(self.input.now);
            resolved.severity = self.severity;
            if resolved.announced {
                events.push(self.event(&resolved, EventAction::Resolved, self.input.now));
            }
            resolved_rows.push(resolved);
        }
        changes.events.append(&mut events);
        changes.instances.append(&mut resolved_rows);
    }

    fn suppressed(&self, resource_id: &str, resource_name: &str) -> bool {
        let key = InstanceKey {
            tenant: self.input.tenant,
            finding: self.finding,
            resource_id,
            resource_name,
        };
        is_suppressed(self.input.policy.suppressions, &key, self.input.now)
    }

    fn event(&self, row: &StoredInstance, action: EventAction, now: DateTime<Utc>) -> FindingEvent {
        let meta = self.finding.meta();
        FindingEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            action,
            detected_at: now,
            tenant: self.input.tenant.to_owned(),
            finding: self.finding,
            title: meta.title.to_owned(),
            category: meta.category,
            severity: self.severity,
            resource_id: row.resource_id.clone(),
            resource_name: row.resource_name.clone(),
            user_principal_name: user_principal_name(meta.category, &row.resource_name),
            fingerprint: row.fingerprint.clone(),
            first_seen: row.first_seen,
            last_seen: row.resolved_at.unwrap_or(row.last_seen),
            details: row.details.clone(),
        }
    }
}

/// The UPN for findings about a user (their resource name), `None` for apps and domains.
fn user_principal_name(category: Category, resource_name: &str) -> Option<String> {
    match category {
        Category::UserAccountSettings | Category::FileSharing | Category::EmailForwarding => {
            Some(resource_name.to_owned())
        }
        Category::ThirdPartyApps | Category::EmailAdminSettings => None,
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
