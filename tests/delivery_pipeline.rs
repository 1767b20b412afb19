//! The pipelined delivery worker against a real TCP listener on loopback (port 0): a peer that
//! resets the connection while several batches are written and none is acknowledged yet loses
//! nothing. Every event arrives at least once after the reconnect, duplicates stay within the
//! documented bound (`max_in_flight x batch_size`), and the outbox drains.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

#[path = "receivers/sample.rs"]
mod sample;

use m365_posture::config::{
    Framing, Payload, SinkConfig, SinkKind, SyslogFormat, SyslogSink, Transport,
};
use m365_posture::events::FindingEvent;
use m365_posture::metrics::Metrics;
use m365_posture::sinks::{run_sink_tuned, DeliveryTuning};
use m365_posture::state::outbox;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

const SINK: &str = "siem";
const BATCH: usize = 4;
const IN_FLIGHT: usize = 4;
const EVENTS: usize = 40;

fn tuning() -> DeliveryTuning {
    DeliveryTuning {
        batch_size: BATCH,
        max_in_flight: IN_FLIGHT,
        poll_interval: Duration::from_millis(100),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        // Long enough that the first batches are still unacknowledged when the peer resets.
        confirm_delay: Duration::from_millis(600),
        io_timeout: Duration::from_secs(5),
    }
}

fn state_file(dir: &Path, events: &[FindingEvent]) -> PathBuf {
    let path = dir.join("state.db");
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(outbox::SCHEMA).unwrap();
    outbox::register_sinks(&conn, &[SINK.to_owned()]).unwrap();
    let tx = conn.transaction().unwrap();
    outbox::enqueue(&tx, events).unwrap();
    tx.commit().unwrap();
    path
}

fn pending(state: &Path) -> u64 {
    let conn = rusqlite::Connection::open(state).unwrap();
    outbox::pending_by_sink(&conn, &[SINK.to_owned()]).unwrap()[SINK]
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
            max_message_bytes: 4096,
        }),
    }
}

/// Reads one octet-counted frame and returns its `cs6` (event id); `None` at the end.
async fn next_id(reader: &mut BufReader<TcpStream>) -> Option<String> {
    let mut length = Vec::new();
    if reader.read_until(b' ', &mut length).await.ok()? == 0 {
        return None;
    }
    let size: usize = std::str::from_utf8(&length).ok()?.trim().parse().ok()?;
    let mut frame = vec![0; size];
    reader.read_exact(&mut frame).await.ok()?;
    let text = String::from_utf8(frame).ok()?;
    let at = text.find(" cs6=")? + 5;
    Some(text[at..].split(' ').next()?.to_owned())
}

/// Accepts one connection, reads `cut_after` frames, then resets it (RST, not FIN) and reports;
/// every later connection is read to its end. All ids go to `arrived` in arrival order.
fn receiver(
    listener: TcpListener,
    cut_after: usize,
    arrived: Arc<Mutex<Vec<String>>>,
) -> oneshot::Receiver<()> {
    let (reset, on_reset) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..cut_after {
            let id = next_id(&mut reader).await.expect("a frame before the cut");
            arrived.lock().unwrap().push(id);
        }
        let stream = reader.into_inner();
        // SO_LINGER 0: the close sends a reset at once (it does not block: nothing lingers).
        #[allow(deprecated)]
        stream.set_linger(Some(Duration::ZERO)).unwrap();
        drop(stream);
        reset.send(()).unwrap();
        while let Ok((stream, _)) = listener.accept().await {
            let arrived = Arc::clone(&arrived);
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                while let Some(id) = next_id(&mut reader).await {
                    arrived.lock().unwrap().push(id);
                }
            });
        }
    });
    on_reset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_with_several_batches_in_flight_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<FindingEvent> = (0..EVENTS)
        .map(|n| {
            let mut event = sample::new_event();
            event.event_id = format!("pipelined-{n:03}");
            event.resource_id = format!("r{n}");
            event
        })
        .collect();
    let state = state_file(dir.path(), &events);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let arrived = Arc::new(Mutex::new(Vec::new()));
    // Three whole batches read, then the reset: the fourth is written or being written.
    let on_reset = receiver(listener, 3 * BATCH, Arc::clone(&arrived));

    let (cancel, metrics) = (CancellationToken::new(), Metrics::new().unwrap());
    let worker = tokio::spawn(run_sink_tuned(
        sink(&address),
        state.clone(),
        metrics.clone(),
        Arc::new(Notify::new()),
        cancel.clone(),
        tuning(),
    ));
    tokio::time::timeout(Duration::from_secs(10), on_reset)
        .await
        .expect("the receiver read three batches")
        .unwrap();
    assert_eq!(
        pending(&state),
        EVENTS as u64,
        "three batches were written and none may be acknowledged before its confirm delay"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(&state) > 0 {
        assert!(Instant::now() < deadline, "{} pending", pending(&state));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent: BTreeSet<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let got = arrived.lock().unwrap().clone();
        if got.iter().cloned().collect::<BTreeSet<_>>() == sent || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .unwrap()
        .unwrap();

    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique, sent, "every event arrives at least once");
    let duplicates = got.len() - unique.len();
    assert!(
        (3 * BATCH..=IN_FLIGHT * BATCH).contains(&duplicates),
        "the unacknowledged batches are sent again, no more: {duplicates} duplicates"
    );
    let resent = &got[3 * BATCH..];
    assert_eq!(
        resent.first().map(String::as_str),
        Some("pipelined-000"),
        "delivery resumes at the first unacknowledged batch"
    );
    let delivered = metrics.events_delivered.with_label_values(&[SINK]).get();
    assert_eq!(delivered, EVENTS as u64, "each event acknowledged once");
    let failed = metrics.events_failed.with_label_values(&[SINK]).get();
    assert!(
        failed >= (3 * BATCH) as u64,
        "the batches in flight count as failed: {failed}"
    );
}
