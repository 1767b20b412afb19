//! Delivery under failure, against real receivers: the receiver is down for several scans while
//! findings change and the delivery worker is restarted in the middle; a receiver restarted
//! mid-stream; TLS peers that must be refused; and the JSON payload. Nothing is acknowledged
//! that was not written, nothing is lost, and duplicates are limited to the batches in flight
//! when a write was cut (`max_in_flight x batch_size` events). (The same scenario with the full
//! daemon restarted lives with the daemon tests.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

#[path = "receivers/harness.rs"]
mod harness;
#[path = "receivers/sample.rs"]
mod sample;

use harness::{Kind, Receiver};
use m365_posture::config::{
    Framing, Payload, SinkConfig, SinkKind, SyslogFormat, SyslogSink, TlsConfig, Transport,
};
use m365_posture::events::{EventAction, FindingEvent};
use m365_posture::metrics::Metrics;
use m365_posture::sinks::{run_sink_tuned, DeliveryTuning};
use m365_posture::state::outbox;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SINK: &str = "siem";
const BATCH: usize = 4;
const IN_FLIGHT: usize = 2;

fn tuning() -> DeliveryTuning {
    DeliveryTuning {
        batch_size: BATCH,
        max_in_flight: IN_FLIGHT,
        poll_interval: Duration::from_millis(200),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        confirm_delay: Duration::from_millis(100),
        io_timeout: Duration::from_secs(5),
    }
}

