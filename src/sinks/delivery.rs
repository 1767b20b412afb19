//! The delivery worker of one sink: reads the outbox in order with the sink's own cursor,
//! renders, frames and writes each batch, and acknowledges it only after the write succeeded.
//!
//! Semantics (at least once):
//! - TCP and TLS: a batch is acknowledged after `write_all` + `flush` returned and, after
//!   [`DeliveryTuning::confirm_delay`], the connection still shows no close or reset from the
//!   peer (a write into a socket the peer already closed "succeeds" locally; the reset arrives a
//!   round trip later). Any error drops the connection and the same batch is sent again after a
//!   backoff, so duplicates are possible only for a batch whose write was cut. The SIEM
//!   deduplicates on `cs6` (event id). TCP has no application-level acknowledgement: bytes a
//!   receiver accepted into its socket buffer and lost in a crash of its own are not resent.
//! - UDP and the unix datagram socket are best effort: a batch counts as delivered once sent.
//! - stdout: delivered once written and flushed.
//!
//! Errors count `events_failed{sink}` by the size of the failed batch, back off exponentially
//! with jitter, and reconnect. On cancel the worker finishes the write in progress, closes the
//! connection (TLS `close_notify`) and returns; what is unsent stays in the outbox.

use crate::config::{Payload, SinkConfig, SinkKind};
use crate::events::FindingEvent;
use crate::metrics::Metrics;
use crate::sinks::cef::render_cef;
use crate::sinks::json::render_json;
use crate::sinks::syslog_header::{frame, SyslogHeader};
use crate::sinks::transport::{Connection, Connector, TransportError};
use crate::state::outbox::{self, OutboxError};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Size cap of a stdout line (there is no receiver limit; this only bounds hostile values).
pub const STDOUT_MAX_BYTES: usize = 65_536;

/// The largest UDP payload (IPv4): a UDP message is clamped to fit one datagram. Networks that
/// fragment badly want `max_message_bytes` of 1400 to 2048 for UDP sinks.
pub const UDP_MAX_DATAGRAM: usize = 65_507;

/// Timing and batching of a worker; [`Default`] is what the daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTuning {
    /// Events read and written per batch.
    pub batch_size: usize,
    /// How often the outbox is polled when no wake-up arrives.
    pub poll_interval: Duration,
    /// First backoff after an error.
    pub backoff_min: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Wait after a stream write before checking the peer did not close, then acknowledging.
    pub confirm_delay: Duration,
    /// Bound on each connect, handshake and write.
    pub io_timeout: Duration,
}

impl Default for DeliveryTuning {
    fn default() -> Self {
        Self {
            // Every stream batch waits `confirm_delay` before its acknowledgement, so the
            // batch bounds the drain rate: 16,384 / 0.2 s caps it near 80,000 events/s (256
            // capped it near 1,300; `cargo bench --bench large_tenant`, BENCHMARKS.md).
            batch_size: 16_384,
            poll_interval: Duration::from_secs(3),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            confirm_delay: Duration::from_millis(200),
            io_timeout: Duration::from_secs(30),
        }
    }
}

/// Why one delivery round failed.
#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("outbox task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Runs the worker of `sink` until `cancel` fires, with [`DeliveryTuning::default`].
pub async fn run_sink(
    sink: SinkConfig,
    state_path: PathBuf,
    metrics: Metrics,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    run_sink_tuned(
        sink,
        state_path,
        metrics,
        wake,
        cancel,
        DeliveryTuning::default(),
    )
    .await;
}

/// [`run_sink`] with explicit timing (tests shorten the backoff and poll interval).
pub async fn run_sink_tuned(
    sink: SinkConfig,
    state_path: PathBuf,
    metrics: Metrics,
    wake: Arc<Notify>,
    cancel: CancellationToken,
    tuning: DeliveryTuning,
) {
    let mut worker = Worker {
        encoder: Encoder::new(&sink),
        name: sink.name.clone(),
        sink,
        state_path,
        metrics,
        tuning,
        connection: None,
        db: None,
    };
    let mut backoff = worker.tuning.backoff_min;
    while !cancel.is_cancelled() {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match worker.round().await {
            Ok(0) => {
                backoff = worker.tuning.backoff_min;
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = notified => {}
                    () = tokio::time::sleep(worker.tuning.poll_interval) => {}
                }
            }
            Ok(_) => backoff = worker.tuning.backoff_min,
            Err(error) => {
                tracing::warn!(sink = %worker.name, %error, "Event delivery failed; retrying");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(jittered(backoff)) => {}
                }
                backoff = (backoff * 2).min(worker.tuning.backoff_max);
            }
        }
    }
    if let Some(connection) = worker.connection.take() {
        connection.close(Duration::from_secs(2)).await;
    }
}

