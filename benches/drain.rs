//! Bench: the outbox drain of a first-cycle event flood (issue 10: "outbox drain to a local TCP
//! receiver above 50,000 events per second, nothing lost"). An outbox in a temporary state file
//! is filled with typical per-user events through `state::outbox::enqueue` (the path reconcile
//! commits take), then:
//!
//! - *stages*: the worker's steps run one after the other by hand over the same library calls
//!   (`outbox::fetch`, CEF + RFC 5424 header + octet-counting frame, one TCP write, `outbox::ack`),
//!   each timed, to show where the time goes; the confirm delay is `batches x confirm_delay`
//!   for a worker that waits it out after every batch;
//! - *worker*: the real delivery worker (`sinks::run_sink_tuned`, default tuning) against the
//!   large_tenant bench's counting receiver on loopback, from start until the sink's cursor
//!   reached the last event (everything acknowledged), and every event id arrived.
//!
//! Run: `cargo bench --bench drain`. Environment: `M365_BENCH_EVENTS` (default 100000),
//! `M365_BENCH_RUNS` (default 3). Prints markdown tables for BENCHMARKS.md.

mod common;
#[allow(dead_code)]
#[path = "large_tenant/receiver.rs"]
mod receiver;

use chrono::TimeZone;
use common::BenchError;
use m365_posture::config::{
    Framing, Payload, SinkConfig, SinkKind, SyslogFormat, SyslogSink, Transport,
};
use m365_posture::events::{fingerprint, EventAction, FindingEvent};
use m365_posture::findings::FindingId;
use m365_posture::metrics::Metrics;
use m365_posture::sinks::cef::render_cef;
use m365_posture::sinks::delivery::open_state;
use m365_posture::sinks::syslog_header::{frame, SyslogHeader};
use m365_posture::sinks::{run_sink_tuned, DeliveryTuning};
use m365_posture::state::outbox;
use receiver::Receiver;
use serde_json::{json, Map};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SINK: &str = "siem";
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The daemon's default `max_message_bytes`.
const MAX_MESSAGE_BYTES: usize = 8192;
const TENANT_ID: &str = "2f5a8e4c-3b1d-4c6e-9a7f-1e2d3c4b5a69";
/// User findings a 100,000-user first cycle is mostly made of.
const SPREAD: [FindingId; 4] = [
    FindingId::PasswordExpirationDisabled,
    FindingId::PasswordNotChanged,
    FindingId::ProxyAddressesConfigured,
    FindingId::AccountDisabled,
];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A per-user event as the first cycle emits it (small details, a UPN).
fn event(n: usize) -> FindingEvent {
    let id = SPREAD.get(n % SPREAD.len()).copied();
    let id = id.unwrap_or(FindingId::AccountDisabled);
    let meta = id.meta();
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let resource_id = format!("6f1c8e2a-0b4d-4e9a-9c1d-{:012x}", n / SPREAD.len());
    let mut details = Map::new();
    details.insert("days_since_change".into(), json!(400 + n % 300));
    FindingEvent {
        event_id: format!("0d6c7b7e-1f7a-4b2e-8c55-{n:012x}"),
        action: EventAction::New,
        detected_at: at,
        tenant: "contoso".to_owned(),
        finding: id,
        title: meta.title.to_owned(),
        category: meta.category,
        severity: meta.severity,
        fingerprint: fingerprint(TENANT_ID, id, &resource_id),
        resource_id,
        resource_name: format!("user{n}@contoso.com"),
        user_principal_name: Some(format!("user{n}@contoso.com")),
        first_seen: at,
        last_seen: at,
        details: details.into(),
    }
}

/// A state file whose outbox holds `events` events for [`SINK`], committed 10,000 a
/// transaction.
fn filled_state(dir: &Path, events: usize) -> Result<std::path::PathBuf, BenchError> {
    let path = dir.join("state.db");
    let mut conn = open_state(&path)?;
    outbox::register_sinks(&conn, &[SINK.to_owned()])?;
    let all: Vec<FindingEvent> = (0..events).map(event).collect();
    for chunk in all.chunks(10_000) {
        let tx = conn.transaction()?;
        outbox::enqueue(&tx, chunk)?;
        tx.commit()?;
    }
    Ok(path)
}

fn sink(address: &str) -> SinkConfig {
    SinkConfig {
        name: SINK.into(),
        payload: Payload::Cef,
        kind: SinkKind::Syslog(SyslogSink {
            transport: Transport::Tcp,
            address: address.to_owned(),
            format: SyslogFormat::Rfc5424,
            framing: Framing::OctetCounting,
            tls: None,
            max_message_bytes: MAX_MESSAGE_BYTES,
        }),
    }
}

/// Time spent per stage of a sequential drain.
#[derive(Default)]
struct Stages {
    batches: usize,
    fetch: Duration,
    encode: Duration,
    write: Duration,
    ack: Duration,
}

