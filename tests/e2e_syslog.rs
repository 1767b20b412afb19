//! End to end: events go through the real outbox and delivery worker to real rsyslog and
//! syslog-ng receivers on loopback (UDP, TCP with octet counting and LF, TLS, unix socket); every
//! stored message is parsed by liblognorm's `lognormalizer` and by PyPI `cefp`, and each field
//! must match the event. Needs `.ci/receivers-setup.sh`; see `tests/receivers/harness.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

#[path = "receivers/cef_parser.rs"]
mod cef_parser;
#[path = "receivers/expected.rs"]
mod expected;
#[path = "receivers/harness.rs"]
mod harness;
#[path = "receivers/sample.rs"]
mod sample;

use harness::{Kind, Received, Receiver, Tools};
use m365_posture::config::{
    Framing, Payload, SinkConfig, SinkKind, SyslogFormat, SyslogSink, TlsConfig, Transport,
};
use m365_posture::events::FindingEvent;
use m365_posture::metrics::Metrics;
use m365_posture::sinks::{run_sink_tuned, DeliveryTuning};
use m365_posture::state::outbox;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SINK: &str = "siem";

fn tuning() -> DeliveryTuning {
    DeliveryTuning {
        batch_size: 4,
        max_in_flight: 2,
        poll_interval: Duration::from_millis(200),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(800),
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

fn enqueue(state: &Path, events: &[FindingEvent]) {
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

fn syslog_sink(
    receiver: &Receiver,
    transport: Transport,
    format: SyslogFormat,
    framing: Framing,
    tls: Option<TlsConfig>,
    max: usize,
) -> SinkConfig {
    SinkConfig {
        name: SINK.into(),
        payload: Payload::Cef,
        kind: SinkKind::Syslog(SyslogSink {
            transport,
            address: receiver.address.clone(),
            format,
            framing,
            tls,
            max_message_bytes: max,
        }),
    }
}

/// A running delivery worker.
struct Worker {
    cancel: CancellationToken,
    wake: Arc<Notify>,
    handle: tokio::task::JoinHandle<()>,
    metrics: Metrics,
}

fn start_worker(sink: SinkConfig, state: &Path) -> Worker {
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

impl Worker {
    async fn stop(self) -> Metrics {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .unwrap()
            .unwrap();
        self.metrics
    }
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

/// New, resolved, hostile and oversized events.
fn test_events() -> Vec<FindingEvent> {
    let mut big = sample::hostile_event(99);
    big.event_id = "big-values".into();
    big.resource_name = "Display=Name\\|\n".repeat(800);
    big.details.insert(
        "recipients".into(),
        serde_json::json!("ü=x@evil.test; ".repeat(700)),
    );
    let mut events = vec![sample::new_event(), sample::resolved_event()];
    events.extend((1..=4).map(sample::hostile_event));
    events.push(big);
    events
}

/// Delivers `events` through one worker and returns what the receiver stored.
async fn deliver(
    receiver: &Receiver,
    sink: SinkConfig,
    dir: &Path,
    events: &[FindingEvent],
) -> Vec<Received> {
    let state = state_file(dir);
    enqueue(&state, events);
    let worker = start_worker(sink, &state);
    worker.wake.notify_one();
    wait_drained(&state, Duration::from_secs(60)).await;
    let received = receiver.wait_for(events.len(), Duration::from_secs(20));
    let metrics = worker.stop().await;
    assert_eq!(
        metrics.events_delivered.with_label_values(&[SINK]).get(),
        events.len() as u64
    );
    received
}

/// Checks every stored message with both oracles and the syslog header fields.
fn verify(
    tools: &Tools,
    dir: &Path,
    received: &[Received],
    events: &[FindingEvent],
    format: SyslogFormat,
    check_host: bool,
) {
    assert_eq!(received.len(), events.len(), "{received:#?}");
    let lines: Vec<String> = received
        .iter()
        .map(|r| match format {
            SyslogFormat::Rfc5424 => r.msg.clone(),
            SyslogFormat::Rfc3164 => format!("CEF:{}", r.msg.trim_start()),
        })
        .collect();
    let lognorm = harness::parse_lognormalizer(tools, dir, &lines);
    let cefp = harness::parse_cefp(tools, &lines);
    let host: String = m365_posture::sinks::syslog_header::local_hostname()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    for (i, record) in received.iter().enumerate() {
        assert!(
            !lines[i].contains(['\r', '\n']),
            "raw line break: {:?}",
            lines[i]
        );
        let by_cefp = cefp[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("cefp: {e}: {}", lines[i]));
        let by_lognorm = lognorm[i]
            .as_ref()
            .unwrap_or_else(|e| panic!("lognormalizer: {e}"));
        let event = events
            .iter()
            .find(|e| Some(&e.event_id) == by_cefp.get("cs6"))
            .unwrap_or_else(|| panic!("unknown event: {}", lines[i]));
        expected::check_fields(by_cefp, event, VERSION)
            .unwrap_or_else(|e| panic!("cefp: {e}\n{}", lines[i]));
        expected::check_fields(by_lognorm, event, VERSION)
            .unwrap_or_else(|e| panic!("lognormalizer: {e}\n{}", lines[i]));
        match format {
            SyslogFormat::Rfc5424 => {
                assert_eq!(record.app, "m365-posture");
                assert_eq!(record.msgid, "finding");
                assert_eq!(record.procid, std::process::id().to_string());
            }
            SyslogFormat::Rfc3164 => assert_eq!(record.app, "CEF"),
        }
        if check_host {
            assert_eq!(record.host, host);
        }
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let mut got: Vec<String> = cefp
        .iter()
        .map(|f| f.as_ref().unwrap()["cs6"].clone())
        .collect();
    ids.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, ids, "every event exactly once");
}

async fn round_trip(
    kind: Kind,
    transport: Transport,
    format: SyslogFormat,
    framing: Framing,
    mutual_tls: bool,
    max: usize,
) {
    let Some(tools) = harness::tools() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let certs = harness::make_certs(&tools, dir.path());
    let receiver = Receiver::start(&tools, kind, &dir.path().join("rx"), &certs);
    let tls = (transport == Transport::Tls).then(|| TlsConfig {
        ca_file: Some(certs.ca.clone()),
        client_certificate_file: mutual_tls.then(|| certs.client_cert.clone()),
        client_key_file: mutual_tls.then(|| certs.client_key.clone()),
        server_name: Some("localhost".into()),
    });
    let sink = syslog_sink(&receiver, transport, format, framing, tls, max);
    let events = test_events();
    let received = deliver(&receiver, sink, dir.path(), &events).await;
    verify(
        &tools,
        dir.path(),
        &received,
        &events,
        format,
        kind != Kind::RsyslogUnix,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tcp_octet_counting() {
    round_trip(
        Kind::RsyslogTcp,
        Transport::Tcp,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tcp_lf_framing() {
    round_trip(
        Kind::RsyslogTcp,
        Transport::Tcp,
        SyslogFormat::Rfc5424,
        Framing::Lf,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tcp_rfc3164_classic_cef() {
    round_trip(
        Kind::RsyslogTcp,
        Transport::Tcp,
        SyslogFormat::Rfc3164,
        Framing::Lf,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_udp_one_message_per_datagram() {
    round_trip(
        Kind::RsyslogUdp,
        Transport::Udp,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        false,
        1400,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_tls_through_gtls() {
    round_trip(
        Kind::RsyslogTls,
        Transport::Tls,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsyslog_local_unix_socket() {
    round_trip(
        Kind::RsyslogUnix,
        Transport::Unix,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_syslog_source_octet_counting() {
    round_trip(
        Kind::SyslogNgSyslogTcp,
        Transport::Tcp,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_network_source_lf() {
    round_trip(
        Kind::SyslogNgNetworkTcp,
        Transport::Tcp,
        SyslogFormat::Rfc5424,
        Framing::Lf,
        false,
        4096,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_network_source_udp() {
    round_trip(
        Kind::SyslogNgNetworkUdp,
        Transport::Udp,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        false,
        1400,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_tls_with_client_certificate() {
    round_trip(
        Kind::SyslogNgTlsMutual,
        Transport::Tls,
        SyslogFormat::Rfc5424,
        Framing::OctetCounting,
        true,
        4096,
    )
    .await;
}
