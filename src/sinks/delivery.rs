//! The delivery worker of one sink: reads the outbox in order with the sink's own cursor,
//! renders, frames and writes batch after batch, and acknowledges a batch only after its write
//! succeeded and its confirm delay passed with the connection healthy.
//!
//! Semantics (at least once):
//! - TCP and TLS: batches are pipelined. While a written batch waits out
//!   [`DeliveryTuning::confirm_delay`], the next ones are read, encoded (on the blocking pool, one
//!   batch ahead) and written over the same connection, up to [`DeliveryTuning::max_in_flight`]
//!   unacknowledged batches. A batch is acknowledged (the cursor moved past it) once its own delay
//!   has passed and the connection then still shows no close or reset from the peer (a write into a
//!   socket the peer already closed "succeeds" locally; the reset arrives a round trip later);
//!   batches are acknowledged in order. Any error drops the connection, and after a backoff
//!   delivery resumes at the first unacknowledged batch, so a cut write may repeat every batch in
//!   flight: at most `max_in_flight x batch_size` events (16 x 4,096 by default; in practice what
//!   was written during the last `confirm_delay`). The SIEM deduplicates on `cs6` (event id). TCP
//!   has no application-level acknowledgement: bytes a receiver accepted into its socket buffer and
//!   lost in a crash of its own are not resent.
//! - UDP and the unix datagram socket are best effort: a batch counts as delivered once sent.
//! - stdout: delivered once written and flushed.
//!
//! Errors count `events_failed{sink}` by the events that were in flight, back off
//! exponentially with jitter, and reconnect. On cancel the worker writes no further batch,
//! waits out the confirm delay of those in flight (acknowledging them), closes the connection
//! (TLS `close_notify`) and returns; what is unsent stays in the outbox.

use crate::config::{SinkConfig, SinkKind};
use crate::metrics::Metrics;
use crate::sinks::encoder::Encoder;
use crate::sinks::frames::Frames;
use crate::sinks::reader::{ReadFrom, Reader};
use crate::sinks::transport::{Connection, Connector, TransportError};
use crate::sinks::window::{Window, Written};
use crate::state::outbox::{self, OutboxError};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use crate::sinks::encoder::{STDOUT_MAX_BYTES, UDP_MAX_DATAGRAM};

