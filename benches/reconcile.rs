//! Bench: the pure reconcile diff (`state::reconcile::diff`) of 100k stored instances against
//! 100k findings: steady state (same instances), 10% churn, and a first scan (nothing stored).
//! Each scenario runs in its own child process so its peak RSS is its own.
//!
//! Run: `cargo bench --bench reconcile`. Prints a markdown table for BENCHMARKS.md.

mod common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::BenchError;
use m365_posture::checks::{Evaluation, Outcome};
use m365_posture::config::FirstScan;
use m365_posture::events::fingerprint;
use m365_posture::findings::{Finding, FindingId};
use m365_posture::state::reconcile::{diff, DiffInput, Policy};
use m365_posture::state::StoredInstance;
use serde_json::{json, Map};
use std::collections::{BTreeMap, BTreeSet};

const INSTANCES: usize = 100_000;
const TENANT_ID: &str = "2f5a8e4c-3b1d-4c6e-9a7f-1e2d3c4b5a69";
/// Findings the instances are spread over (user findings, where 100k instances can occur).
const SPREAD: [FindingId; 4] = [
    FindingId::PasswordExpirationDisabled,
    FindingId::PasswordNotChanged,
    FindingId::ProxyAddressesConfigured,
    FindingId::AccountDisabled,
];

fn scan_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

fn key(n: usize) -> (FindingId, String) {
    let finding = SPREAD.get(n % SPREAD.len()).copied();
    let user = format!("6f1c8e2a-0b4d-4e9a-9c1d-{:012x}", n / SPREAD.len());
    (finding.unwrap_or(FindingId::AccountDisabled), user)
}

fn details(n: usize) -> Map<String, serde_json::Value> {
    let mut details = Map::new();
    details.insert("days_since_change".into(), json!(400 + n % 300));
    details
}

fn stored(range: std::ops::Range<usize>) -> Vec<StoredInstance> {
    let seen = scan_time() - Duration::hours(24);
    range
        .map(|n| {
            let (finding, resource_id) = key(n);
            StoredInstance {
                finding,
                fingerprint: fingerprint(TENANT_ID, finding, &resource_id),
                resource_name: format!("user{n}@contoso.com"),
                resource_id,
                severity: finding.meta().severity,
                first_seen: seen,
                last_seen: seen,
                resolved_at: None,
                suppressed: false,
                announced: true,
                details: details(n).into(),
            }
        })
        .collect()
}

/// One evaluated outcome per finding of the catalogue, holding the findings in `range`.
fn outcomes(range: std::ops::Range<usize>) -> Outcomes {
    let mut by_finding: BTreeMap<FindingId, Vec<Finding>> = BTreeMap::new();
    for n in range {
        let (finding, resource_id) = key(n);
        by_finding.entry(finding).or_default().push(Finding {
            finding,
            resource_id,
            resource_name: format!("user{n}@contoso.com"),
            details: details(n).into(),
        });
    }
    FindingId::ALL
        .iter()
        .map(|id| {
            let findings = by_finding.remove(id).unwrap_or_default();
            let evaluation = Evaluation {
                findings,
                failed_resources: Default::default(),
                ..Evaluation::default()
            };
            (*id, Outcome::Evaluated(evaluation))
        })
        .collect()
}

/// One scan's check outcomes.
type Outcomes = Vec<(FindingId, Outcome)>;

/// (stored, found) for a scenario.
fn scenario(name: &str) -> Result<(Vec<StoredInstance>, Outcomes), BenchError> {
    let churn = INSTANCES / 10;
    Ok(match name {
        "steady" => (stored(0..INSTANCES), outcomes(0..INSTANCES)),
        "churn" => (stored(0..INSTANCES), outcomes(churn..INSTANCES + churn)),
        "first" => (Vec::new(), outcomes(0..INSTANCES)),
        other => return Err(format!("unknown scenario {other}").into()),
    })
}

fn run_case(name: &str) -> Result<(), BenchError> {
    let (stored, outcomes) = scenario(name)?;
    let evaluated: BTreeSet<FindingId> = FindingId::ALL.iter().copied().collect();
    let overrides = BTreeMap::new();
    let input = DiffInput {
        tenant: "contoso",
        tenant_id: TENANT_ID,
        now: scan_time(),
        stored: &stored,
        baseline_over: &evaluated,
        outcomes: &outcomes,
        policy: Policy {
            suppressions: &[],
            severity_overrides: &overrides,
            first_scan: FirstScan::Emit,
        },
    };
    let rss_before = common::status_kib("VmRSS");
    let reset = common::reset_peak_rss();
    let changes = diff(&input);
    let timing = common::time_runs(5, false, || diff(&input).events.len());
    let peak = common::status_kib("VmHWM");
    let peak_note = if reset { "" } else { " (since start)" };
    println!(
        "{name}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}{peak_note}",
        stored.len(),
        outcomes.iter().map(|(_, o)| found(o)).sum::<usize>(),
        changes.instances.len(),
        changes.events.len(),
        common::ms(timing.median),
        common::ms(timing.min),
        common::ms_or_na(timing.cpu),
        timing.iterations,
        common::mib(rss_before),
        common::mib(peak),
    );
    Ok(())
}

fn found(outcome: &Outcome) -> usize {
    match outcome {
        Outcome::Evaluated(e) => e.findings.len(),
        Outcome::Skipped { .. } => 0,
    }
}

fn main() -> Result<(), BenchError> {
    if let Some(case) = common::child_case() {
        return run_case(&case);
    }
    common::print_machine();
    let mut rows = Vec::new();
    for name in ["steady", "churn", "first"] {
        rows.push(common::run_child(name)?);
        eprintln!("done: {name}");
    }
    common::print_table(
        &[
            "scenario",
            "stored instances",
            "findings",
            "instance rows out",
            "events out",
            "diff median ms",
            "min ms",
            "CPU ms/run",
            "runs",
            "RSS with inputs MiB",
            "peak RSS during diff MiB",
        ],
        &rows,
    );
    println!("load average after: {}", common::load_average());
    Ok(())
}
