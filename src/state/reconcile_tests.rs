use super::*;
use crate::checks::Evaluation;
use chrono::{Duration, TimeZone};

const TENANT_ID: &str = "00000000-0000-0000-0000-000000000001";

fn t(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
}

fn finding(id: FindingId, resource: &str) -> Finding {
    let mut details = serde_json::Map::new();
    details.insert("seen".into(), serde_json::json!(resource));
    Finding {
        finding: id,
        resource_id: resource.to_owned(),
        resource_name: format!("{resource}@contoso.com"),
        details: details.into(),
    }
}

fn evaluated(findings: Vec<Finding>) -> Outcome {
    Outcome::Evaluated(Evaluation {
        findings,
        failed_resources: Default::default(),
        ..Evaluation::default()
    })
}

struct World {
    stored: Vec<StoredInstance>,
    evaluated: BTreeSet<FindingId>,
    suppressions: Vec<Suppression>,
    overrides: BTreeMap<FindingId, Severity>,
    first_scan: FirstScan,
}

impl World {
    fn new() -> Self {
        Self {
            stored: vec![],
            evaluated: BTreeSet::new(),
            suppressions: vec![],
            overrides: BTreeMap::new(),
            first_scan: FirstScan::Emit,
        }
    }

    /// Runs a diff and folds its rows into the stored state, as commit would.
    fn scan(&mut self, now: DateTime<Utc>, outcomes: &[(FindingId, Outcome)]) -> Changes {
        let changes = diff(&DiffInput {
            tenant: "contoso",
            tenant_id: TENANT_ID,
            now,
            stored: &self.stored,
            baseline_over: &self.evaluated,
            outcomes,
            policy: Policy {
                suppressions: &self.suppressions,
                severity_overrides: &self.overrides,
                first_scan: self.first_scan,
            },
        });
        for row in &changes.instances {
            self.stored
                .retain(|s| (s.finding, &s.resource_id) != (row.finding, &row.resource_id));
            self.stored.push(row.clone());
        }
        for check in &changes.checks {
            if check.state != CheckState::Skipped {
                self.evaluated.insert(check.finding);
            }
        }
        changes
    }

    fn open(&self) -> Vec<&str> {
        let mut open: Vec<&str> = self
            .stored
            .iter()
            .filter(|s| s.is_open())
            .map(|s| s.resource_id.as_str())
            .collect();
        open.sort_unstable();
        open
    }
}

fn actions(changes: &Changes) -> Vec<(EventAction, String)> {
    changes
        .events
        .iter()
        .map(|e| (e.action, e.resource_id.clone()))
        .collect()
}

const AD: FindingId = FindingId::AccountDisabled;

