//! Stand-in for the event outbox (`state::outbox`, owned by the events module) with exactly its
//! public signatures, so reconcile can enqueue inside its own transaction until the real one
//! lands. On-disk format: `outbox(seq, event_id, tenant, body)` rows and one
//! `outbox_cursor(sink, delivered_seq)` row per sink; a row is pending for a sink while its
//! `seq` is above the sink's cursor.

use crate::events::FindingEvent;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// DDL of the outbox tables (idempotent).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_cursor (
    sink TEXT PRIMARY KEY,
    delivered_seq INTEGER NOT NULL
);
";

/// Errors of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed.
    #[error("outbox database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An event could not be serialized.
    #[error("outbox event encoding failed: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Appends events inside the caller's transaction.
pub fn enqueue(tx: &Transaction<'_>, events: &[FindingEvent]) -> Result<(), OutboxError> {
    let mut insert =
        tx.prepare_cached("INSERT INTO outbox (event_id, tenant, body) VALUES (?1, ?2, ?3)")?;
    for event in events {
        let body = serde_json::to_string(event)?;
        insert.execute(params![event.event_id, event.tenant, body])?;
    }
    Ok(())
}

/// Events not yet delivered, per sink.
pub fn pending_by_sink(
    conn: &Connection,
    sinks: &[String],
) -> Result<BTreeMap<String, u64>, OutboxError> {
    let mut pending = BTreeMap::new();
    for sink in sinks {
        let cursor: i64 = conn
            .query_row(
                "SELECT delivered_seq FROM outbox_cursor WHERE sink = ?1",
                [sink],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let count: i64 = conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE seq > ?1",
            [cursor],
            |row| row.get(0),
        )?;
        pending.insert(sink.clone(), u64::try_from(count).unwrap_or(0));
    }
    Ok(pending)
}

/// Whether adding `adding` events would put any sink over `max` pending events.
pub fn would_overflow(
    conn: &Connection,
    sinks: &[String],
    adding: usize,
    max: usize,
) -> Result<bool, OutboxError> {
    let pending = pending_by_sink(conn, sinks)?;
    let adding = u64::try_from(adding).unwrap_or(u64::MAX);
    let max = u64::try_from(max).unwrap_or(u64::MAX);
    Ok(pending
        .values()
        .any(|count| count.saturating_add(adding) > max))
}
