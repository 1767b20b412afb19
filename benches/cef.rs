//! Bench: CEF rendering (`sinks::cef::render_cef`) of typical and 10 kB-detail events, and
//! outbox enqueue (`state::outbox::enqueue`) into a temporary SQLite file in WAL mode with
//! `synchronous=FULL` (as the state store opens it), one transaction per batch.
//!
//! Run: `cargo bench --bench cef`. Prints markdown tables for BENCHMARKS.md.

mod common;

use chrono::TimeZone;
use common::{BenchError, Timing};
use m365_posture::events::{fingerprint, EventAction, FindingEvent};
use m365_posture::findings::FindingId;
use m365_posture::sinks::cef::render_cef;
use m365_posture::state::outbox::{enqueue, register_sinks, SCHEMA};
use rusqlite::Connection;
use serde_json::{json, Map, Value};
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAX_BYTES: usize = 8192;
const RENDERS_PER_RUN: usize = 20_000;

/// A forwarding-rule event with the evidence a check really attaches.
fn event(n: usize, details: Map<String, Value>) -> FindingEvent {
    let id = FindingId::RuleForwardsExternal;
    let meta = id.meta();
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let resource_id = format!("6f1c8e2a-0b4d-4e9a-9c1d-{n:012x}/AQMkADAwATM0MDAAMS1hNzQ");
    FindingEvent {
        event_id: format!("0d6c7b7e-1f7a-4b2e-8c55-{n:012x}"),
        action: EventAction::New,
        detected_at: at,
        tenant: "contoso".to_owned(),
        finding: id,
        title: meta.title.to_owned(),
        category: meta.category,
        severity: meta.severity,
        fingerprint: fingerprint("2f5a8e4c-3b1d-4c6e-9a7f-1e2d3c4b5a69", id, &resource_id),
        resource_id,
        resource_name: format!("user{n}@contoso.com"),
        user_principal_name: Some(format!("user{n}@contoso.com")),
        first_seen: at,
        last_seen: at,
        details: details.into(),
    }
}

fn typical_details() -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("rule_name".into(), json!("Move to RSS | forward=all"));
    details.insert("recipients".into(), json!(["exfil@attacker.example"]));
    details.insert("sequence".into(), json!(1));
    details
}

/// About 10 kB of evidence: a rule name and 150 external recipients.
fn large_details() -> Map<String, Value> {
    let recipients: Vec<String> = (0..150)
        .map(|i| format!("recipient-{i:04}@external-{i}.example"))
        .collect();
    let mut details = typical_details();
    details.insert("recipients".into(), json!(recipients));
    details.insert("rule_name".into(), json!("a=b|c\\d\nnewline ".repeat(200)));
    details
}

fn render_row(label: &str, events: &[FindingEvent]) -> Vec<String> {
    let timing = common::time_runs(10, true, || {
        events
            .iter()
            .cycle()
            .take(RENDERS_PER_RUN)
            .map(|e| render_cef(e, VERSION, MAX_BYTES).len())
            .sum::<usize>()
    });
    let line = events
        .first()
        .map(|e| render_cef(e, VERSION, MAX_BYTES).len())
        .unwrap_or_default();
    let detail_bytes = events
        .first()
        .map(|e| e.details.to_value().to_string().len())
        .unwrap_or_default();
    vec![
        label.to_owned(),
        detail_bytes.to_string(),
        line.to_string(),
        per_second(RENDERS_PER_RUN, timing.median),
        per_second(RENDERS_PER_RUN, timing.min),
        format!(
            "{:.2}",
            timing.median.as_secs_f64() * 1e6 / RENDERS_PER_RUN as f64
        ),
    ]
}

fn per_second(count: usize, took: Duration) -> String {
    format!("{:.0}", count as f64 / took.as_secs_f64().max(1e-9))
}

fn bench_render() {
    let typical: Vec<FindingEvent> = (0..100).map(|n| event(n, typical_details())).collect();
    let large: Vec<FindingEvent> = (0..100).map(|n| event(n, large_details())).collect();
    let rows = vec![
        render_row("typical", &typical),
        render_row("10 kB details", &large),
    ];
    println!(
        "\n### render_cef ({RENDERS_PER_RUN} renders per run, 10 runs, cap {MAX_BYTES} bytes)\n"
    );
    common::print_table(
        &[
            "event",
            "details JSON bytes",
            "CEF line bytes",
            "median events/s",
            "best events/s",
            "median µs/event",
        ],
        &rows,
    );
}

fn open_store(path: &std::path::Path) -> Result<Connection, BenchError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    register_sinks(&conn, &["siem".to_owned()])?;
    Ok(conn)
}

fn enqueue_row(batch: usize, transactions: usize) -> Result<Vec<String>, BenchError> {
    let dir = tempfile::tempdir()?;
    let mut conn = open_store(&dir.path().join("state.db"))?;
    let events: Vec<FindingEvent> = (0..batch).map(|n| event(n, typical_details())).collect();
    let mut failure = None;
    let timing: Timing = common::time_runs(transactions, true, || {
        let result = conn.transaction().map_err(BenchError::from).and_then(|tx| {
            enqueue(&tx, &events)?;
            tx.commit()?;
            Ok(())
        });
        if let Err(err) = result {
            failure = Some(err);
        }
    });
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(vec![
        batch.to_string(),
        timing.iterations.to_string(),
        common::ms(timing.median),
        common::ms(timing.min),
        per_second(batch, timing.median),
        per_second(batch, timing.min),
    ])
}

fn bench_enqueue() -> Result<(), BenchError> {
    let rows = vec![
        enqueue_row(1, 50)?,
        enqueue_row(100, 30)?,
        enqueue_row(10_000, 5)?,
    ];
    println!("\n### outbox enqueue (temp SQLite file, WAL, synchronous=FULL, one transaction per batch, typical events)\n");
    common::print_table(
        &[
            "events per transaction",
            "transactions timed",
            "median ms/transaction",
            "min ms",
            "median events/s",
            "best events/s",
        ],
        &rows,
    );
    Ok(())
}

fn main() -> Result<(), BenchError> {
    common::print_machine();
    bench_render();
    bench_enqueue()?;
    println!("\nload average after: {}", common::load_average());
    Ok(())
}