fn state_file(dir: &Path) -> PathBuf {
    let path = dir.join("state.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(outbox::SCHEMA).unwrap();
    outbox::register_sinks(&conn, &[SINK.to_owned()]).unwrap();
    path
}

/// One "scan": its transitions committed in one transaction.
fn commit_scan(state: &Path, events: &[FindingEvent]) {
    let mut conn = rusqlite::Connection::open(state).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let tx = conn.transaction().unwrap();
    outbox::enqueue(&tx, events).unwrap();
    tx.commit().unwrap();
}

fn pending(state: &Path) -> u64 {
    let conn = rusqlite::Connection::open(state).unwrap();
    outbox::pending_by_sink(&conn, &[SINK.to_owned()]).unwrap()[SINK]
}

async fn wait_drained(state: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while pending(state) > 0 {
        assert!(
            Instant::now() < deadline,
            "outbox not drained: {} pending",
            pending(state)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sink(
    address: &str,
    transport: Transport,
    payload: Payload,
    tls: Option<TlsConfig>,
) -> SinkConfig {
    SinkConfig {
        name: SINK.into(),
        payload,
        kind: SinkKind::Syslog(SyslogSink {
            transport,
            address: address.to_owned(),
            format: SyslogFormat::Rfc5424,
            framing: Framing::OctetCounting,
            tls,
            max_message_bytes: 4096,
        }),
    }
}

struct Worker {
    cancel: CancellationToken,
    wake: Arc<Notify>,
    handle: tokio::task::JoinHandle<()>,
    metrics: Metrics,
}

impl Worker {
    fn start(sink: SinkConfig, state: &Path) -> Worker {
        let (cancel, wake, metrics) = (
            CancellationToken::new(),
            Arc::new(Notify::new()),
            Metrics::new().unwrap(),
        );
        let handle = tokio::spawn(run_sink_tuned(
            sink,
            state.to_owned(),
            metrics.clone(),
            wake.clone(),
            cancel.clone(),
            tuning(),
        ));
        Worker {
            cancel,
            wake,
            handle,
            metrics,
        }
    }
    async fn stop(self) -> Metrics {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .unwrap()
            .unwrap();
        self.metrics
    }
    fn delivered(&self) -> u64 {
        self.metrics
            .events_delivered
            .with_label_values(&[SINK])
            .get()
    }
    fn failed(&self) -> u64 {
        self.metrics.events_failed.with_label_values(&[SINK]).get()
    }
}

fn transition(id: &str, resource: &str, action: EventAction) -> FindingEvent {
    let mut event = sample::new_event();
    event.event_id = id.to_owned();
    event.resource_id = resource.to_owned();
    event.action = action;
    event
}

/// The `cs6` (event id) of every stored CEF message, in arrival order.
fn received_ids(receiver: &Receiver) -> Vec<String> {
    receiver
        .received()
        .iter()
        .map(|r| {
            let start = r
                .msg
                .find("cs6=")
                .unwrap_or_else(|| panic!("no cs6: {}", r.msg))
                + 4;
            r.msg[start..].split(' ').next().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_for_several_scans_and_worker_restarted_loses_nothing() {
    let Some(tools) = harness::tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = harness::make_certs(&tools, dir.path());
    let mut receiver = Receiver::start(&tools, Kind::RsyslogTcp, &dir.path().join("rx"), &certs);
    let state = state_file(dir.path());
    let config = sink(&receiver.address, Transport::Tcp, Payload::Cef, None);
    use EventAction::{New, Resolved};
    let scans = [
        vec![
            transition("s1-a-new", "a", New),
            transition("s1-b-new", "b", New),
        ],
        vec![
            transition("s2-a-resolved", "a", Resolved),
            transition("s2-c-new", "c", New),
        ],
        vec![transition("s3-d-new", "d", New)],
        vec![
            transition("s4-b-resolved", "b", Resolved),
            transition("s4-c-resolved", "c", Resolved),
            transition("s4-a-new", "a", New),
        ],
    ];
    let first = Worker::start(config.clone(), &state);
    commit_scan(&state, &scans[0]);
    first.wake.notify_one();
    wait_drained(&state, Duration::from_secs(20)).await;
    receiver.wait_for(2, Duration::from_secs(10));

    // The receiver dies while the worker still holds a connection to it.
    receiver.kill();
    commit_scan(&state, &scans[1]);
    first.wake.notify_one();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        pending(&state),
        2,
        "nothing may be acknowledged while the receiver is down"
    );
    assert!(first.failed() >= 2, "failed attempts are counted");
    commit_scan(&state, &scans[2]);
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The worker (the daemon) restarts in the middle of the outage.
    let first_metrics = first.stop().await;
    assert_eq!(
        first_metrics
            .events_delivered
            .with_label_values(&[SINK])
            .get(),
        2
    );
    let second = Worker::start(config, &state);
    commit_scan(&state, &scans[3]);
    second.wake.notify_one();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(pending(&state), 6);

    receiver.restart();
    wait_drained(&state, Duration::from_secs(30)).await;
    receiver.wait_for(8, Duration::from_secs(10));
    assert_eq!(second.delivered(), 6);
    second.stop().await;

    let sent: Vec<String> = scans.iter().flatten().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        received_ids(&receiver),
        sent,
        "every transition once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_restarted_mid_stream_duplicates_only_the_batches_in_flight() {
    let Some(tools) = harness::tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = harness::make_certs(&tools, dir.path());
    let mut receiver = Receiver::start(&tools, Kind::RsyslogTcp, &dir.path().join("rx"), &certs);
    let state = state_file(dir.path());
    let events: Vec<FindingEvent> = (0..80)
        .map(|n| {
            transition(
                &format!("stream-{n:03}"),
                &format!("r{n}"),
                EventAction::New,
            )
        })
        .collect();
    let worker = Worker::start(
        sink(&receiver.address, Transport::Tcp, Payload::Cef, None),
        &state,
    );
    commit_scan(&state, &events);
    worker.wake.notify_one();
    receiver.wait_for(20, Duration::from_secs(30));
    receiver.restart_graceful();
    wait_drained(&state, Duration::from_secs(60)).await;
    let metrics = worker.stop().await;
    assert_eq!(
        metrics.events_delivered.with_label_values(&[SINK]).get(),
        80
    );

    let got = received_ids(&receiver);
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    let sent: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(unique, sent, "every event arrives");
    assert!(
        got.len() - unique.len() <= BATCH * IN_FLIGHT,
        "{} duplicates",
        got.len() - unique.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_peers_that_fail_verification_get_nothing_and_nothing_is_acknowledged() {
    let Some(tools) = harness::tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = harness::make_certs(&tools, dir.path());
    let receiver = Receiver::start(
        &tools,
        Kind::SyslogNgTlsMutual,
        &dir.path().join("rx"),
        &certs,
    );
    let good = TlsConfig {
        ca_file: Some(certs.ca.clone()),
        client_certificate_file: Some(certs.client_cert.clone()),
        client_key_file: Some(certs.client_key.clone()),
        server_name: Some("localhost".into()),
    };
    let no_client_cert = TlsConfig {
        client_certificate_file: None,
        client_key_file: None,
        ..good.clone()
    };
    let wrong_name = TlsConfig {
        server_name: Some("siem.example.net".into()),
        ..good.clone()
    };
    let untrusted = TlsConfig {
        ca_file: None,
        ..good
    };
    for (case, tls) in [
        ("no client certificate", no_client_cert),
        ("wrong server name", wrong_name),
        ("untrusted CA", untrusted),
    ] {
        let case_dir = dir.path().join(case.replace(' ', "-"));
        std::fs::create_dir_all(&case_dir).unwrap();
        let state = state_file(&case_dir);
        commit_scan(&state, &[sample::new_event()]);
        let worker = Worker::start(
            sink(&receiver.address, Transport::Tls, Payload::Cef, Some(tls)),
            &state,
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(pending(&state), 1, "{case}: still pending");
        assert!(worker.failed() >= 1, "{case}: failure counted");
        assert_eq!(worker.delivered(), 0, "{case}");
        worker.stop().await;
    }
    assert!(receiver.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_payload_carries_the_same_fields() {
    let Some(tools) = harness::tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = harness::make_certs(&tools, dir.path());
    let receiver = Receiver::start(&tools, Kind::RsyslogTcp, &dir.path().join("rx"), &certs);
    let state = state_file(dir.path());
    let events = vec![
        sample::new_event(),
        sample::resolved_event(),
        sample::hostile_event(1),
    ];
    commit_scan(&state, &events);
    let worker = Worker::start(
        sink(&receiver.address, Transport::Tcp, Payload::Json, None),
        &state,
    );
    wait_drained(&state, Duration::from_secs(20)).await;
    let received = receiver.wait_for(3, Duration::from_secs(10));
    worker.stop().await;
    for (record, event) in received.iter().zip(&events) {
        let object: serde_json::Value =
            serde_json::from_str(&record.msg).unwrap_or_else(|e| panic!("{e}: {}", record.msg));
        assert_eq!(object["event_id"], event.event_id.as_str());
        assert_eq!(object["action"], event.action.as_str());
        assert_eq!(object["finding"], event.finding.as_str());
        assert_eq!(
            object["signature"],
            format!("{}:{}", event.finding.as_str(), event.action.as_str())
        );
        assert_eq!(object["severity_level"], event.severity.cef_level());
        assert_eq!(object["resource_name"], event.resource_name.as_str());
        assert_eq!(object["resource_id"], event.resource_id.as_str());
        assert_eq!(object["fingerprint"], event.fingerprint.as_str());
        assert_eq!(object["tenant"], event.tenant.as_str());
        assert_eq!(object["details"], event.details.to_value());
        let back: FindingEvent = serde_json::from_value(object.clone()).unwrap();
        assert_eq!(&back, event, "the object decodes back to the event");
    }
}