/// Up to +50 % random jitter, so many agents do not reconnect in step.
fn jittered(base: Duration) -> Duration {
    let factor = rand::thread_rng().gen_range(1.0..1.5);
    base.mul_f64(factor)
}

struct Worker {
    name: String,
    sink: SinkConfig,
    state_path: PathBuf,
    metrics: Metrics,
    tuning: DeliveryTuning,
    encoder: Encoder,
    connection: Option<Connection>,
    db: Option<rusqlite::Connection>,
}

impl Worker {
    /// Delivers one batch; returns how many events were delivered (0: nothing pending).
    async fn round(&mut self) -> Result<usize, RoundError> {
        let (name, limit) = (self.name.clone(), self.tuning.batch_size);
        let batch = self
            .db(move |conn| outbox::fetch(conn, &name, limit))
            .await?;
        let Some(last_seq) = batch.last().map(|(seq, _)| *seq) else {
            return Ok(0);
        };
        let count = batch.len();
        let failed = self.metrics.events_failed.with_label_values(&[&self.name]);
        if let Err(error) = self.write(&batch).await {
            self.connection = None;
            failed.inc_by(count as u64);
            return Err(error.into());
        }
        let name = self.name.clone();
        self.db(move |conn| outbox::ack(conn, &name, last_seq))
            .await?;
        self.metrics
            .events_delivered
            .with_label_values(&[&self.name])
            .inc_by(count as u64);
        Ok(count)
    }

    /// Writes a batch over a healthy connection, then confirms the peer is still there.
    async fn write(&mut self, batch: &[(i64, FindingEvent)]) -> Result<(), TransportError> {
        let messages: Vec<Vec<u8>> = batch.iter().map(|(_, e)| self.encoder.encode(e)).collect();
        let reusable =
            self.connection.take().and_then(
                |mut open| {
                    if open.is_healthy() {
                        Some(open)
                    } else {
                        None
                    }
                },
            );
        let mut connection = match reusable {
            Some(open) => open,
            None => {
                let connector = Connector::new(&self.sink.kind, self.tuning.io_timeout)?;
                connector.connect().await?
            }
        };
        connection.send(&messages, self.tuning.io_timeout).await?;
        if connection.is_stream() {
            tokio::time::sleep(self.tuning.confirm_delay).await;
            if !connection.is_healthy() {
                return Err(TransportError::PeerClosed {
                    address: self.sink_address(),
                });
            }
        }
        self.connection = Some(connection);
        Ok(())
    }

    /// Runs a blocking outbox call on the blocking pool with the worker's connection, opening
    /// it (and registering the sink at the head if it has no cursor) when needed. A failed call
    /// drops the connection so the next round starts clean.
    async fn db<T: Send + 'static>(
        &mut self,
        call: impl FnOnce(&rusqlite::Connection) -> Result<T, OutboxError> + Send + 'static,
    ) -> Result<T, RoundError> {
        let (path, name, shared) = (self.state_path.clone(), self.name.clone(), self.db.take());
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let conn = match shared {
                Some(conn) => conn,
                None => match open_state(&path)
                    .and_then(|c| outbox::register_sink(&c, &name).map(|()| c))
                {
                    Ok(conn) => conn,
                    Err(error) => return (None, Err(error)),
                },
            };
            let result = call(&conn);
            (Some(conn), result)
        })
        .await?;
        if result.is_ok() {
            self.db = conn;
        }
        Ok(result?)
    }

    fn sink_address(&self) -> String {
        match &self.sink.kind {
            SinkKind::Stdout => "stdout".to_owned(),
            SinkKind::Syslog(syslog) => syslog.address.clone(),
        }
    }
}

/// Turns an event into the bytes one write sends: payload, syslog header, framing.
struct Encoder {
    payload: Payload,
    kind: SinkKind,
    header: Option<SyslogHeader>,
}