/// Timing and batching of a worker; [`Default`] is what the daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTuning {
    /// Events read and written per batch.
    pub batch_size: usize,
    /// Stream batches written and not yet acknowledged, at most (at least 1). A cut write can
    /// repeat up to `max_in_flight x batch_size` events.
    pub max_in_flight: usize,
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
            // Batches are pipelined (the confirm delays overlap), so the rate is bounded by
            // fetch + encode + write, and by `max_in_flight x batch_size / confirm_delay`
            // (about 330,000 events/s); `cargo bench --bench drain`, BENCHMARKS.md. Batches of
            // 4,096 (about 4 MB each, and up to three held at once: written, read ahead, being
            // encoded) rather than 16,384: the first-cycle event flood was the daemon's peak of
            // heap at 20,000 users (41 of 48 MB, a heap profile of the spread sweep, issue 10).
            // Sixteen in flight keep the same bound on a cut write's repeats (65,536 events).
            batch_size: 4_096,
            max_in_flight: 16,
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
        encoder: Arc::new(Encoder::new(&sink)),
        name: sink.name.clone(),
        sink,
        state_path,
        metrics,
        tuning,
        connection: None,
        db: None,
        reader: None,
    };
    let mut backoff = worker.tuning.backoff_min;
    while !cancel.is_cancelled() {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match worker.round(&cancel).await {
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
    encoder: Arc<Encoder>,
    connection: Option<Connection>,
    db: Option<rusqlite::Connection>,
    reader: Option<rusqlite::Connection>,
}

impl Worker {
    /// Delivers what is pending; returns how many events were acknowledged (0: nothing
    /// pending). On error every unacknowledged event counts as failed.
    async fn round(&mut self, cancel: &CancellationToken) -> Result<usize, RoundError> {
        let mut window = Window::new(self.tuning.max_in_flight);
        let mut delivered = 0;
        if let Err(error) = self.pipeline(&mut window, &mut delivered, cancel).await {
            self.connection = None;
            self.metrics
                .events_failed
                .with_label_values(&[&self.name])
                .inc_by(window.unacked() as u64);
            return Err(error);
        }
        Ok(delivered)
    }

    /// Writes batches while the window has room, acknowledging each one once its confirm
    /// delay passed; then waits out the window. A [`Reader`] reads and encodes the next batch
    /// while one is written and acknowledged.
    async fn pipeline(
        &mut self,
        window: &mut Window,
        delivered: &mut usize,
        cancel: &CancellationToken,
    ) -> Result<(), RoundError> {
        let name = self.name.clone();
        let after = self.db(move |conn| outbox::acked_seq(conn, &name)).await?;
        let from = ReadFrom {
            path: self.state_path.clone(),
            after,
            batch_size: self.tuning.batch_size,
            encoder: Arc::clone(&self.encoder),
        };
        let mut reader = Reader::start(self.reader.take(), from);
        let written = self
            .write_batches(&mut reader, window, delivered, cancel)
            .await;
        self.reader = reader.finish().await;
        written?;
        while !window.is_empty() {
            *delivered += self.settle(window, true).await?;
        }
        Ok(())
    }

    /// Writes what the reader delivers until it is done, an error, or a cancel.
    async fn write_batches(
        &mut self,
        reader: &mut Reader,
        window: &mut Window,
        delivered: &mut usize,
        cancel: &CancellationToken,
    ) -> Result<(), RoundError> {
        while let Some(batch) = reader.batches.recv().await {
            if cancel.is_cancelled() {
                break;
            }
            let batch = batch?;
            let sent = self.send(&batch.messages, window.is_empty()).await;
            window.push(Written {
                last_seq: batch.last_seq,
                count: batch.messages.len(),
                due: Instant::now() + self.confirm_delay(),
            });
            sent?;
            *delivered += self.settle(window, window.is_full()).await?;
        }
        Ok(())
    }

    /// The wait before a written batch may be acknowledged: the confirm delay for streams,
    /// none for datagrams and stdout.
    fn confirm_delay(&self) -> Duration {
        match &self.connection {
            Some(connection) if connection.is_stream() => self.tuning.confirm_delay,
            _ => Duration::ZERO,
        }
    }

    /// Acknowledges the batches whose confirm delay has passed, if the connection is still
    /// healthy; with `wait`, first sleeps until the oldest one is due. Returns the events
    /// acknowledged.
    async fn settle(&mut self, window: &mut Window, wait: bool) -> Result<usize, RoundError> {
        if wait {
            if let Some(due) = window.next_due() {
                tokio::time::sleep_until(due).await;
            }
        }
        let now = Instant::now();
        if !matches!(window.next_due(), Some(due) if due <= now) {
            return Ok(0);
        }
        if !self.connection.as_mut().is_some_and(Connection::is_healthy) {
            return Err(TransportError::PeerClosed {
                address: self.sink_address(),
            }
            .into());
        }
        let Some((last_seq, count)) = window.take_due(now) else {
            return Ok(0);
        };
        let name = self.name.clone();
        self.db(move |conn| outbox::ack(conn, &name, last_seq))
            .await?;
        self.metrics
            .events_delivered
            .with_label_values(&[&self.name])
            .inc_by(count as u64);
        Ok(count)
    }

    /// Writes one batch over the open connection, or a new one when `may_reconnect` (nothing
    /// in flight: batches written over a connection are confirmed by that connection only).
    async fn send(&mut self, messages: &Frames, may_reconnect: bool) -> Result<(), TransportError> {
        let healthy = self.connection.as_mut().is_some_and(Connection::is_healthy);
        let mut connection = match self.connection.take() {
            Some(open) if healthy => open,
            _ if !may_reconnect => {
                return Err(TransportError::PeerClosed {
                    address: self.sink_address(),
                })
            }
            _ => {
                let connector = Connector::new(&self.sink.kind, self.tuning.io_timeout)?;
                connector.connect().await?
            }
        };
        connection.send(messages, self.tuning.io_timeout).await?;
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

/// Opens the state file for a worker: WAL, a busy timeout, and the outbox schema.
pub fn open_state(path: &Path) -> Result<rusqlite::Connection, OutboxError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.execute_batch(outbox::SCHEMA)?;
    Ok(conn)
}
