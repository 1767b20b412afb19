//! Bench: all 28 checks (`checks::evaluate_all`) on snapshots of graph-sim tenants of 1k, 10k
//! and 100k users. Each size runs in its own child process so its peak RSS is its own.
//!
//! Run: `cargo bench --bench checks`. Prints a markdown table for BENCHMARKS.md.

mod common;

use common::{BenchError, Timing};
use m365_posture::checks::{evaluate_all, CheckOptions, EvalCtx, Outcome};
use std::time::Instant;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const SEED: u64 = 42;

fn iterations(users: usize) -> usize {
    match users {
        0..=1_000 => 30,
        1_001..=10_000 => 10,
        _ => 5,
    }
}

fn count_findings(outcomes: &[(m365_posture::findings::FindingId, Outcome)]) -> (usize, usize) {
    outcomes
        .iter()
        .fold((0, 0), |(found, skipped), (_, outcome)| match outcome {
            Outcome::Evaluated(e) => (found + e.findings.len(), skipped),
            Outcome::Skipped { .. } => (found, skipped + 1),
        })
}

/// One size, in this (child) process: prints one `|`-separated row.
fn run_case(users: usize) -> Result<(), BenchError> {
    let start = Instant::now();
    let tenant = graph_sim::generate(users, SEED);
    let generated = start.elapsed();
    let start = Instant::now();
    let snapshot = common::snapshot_from_tenant(&tenant)?;
    let converted = start.elapsed();
    drop(tenant);
    let rss_before = common::status_kib("VmRSS");
    let reset = common::reset_peak_rss();
    #[allow(clippy::disallowed_methods)] // a bench, not a check: it picks the scan time
    let now = chrono::Utc::now();
    let options = CheckOptions::default();
    let ctx = EvalCtx {
        now,
        options: &options,
    };
    let (findings, skipped) = count_findings(&evaluate_all(&snapshot, &ctx));
    let timing: Timing =
        common::time_runs(iterations(users), false, || evaluate_all(&snapshot, &ctx));
    let peak = common::status_kib("VmHWM");
    let peak_note = if reset { "" } else { " (since start)" };
    println!(
        "{users}|{findings}|{skipped}|{}|{}|{}|{}|{}|{}|{}{peak_note}",
        common::ms(generated),
        common::ms(converted),
        common::ms(timing.median),
        common::ms(timing.min),
        timing.iterations,
        common::mib(rss_before),
        common::mib(peak),
    );
    Ok(())
}

fn main() -> Result<(), BenchError> {
    if let Some(case) = common::child_case() {
        return run_case(case.parse()?);
    }
    common::print_machine();
    let mut rows = Vec::new();
    for users in SIZES {
        let row = common::run_child(&users.to_string())?;
        eprintln!("done: {users} users");
        rows.push(row);
    }
    common::print_table(
        &[
            "users",
            "findings",
            "skipped checks",
            "generate ms",
            "snapshot build ms",
            "evaluate_all median ms",
            "min ms",
            "iterations",
            "RSS with snapshot MiB",
            "peak RSS during evaluation MiB",
        ],
        &rows,
    );
    println!("load average after: {}", common::load_average());
    Ok(())
}