impl Encoder {
    fn new(sink: &SinkConfig) -> Self {
        let header = match &sink.kind {
            SinkKind::Syslog(syslog) => Some(SyslogHeader::local(syslog.format)),
            SinkKind::Stdout => None,
        };
        Self {
            payload: sink.payload,
            kind: sink.kind.clone(),
            header,
        }
    }

    fn encode(&self, event: &FindingEvent) -> Vec<u8> {
        match (&self.kind, &self.header) {
            (SinkKind::Syslog(syslog), Some(header)) => {
                let head = header.render(event.detected_at);
                let limit = match syslog.transport {
                    crate::config::Transport::Udp => syslog.max_message_bytes.min(UDP_MAX_DATAGRAM),
                    _ => syslog.max_message_bytes,
                };
                let room = limit.saturating_sub(head.len());
                let message = format!("{head}{}", self.payload(event, room));
                match syslog.transport {
                    crate::config::Transport::Tcp | crate::config::Transport::Tls => {
                        frame(syslog.framing, &message)
                    }
                    crate::config::Transport::Udp | crate::config::Transport::Unix => {
                        message.into_bytes()
                    }
                }
            }
            _ => format!("{}\n", self.payload(event, STDOUT_MAX_BYTES)).into_bytes(),
        }
    }

    fn payload(&self, event: &FindingEvent, max_bytes: usize) -> String {
        let version = env!("CARGO_PKG_VERSION");
        match self.payload {
            Payload::Cef => render_cef(event, version, max_bytes),
            Payload::Json => render_json(event, version, max_bytes),
        }
    }
}

/// Opens the state file for a worker: WAL, a busy timeout, and the outbox schema.
pub fn open_state(path: &Path) -> Result<rusqlite::Connection, OutboxError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(outbox::SCHEMA)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Framing, SyslogFormat, SyslogSink, Transport};
    use crate::events::EventAction;
    use crate::findings::FindingId;
    use chrono::TimeZone;

    fn event() -> FindingEvent {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let finding = FindingId::SpfAllowsAny;
        FindingEvent {
            event_id: "e1".into(),
            action: EventAction::New,
            detected_at: at,
            tenant: "contoso".into(),
            finding,
            title: finding.meta().title.into(),
            category: finding.meta().category,
            severity: finding.meta().severity,
            resource_id: "contoso.com".into(),
            resource_name: "x".repeat(5000),
            user_principal_name: None,
            fingerprint: "f".repeat(32),
            first_seen: at,
            last_seen: at,
            details: Default::default(),
        }
    }

    fn syslog(transport: Transport, framing: Framing, payload: Payload) -> SinkConfig {
        SinkConfig {
            name: "s".into(),
            payload,
            kind: SinkKind::Syslog(SyslogSink {
                transport,
                address: "127.0.0.1:514".into(),
                format: SyslogFormat::Rfc5424,
                framing,
                tls: None,
                max_message_bytes: 1400,
            }),
        }
    }

    #[test]
    fn datagrams_are_unframed_and_capped_with_the_header_included() {
        for payload in [Payload::Cef, Payload::Json] {
            let bytes = Encoder::new(&syslog(Transport::Udp, Framing::OctetCounting, payload))
                .encode(&event());
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.starts_with("<164>1 2026-01-01T00:00:00.000Z "),
                "{text}"
            );
            assert!(text.len() <= 1400, "{}", text.len());
            assert!(!text.contains('\n'));
        }
    }

    #[test]
    fn streams_are_framed() {
        let octet = Encoder::new(&syslog(
            Transport::Tcp,
            Framing::OctetCounting,
            Payload::Cef,
        ))
        .encode(&event());
        let text = String::from_utf8(octet).unwrap();
        let (len, message) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        let lf = Encoder::new(&syslog(Transport::Tls, Framing::Lf, Payload::Cef)).encode(&event());
        assert_eq!(lf.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(lf.last(), Some(&b'\n'));
    }

    #[test]
    fn stdout_lines_are_plain_cef() {
        let sink = SinkConfig {
            name: "stdout".into(),
            payload: Payload::Cef,
            kind: SinkKind::Stdout,
        };
        let line = String::from_utf8(Encoder::new(&sink).encode(&event())).unwrap();
        assert!(line.starts_with("CEF:0|m365-posture|m365-posture|"));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }
}
