//! Bench: all 28 checks (`checks::evaluate_all`) on snapshots of graph-sim tenants of 1k, 10k
//! and 100k users.
//!
//! Per size, one child process generates the tenant, converts it into a snapshot and writes the
//! snapshot as JSON to a temporary file; a second, fresh child reads it back and evaluates. So
//! the second child's RSS is the snapshot's (not memory the allocator kept from the generated
//! tenant), and its peak is the evaluation's.
//!
//! Run: `cargo bench --bench checks`. Prints markdown tables for BENCHMARKS.md.

mod common;

use common::BenchError;
use m365_posture::checks::{evaluate, evaluate_all, CheckOptions, EvalCtx, Outcome};
use m365_posture::findings::FindingId;
use m365_posture::snapshot::TenantSnapshot;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::time::Instant;

const LARGEST: usize = 100_000;
const SIZES: [usize; 3] = [1_000, 10_000, LARGEST];
const SEED: u64 = 42;
/// Checks listed in the per-check table (the slowest at the largest size).
const SLOWEST_SHOWN: usize = 6;

fn iterations(users: usize) -> usize {
    match users {
        0..=1_000 => 30,
        1_001..=10_000 => 10,
        _ => 5,
    }
}

fn count_findings(outcomes: &[(FindingId, Outcome)]) -> (usize, usize) {
    outcomes
        .iter()
        .fold((0, 0), |(found, skipped), (_, outcome)| match outcome {
            Outcome::Evaluated(e) => (found + e.findings.len(), skipped),
            Outcome::Skipped { .. } => (found, skipped + 1),
        })
}

/// Child 1: generate, convert, write the snapshot; prints `generate ms|convert ms`.
fn prepare(users: usize, path: &Path) -> Result<(), BenchError> {
    let start = Instant::now();
    let tenant = graph_sim::generate(users, SEED);
    let generated = start.elapsed();
    let start = Instant::now();
    let snapshot = common::snapshot_from_tenant(&tenant)?;
    let converted = start.elapsed();
    serde_json::to_writer(BufWriter::new(std::fs::File::create(path)?), &snapshot)?;
    println!("{}|{}", common::ms(generated), common::ms(converted));
    Ok(())
}

/// Times each check alone; prints `check|id|median ms` lines.
fn per_check(snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) {
    for id in FindingId::ALL {
        let timing = common::time_runs(3, false, || evaluate(*id, snapshot, ctx));
        println!("check|{id}|{}", common::ms(timing.median));
    }
}

/// Child 2: read the snapshot, evaluate; prints the size's row last.
fn evaluate_case(users: usize, path: &Path) -> Result<(), BenchError> {
    let snapshot: TenantSnapshot =
        serde_json::from_reader(BufReader::new(std::fs::File::open(path)?))?;
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
    let timing = common::time_runs(iterations(users), false, || evaluate_all(&snapshot, &ctx));
    let peak = common::status_kib("VmHWM");
    if users == LARGEST {
        per_check(&snapshot, &ctx);
    }
    let peak_note = if reset { "" } else { " (since start)" };
    println!(
        "{findings}|{skipped}|{}|{}|{}|{}|{}|{}{peak_note}",
        common::ms(timing.median),
        common::ms(timing.min),
        common::ms_or_na(timing.cpu),
        timing.iterations,
        common::mib(rss_before),
        common::mib(peak),
    );
    Ok(())
}

fn child(case: &str) -> Result<(), BenchError> {
    let (step, rest) = case.split_once(':').ok_or("bad case")?;
    let (users, path) = rest.split_once(':').ok_or("bad case")?;
    let users: usize = users.parse()?;
    match step {
        "prepare" => prepare(users, Path::new(path)),
        _ => evaluate_case(users, Path::new(path)),
    }
}

/// Both children of one size: the row, and the per-check lines (largest size only).
fn run_size(users: usize, dir: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), BenchError> {
    let path = dir.join(format!("snapshot-{users}.json"));
    let path = path.to_str().ok_or("temp path is not UTF-8")?;
    let prepared = common::run_child(&format!("prepare:{users}:{path}"))?;
    let snapshot_mib = std::fs::metadata(path)?.len() as f64 / 1_048_576.0;
    let mut lines = common::run_child_lines(&format!("evaluate:{users}:{path}"))?;
    let evaluated = lines.pop().ok_or("evaluation printed nothing")?;
    std::fs::remove_file(path)?;
    let mut row = vec![users.to_string()];
    row.extend(prepared);
    row.push(format!("{snapshot_mib:.1}"));
    row.extend(evaluated);
    Ok((row, lines))
}

fn main() -> Result<(), BenchError> {
    if let Some(case) = common::child_case() {
        return child(&case);
    }
    common::print_machine();
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    for users in SIZES {
        let (row, lines) = run_size(users, dir.path())?;
        eprintln!("done: {users} users");
        rows.push(row);
        checks = lines;
    }
    common::print_table(
        &[
            "users",
            "generate ms",
            "snapshot build ms",
            "snapshot JSON MiB",
            "findings",
            "skipped checks",
            "evaluate_all median ms",
            "min ms",
            "CPU ms/run",
            "runs",
            "RSS with snapshot MiB",
            "peak RSS during evaluation MiB",
        ],
        &rows,
    );
    checks.sort_by(|a, b| {
        let ms = |row: &Vec<String>| row.get(2).and_then(|v| v.parse::<f64>().ok());
        ms(b)
            .partial_cmp(&ms(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let slowest: Vec<Vec<String>> = checks
        .into_iter()
        .take(SLOWEST_SHOWN)
        .map(|row| row.into_iter().skip(1).collect())
        .collect();
    println!("\nslowest checks at {} users:\n", LARGEST);
    common::print_table(&["check", "median ms (3 runs)"], &slowest);
    println!("load average after: {}", common::load_average());
    Ok(())
}