#[test]
fn new_then_resolved_then_reopened_with_same_fingerprint_and_new_event_id() {
    let mut world = World::new();
    let first = world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    assert_eq!(actions(&first), vec![(EventAction::New, "u1".to_owned())]);
    let event = &first.events[0];
    assert_eq!(event.fingerprint, fingerprint(TENANT_ID, AD, "u1"));
    assert_eq!(event.user_principal_name.as_deref(), Some("u1@contoso.com"));
    assert_eq!((event.first_seen, event.last_seen), (t(1), t(1)));

    let resolved = world.scan(t(2), &[(AD, evaluated(vec![]))]);
    assert_eq!(
        actions(&resolved),
        vec![(EventAction::Resolved, "u1".to_owned())]
    );
    assert_eq!(resolved.events[0].last_seen, t(2));
    assert!(world.open().is_empty());

    let reopened = world.scan(t(3), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    assert_eq!(
        actions(&reopened),
        vec![(EventAction::New, "u1".to_owned())]
    );
    assert_eq!(reopened.events[0].fingerprint, event.fingerprint);
    assert_ne!(reopened.events[0].event_id, event.event_id);
    assert_eq!(reopened.events[0].first_seen, t(3));
}

#[test]
fn still_open_updates_details_without_event() {
    let mut world = World::new();
    world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    let mut changed = finding(AD, "u1");
    changed.details.insert("extra".into(), serde_json::json!(1));
    let again = world.scan(t(2), &[(AD, evaluated(vec![changed.clone()]))]);
    assert!(again.events.is_empty());
    let row = world.stored.iter().find(|s| s.resource_id == "u1").unwrap();
    assert_eq!(row.details, changed.details);
    assert_eq!((row.first_seen, row.last_seen), (t(1), t(2)));
}

#[test]
fn skipped_check_keeps_everything_and_reports_reason() {
    let mut world = World::new();
    world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    let skipped = Outcome::Skipped {
        reason: "permission_denied: User.Read.All".into(),
    };
    let changes = world.scan(t(2), &[(AD, skipped)]);
    assert!(changes.events.is_empty() && changes.instances.is_empty());
    assert_eq!(changes.checks[0].state, CheckState::Skipped);
    assert_eq!(world.open(), vec!["u1"]);
}

#[test]
fn unevaluated_users_keep_their_instances_and_the_check_stays_ok() {
    let rule = FindingId::RuleForwardsExternal;
    let mut world = World::new();
    let all = vec![finding(rule, "u1/r1"), finding(rule, "u2/r1")];
    world.scan(t(1), &[(rule, evaluated(all))]);
    let unread = Outcome::Evaluated(Evaluation {
        unevaluated: [("u1".into(), "mailbox_not_enabled_for_rest_api".into())]
            .into_iter()
            .collect(),
        ..Evaluation::default()
    });
    let changes = world.scan(t(2), &[(rule, unread)]);
    let resolved: Vec<&str> = changes
        .events
        .iter()
        .map(|e| e.resource_id.as_str())
        .collect();
    assert_eq!(resolved, ["u2/r1"]);
    assert_eq!(world.open(), vec!["u1/r1"]);
    assert_eq!(changes.checks[0].state, CheckState::Ok);
}

#[test]
fn failed_resource_prefix_protects_its_instances_only() {
    let rule = FindingId::RuleForwardsExternal;
    let mut world = World::new();
    let all = vec![
        finding(rule, "u1/r1"),
        finding(rule, "u1/r2"),
        finding(rule, "u10/r1"),
        finding(rule, "u2/r1"),
    ];
    world.scan(t(1), &[(rule, evaluated(all))]);
    let partial = Outcome::Evaluated(Evaluation {
        findings: vec![],
        failed_resources: [("u1".into(), "permission_denied".into())]
            .into_iter()
            .collect(),
        ..Evaluation::default()
    });
    let changes = world.scan(t(2), &[(rule, partial)]);
    let mut resolved: Vec<String> = changes
        .events
        .iter()
        .map(|e| e.resource_id.clone())
        .collect();
    resolved.sort();
    assert_eq!(resolved, vec!["u10/r1", "u2/r1"]);
    assert_eq!(world.open(), vec!["u1/r1", "u1/r2"]);
    assert_eq!(changes.checks[0].state, CheckState::Partial);
    let failed_u1 = [("u1".to_owned(), String::new())].into_iter().collect();
    assert!(is_protected("u1", &failed_u1));
    let unevaluated = [("u1".to_owned(), "why".to_owned())].into_iter().collect();
    assert!(is_unevaluated("u1/r9", &unevaluated) && is_unevaluated("u1", &unevaluated));
    assert!(!is_unevaluated("u10/r1", &unevaluated));
    assert!(!is_protected("u1x", &failed_u1));
}

#[test]
fn other_checks_outcomes_do_not_touch_a_finding_absent_from_the_scan() {
    let mut world = World::new();
    world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    let other = world.scan(t(2), &[(FindingId::NotLegalAdult, evaluated(vec![]))]);
    assert!(other.events.is_empty());
    assert_eq!(world.open(), vec!["u1"]);
}

fn suppression(expires: Option<DateTime<Utc>>) -> Suppression {
    Suppression {
        finding: AD,
        tenant: Some("contoso".into()),
        resource_id: None,
        resource_name: Some("u1@*".into()),
        reason: "kept for legal hold".into(),
        owner: "it".into(),
        expires,
    }
}

#[test]
fn suppression_hides_new_and_expiry_announces_it() {
    let mut world = World::new();
    world.suppressions = vec![suppression(Some(t(3)))];
    let found = vec![finding(AD, "u1"), finding(AD, "u2")];
    let first = world.scan(t(1), &[(AD, evaluated(found.clone()))]);
    assert_eq!(actions(&first), vec![(EventAction::New, "u2".to_owned())]);
    let u1 = world.stored.iter().find(|s| s.resource_id == "u1").unwrap();
    assert!(u1.suppressed && !u1.announced && u1.is_open());

    let still = world.scan(t(2), &[(AD, evaluated(found.clone()))]);
    assert!(still.events.is_empty());

    let expired = world.scan(t(3), &[(AD, evaluated(found))]);
    assert_eq!(actions(&expired), vec![(EventAction::New, "u1".to_owned())]);
    assert_eq!(expired.events[0].first_seen, t(1));
    assert!(!world.stored.iter().any(|s| s.suppressed));
}

#[test]
fn suppressed_unannounced_instance_resolves_silently() {
    let mut world = World::new();
    world.suppressions = vec![suppression(None)];
    world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    let gone = world.scan(t(2), &[(AD, evaluated(vec![]))]);
    assert!(gone.events.is_empty());
    assert!(world.open().is_empty());
}

#[test]
fn suppression_added_later_keeps_resolved_event_for_announced_instance() {
    let mut world = World::new();
    world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    world.suppressions = vec![suppression(None)];
    let hidden = world.scan(t(2), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    assert!(hidden.events.is_empty());
    assert!(world.stored[0].suppressed);
    let gone = world.scan(t(3), &[(AD, evaluated(vec![]))]);
    assert_eq!(
        actions(&gone),
        vec![(EventAction::Resolved, "u1".to_owned())]
    );
}

#[test]
fn baseline_first_scan_is_silent_per_check_then_emits() {
    let mut world = World::new();
    world.first_scan = FirstScan::Baseline;
    let skipped = Outcome::Skipped { reason: "x".into() };
    let first = world.scan(
        t(1),
        &[
            (AD, evaluated(vec![finding(AD, "u1")])),
            (FindingId::NotLegalAdult, skipped),
        ],
    );
    assert!(first.events.is_empty());
    assert_eq!(world.open(), vec!["u1"]);
    // The check that was skipped gets its baseline when it first runs.
    let minors = FindingId::NotLegalAdult;
    let second = world.scan(
        t(2),
        &[
            (AD, evaluated(vec![finding(AD, "u1"), finding(AD, "u2")])),
            (minors, evaluated(vec![finding(minors, "u9")])),
        ],
    );
    assert_eq!(actions(&second), vec![(EventAction::New, "u2".to_owned())]);
    // Baseline instances are known: their resolution is reported.
    let third = world.scan(t(3), &[(AD, evaluated(vec![finding(AD, "u2")]))]);
    assert_eq!(
        actions(&third),
        vec![(EventAction::Resolved, "u1".to_owned())]
    );
}

#[test]
fn severity_override_shows_in_events_and_status() {
    let mut world = World::new();
    world.overrides.insert(AD, Severity::High);
    let changes = world.scan(t(1), &[(AD, evaluated(vec![finding(AD, "u1")]))]);
    assert_eq!(changes.events[0].severity, Severity::High);
    assert_eq!(changes.checks[0].severity, Severity::High);
    assert_eq!(world.stored[0].severity, Severity::High);
}

#[test]
fn duplicate_findings_in_one_scan_count_once() {
    let mut world = World::new();
    let changes = world.scan(
        t(1),
        &[(AD, evaluated(vec![finding(AD, "u1"), finding(AD, "u1")]))],
    );
    assert_eq!(changes.events.len(), 1);
    assert_eq!(changes.instances.len(), 1);
    let later = t(1) + Duration::hours(1);
    assert!(world
        .scan(later, &[(AD, evaluated(vec![finding(AD, "u1")]))])
        .events
        .is_empty());
}