fn encode(header: &SyslogHeader, batch: &[(i64, FindingEvent)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (_, event) in batch {
        let head = header.render(event.detected_at);
        let room = MAX_MESSAGE_BYTES.saturating_sub(head.len());
        let message = format!("{head}{}", render_cef(event, VERSION, room));
        bytes.extend_from_slice(&frame(Framing::OctetCounting, &message));
    }
    bytes
}

async fn stages(events: usize) -> Result<Stages, BenchError> {
    let dir = tempfile::tempdir()?;
    let conn = open_state(&filled_state(dir.path(), events)?)?;
    let receiver = Receiver::start().await?;
    let mut stream = tokio::net::TcpStream::connect(receiver.addr).await?;
    stream.set_nodelay(true)?;
    let header = SyslogHeader::local(SyslogFormat::Rfc5424);
    let limit = DeliveryTuning::default().batch_size;
    let mut stages = Stages::default();
    loop {
        let start = Instant::now();
        let batch = outbox::fetch(&conn, SINK, limit)?;
        stages.fetch += start.elapsed();
        let Some(last) = batch.last().map(|(seq, _)| *seq) else {
            break;
        };
        let start = Instant::now();
        let bytes = encode(&header, &batch);
        stages.encode += start.elapsed();
        let start = Instant::now();
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        stages.write += start.elapsed();
        let start = Instant::now();
        outbox::ack(&conn, SINK, last)?;
        stages.ack += start.elapsed();
        stages.batches += 1;
    }
    Ok(stages)
}

fn print_stages(events: usize, stages: &Stages) {
    let confirm = DeliveryTuning::default().confirm_delay * stages.batches as u32;
    let rows: Vec<Vec<String>> = [
        ("fetch (SELECT + JSON decode)", stages.fetch),
        ("encode (CEF + header + frame)", stages.encode),
        ("write (one write_all + flush per batch)", stages.write),
        ("ack (cursor UPDATE + prune DELETE, commit)", stages.ack),
        ("confirm delay, waited out per batch", confirm),
    ]
    .iter()
    .map(|(stage, took)| {
        vec![
            (*stage).to_owned(),
            common::ms(*took),
            format!("{:.2}", took.as_secs_f64() * 1e6 / events.max(1) as f64),
        ]
    })
    .collect();
    println!(
        "\n### stages of a sequential drain ({events} events, {} batches of up to {})\n",
        stages.batches,
        DeliveryTuning::default().batch_size
    );
    common::print_table(&["stage", "total ms", "µs/event"], &rows);
}

/// The sink's cursor and the newest seq in the outbox.
fn progress(conn: &rusqlite::Connection) -> Result<(i64, i64), BenchError> {
    let acked = conn.query_row(
        "SELECT acked_seq FROM outbox_cursor WHERE sink = ?1",
        [SINK],
        |row| row.get(0),
    )?;
    let head = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM outbox", [], |row| {
        row.get(0)
    })?;
    Ok((acked, head))
}

/// One drain by the real worker: (all acknowledged after, arrival span, received, distinct).
async fn worker_run(events: usize) -> Result<Vec<String>, BenchError> {
    let dir = tempfile::tempdir()?;
    let state = filled_state(dir.path(), events)?;
    let watch = open_state(&state)?;
    let (_, head) = progress(&watch)?;
    let receiver = Receiver::start().await?;
    let (cancel, wake) = (CancellationToken::new(), Arc::new(Notify::new()));
    let start = Instant::now();
    let worker = tokio::spawn(run_sink_tuned(
        sink(&receiver.addr.to_string()),
        state.clone(),
        Metrics::new()?,
        wake,
        cancel.clone(),
        DeliveryTuning::default(),
    ));
    while progress(&watch)?.0 < head {
        if start.elapsed() > Duration::from_secs(120) {
            return Err("the drain did not finish within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let acked = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.count() < events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    worker.await?;
    let (received, span) = receiver.snapshot();
    let distinct = receiver.log.lock().map(|l| l.distinct()).unwrap_or(0);
    let span = span.unwrap_or_default();
    Ok(vec![
        events.to_string(),
        format!("{distinct} / {}", received.len()),
        common::ms(acked),
        per_second(events, acked),
        common::ms(span),
        per_second(events, span),
    ])
}

fn per_second(count: usize, took: Duration) -> String {
    format!("{:.0}", count as f64 / took.as_secs_f64().max(1e-9))
}

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    common::print_machine();
    let events = env_or("M365_BENCH_EVENTS", 100_000);
    let runs = env_or("M365_BENCH_RUNS", 3);
    let stages = stages(events).await?;
    print_stages(events, &stages);
    let mut rows = Vec::new();
    for run in 0..runs {
        let mut row = worker_run(events).await?;
        row.insert(0, (run + 1).to_string());
        rows.push(row);
    }
    println!(
        "\n### the delivery worker (default tuning), {runs} runs; load {}\n",
        common::load_average()
    );
    common::print_table(
        &[
            "run",
            "events",
            "distinct / received",
            "all acknowledged ms",
            "events/s (acknowledged)",
            "first to last arrival ms",
            "events/s (arrivals)",
        ],
        &rows,
    );
    println!("\nload average after: {}", common::load_average());
    Ok(())
}
