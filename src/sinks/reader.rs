//! The read side of a delivery worker's pipeline: a blocking task with its own SQLite
//! connection that reads the outbox after a seq, in batches, and encodes them, one batch ahead
//! of the writer (a channel of one), so reading and encoding overlap writing and acknowledging.

use crate::sinks::delivery::open_state;
use crate::sinks::encoder::Encoder;
use crate::sinks::frames::Frames;
use crate::state::outbox::{self, OutboxError};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One batch read and encoded: the seq of its last event and one message per event.
pub(crate) struct Encoded {
    pub last_seq: i64,
    pub messages: Frames,
}

/// A running reader. Batches arrive in seq order; the channel closes after the last pending
/// batch, or after an error (sent as the last item).
pub(crate) struct Reader {
    pub batches: mpsc::Receiver<Result<Encoded, OutboxError>>,
    task: tokio::task::JoinHandle<Option<rusqlite::Connection>>,
}

/// What a reader needs besides its connection.
pub(crate) struct ReadFrom {
    pub path: PathBuf,
    pub after: i64,
    pub batch_size: usize,
    pub encoder: Arc<Encoder>,
}

impl Reader {
    /// Starts reading after `from.after` with `conn`, or a connection opened on `from.path`.
    pub(crate) fn start(conn: Option<rusqlite::Connection>, from: ReadFrom) -> Reader {
        let (tx, batches) = mpsc::channel(1);
        let task = tokio::task::spawn_blocking(move || {
            let conn = match conn.map_or_else(|| open_state(&from.path), Ok) {
                Ok(conn) => conn,
                Err(error) => {
                    let _ = tx.blocking_send(Err(error));
                    return None;
                }
            };
            read_ahead(&conn, &from, &tx).then_some(conn)
        });
        Reader { batches, task }
    }

    /// Stops the reader (it ends before its next batch) and returns its connection for the
    /// next round, unless it failed.
    pub(crate) async fn finish(self) -> Option<rusqlite::Connection> {
        drop(self.batches);
        self.task.await.ok().flatten()
    }
}

/// Reads and sends batches until none is pending or the writer is gone (true), or an outbox
/// error was sent (false).
fn read_ahead(
    conn: &rusqlite::Connection,
    from: &ReadFrom,
    tx: &mpsc::Sender<Result<Encoded, OutboxError>>,
) -> bool {
    let mut after = from.after;
    loop {
        let batch = match outbox::fetch_after(conn, after, from.batch_size) {
            Ok(batch) => batch,
            Err(error) => {
                let _ = tx.blocking_send(Err(error));
                return false;
            }
        };
        let Some(last_seq) = batch.last().map(|(seq, _)| *seq) else {
            return true;
        };
        let messages = from.encoder.encode_batch(&batch);
        drop(batch);
        if tx
            .blocking_send(Ok(Encoded { last_seq, messages }))
            .is_err()
        {
            return true;
        }
        after = last_seq;
    }
}
