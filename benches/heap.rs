//! Bench: live heap of a 100,000-user snapshot and of its findings, counted by a global
//! allocator that tracks bytes requested (not RSS: no allocator overhead or fragmentation).
//!
//! One process: generate the tenant, convert it into a snapshot, write it as JSON and free
//! everything; then read the snapshot back (the typed shapes collection builds from Graph JSON),
//! evaluate all checks, and diff the findings against an empty and a full stored state.
//! Figures: live bytes after each step and the peak during it.
//!
//! Run: `cargo bench --bench heap` (`M365_BENCH_USERS` sets the size, default 100000).

mod common;

use common::BenchError;
use m365_posture::checks::{evaluate_all, evaluate_releasing, CheckOptions, EvalCtx, Outcome};
use m365_posture::config::FirstScan;
use m365_posture::findings::FindingId;
use m365_posture::snapshot::{PerUser, Section, TenantSnapshot};
use m365_posture::state::reconcile::{diff_owned, DiffInput, Policy};
use m365_posture::state::StoredInstance;
use peak_alloc::PeakAlloc;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, BufWriter};

/// Counts live and peak requested bytes over the system allocator.
#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

fn mb(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// Live bytes now; the peak is reset to them.
fn mark() -> usize {
    HEAP.reset_peak_usage();
    HEAP.current_usage()
}

/// Per-user lists without spare capacity, as collection parses them (`collect::per_user`).
fn compact_per_user(snapshot: &mut TenantSnapshot) {
    fn shrink<T>(section: &mut Section<PerUser<T>>) {
        for list in section
            .iter_mut()
            .flat_map(|map| map.values_mut())
            .flatten()
        {
            list.shrink_to_fit();
        }
    }
    shrink(&mut snapshot.auth_methods);
    shrink(&mut snapshot.calendar_permissions);
    shrink(&mut snapshot.message_rules);
}

/// Diffs `outcomes` against `stored` as the daemon's commit does (taking the outcomes);
/// returns the changes' live bytes, the peak, and the instances the changes would store.
fn diff_peak(
    stored: &[StoredInstance],
    outcomes: Vec<(FindingId, Outcome)>,
) -> (usize, usize, Vec<StoredInstance>) {
    let evaluated: BTreeSet<FindingId> = FindingId::ALL.iter().copied().collect();
    let overrides = BTreeMap::new();
    let before = mark();
    let changes = diff_owned(
        &DiffInput {
            tenant: "bench",
            tenant_id: "00000000-0000-4000-8000-000000000000",
            now: m365_posture::scan::clock_now(),
            stored,
            baseline_over: &evaluated,
            outcomes: &[],
            policy: Policy {
                suppressions: &[],
                severity_overrides: &overrides,
                first_scan: FirstScan::Emit,
            },
        },
        outcomes,
    );
    let peak = HEAP.peak_usage();
    let live = HEAP.current_usage() - before;
    (live, peak, changes.instances)
}

/// Heap of one clone of `value`.
fn heap_of<T: Clone>(value: &T) -> usize {
    let before = HEAP.current_usage();
    let copy = value.clone();
    let after = HEAP.current_usage();
    drop(copy);
    after - before
}

/// Prints the heap of each snapshot section.
fn sections(snapshot: &TenantSnapshot) {
    let rows = [
        ("users", heap_of(&snapshot.users)),
        (
            "registration_details",
            // The rows, not the shared handle the snapshot holds.
            heap_of(&snapshot.registration_details.as_deref().cloned()),
        ),
        ("auth_methods", heap_of(&snapshot.auth_methods)),
        (
            "calendar_permissions",
            heap_of(&snapshot.calendar_permissions),
        ),
        ("message_rules", heap_of(&snapshot.message_rules)),
        ("applications", heap_of(&snapshot.applications)),
        ("service_principals", heap_of(&snapshot.service_principals)),
        ("dns", heap_of(&snapshot.dns)),
    ];
    for (name, bytes) in rows {
        println!("| section {name} | {} | |", mb(bytes));
    }
}

fn main() -> Result<(), BenchError> {
    let users: usize = std::env::var("M365_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("snapshot.json");
    {
        let tenant = graph_sim::generate(users, 42);
        let snapshot = common::snapshot_from_tenant(&tenant)?;
        serde_json::to_writer(BufWriter::new(std::fs::File::create(&path)?), &snapshot)?;
    }
    let base = mark();
    let mut snapshot: TenantSnapshot =
        serde_json::from_reader(BufReader::new(std::fs::File::open(&path)?))?;
    compact_per_user(&mut snapshot);
    let with_snapshot = mark();
    #[allow(clippy::disallowed_methods)] // a bench, not a check: it picks the scan time
    let now = chrono::Utc::now();
    let options = CheckOptions::default();
    let ctx = EvalCtx {
        now,
        options: &options,
    };
    let outcomes = evaluate_all(&snapshot, &ctx);
    let eval_peak = HEAP.peak_usage();
    let with_findings = mark();
    let findings: usize = outcomes
        .iter()
        .map(|(_, o)| match o {
            Outcome::Evaluated(e) => e.findings.len(),
            Outcome::Skipped { .. } => 0,
        })
        .sum();
    println!("users {users}, findings {findings}");
    println!("| step | live MB | peak MB during the step |");
    println!("|---|---|---|");
    println!("| snapshot read | {} | |", mb(with_snapshot - base));
    println!(
        "| evaluate_all | {} (findings {}) | {} |",
        mb(with_findings - base),
        mb(with_findings - with_snapshot),
        mb(eval_peak - base)
    );
    sections(&snapshot);
    drop(outcomes);
    let before = mark();
    let outcomes = evaluate_releasing(snapshot, &ctx);
    println!(
        "| evaluate_releasing (the daemon) | {} (snapshot freed) | {} |",
        mb(HEAP.current_usage() - base),
        mb(HEAP.peak_usage() - base)
    );
    let _ = before;
    let (changes, peak, stored) = diff_peak(&[], outcomes);
    println!(
        "| diff, first cycle | changes {} | {} (with the outcomes) |",
        mb(changes),
        mb(peak - base)
    );
    // The same outcomes again, for the unchanged tenant's diff (the first diff took them).
    let mut snapshot: TenantSnapshot =
        serde_json::from_reader(BufReader::new(std::fs::File::open(&path)?))?;
    compact_per_user(&mut snapshot);
    let outcomes = evaluate_releasing(snapshot, &ctx);
    let (changes, peak, _) = diff_peak(&stored, outcomes);
    println!(
        "| diff, unchanged tenant | changes {}, stored rows {} | {} (with the outcomes) |",
        mb(changes),
        mb(heap_of(&stored)),
        mb(peak - base)
    );
    Ok(())
}
