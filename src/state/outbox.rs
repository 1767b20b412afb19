//! The transactional event outbox: at-least-once delivery of [`FindingEvent`]s to every sink.
//!
//! On-disk format (SQLite, created by [`SCHEMA`]):
//! - `outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT, created INTEGER)`: one row per
//!   event, `event` the event as JSON, `created` Unix seconds from SQLite's clock. AUTOINCREMENT
//!   keeps `seq` growing even after every row was deleted, so order and cursors stay valid.
//! - `outbox_cursor(sink TEXT PRIMARY KEY, acked_seq INTEGER)`: per sink, the last delivered seq.
//!
//! Reconcile calls [`enqueue`] inside the transaction that also writes finding state, so either
//! both land or neither does. Each sink's worker [`fetch`]es rows after its cursor in `seq` order
//! (and [`fetch_after`] past the batches it has in flight) and [`ack`]s them after a successful
//! write; a row that every registered sink has passed is deleted. A crash between write and ack
//! resends the same rows (same `event_id`), never loses them.
//!
//! Sinks: [`register_sinks`] makes the cursor table match the configured sinks. A sink seen for
//! the first time starts at the current head (it does not replay history that predates it);
//! a sink no longer configured loses its cursor, so it cannot pin rows forever (renaming a sink
//! therefore starts it afresh). Call it at startup, before the first [`enqueue`] (a sink
//! registered later starts after rows enqueued before it). [`enqueue`] never deletes; [`ack`] and
//! [`register_sinks`] delete rows no registered sink still needs (with no sinks, all rows).
//!
//! Bound: [`would_overflow`] tells reconcile that committing would put some sink over its limit;
//! reconcile then does not commit (events are delayed to a later scan, never dropped).

use crate::events::FindingEvent;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// Idempotent DDL for the outbox and the per-sink cursors.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL,
    created INTEGER NOT NULL DEFAULT (CAST(strftime('%s','now') AS INTEGER))
);
CREATE TABLE IF NOT EXISTS outbox_cursor (
    sink TEXT PRIMARY KEY,
    acked_seq INTEGER NOT NULL
);
";

/// Outbox failures.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// SQLite failed.
    #[error("outbox database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An event could not be encoded.
    #[error("outbox event encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// The sink has no cursor (not registered).
    #[error("sink {0:?} is not registered in the outbox")]
    UnknownSink(String),
}

/// Appends events in order, inside the caller's transaction.
pub fn enqueue(tx: &Transaction<'_>, events: &[FindingEvent]) -> Result<(), OutboxError> {
    let mut insert = tx.prepare_cached("INSERT INTO outbox (event) VALUES (?1)")?;
    for event in events {
        insert.execute(params![serde_json::to_string(event)?])?;
    }
    Ok(())
}

/// Events not yet delivered, per sink (0 for a sink that is not registered).
pub fn pending_by_sink(
    conn: &Connection,
    sinks: &[String],
) -> Result<BTreeMap<String, u64>, OutboxError> {
    let mut pending = BTreeMap::new();
    for sink in sinks {
        let count = match cursor(conn, sink)? {
            Some(acked) => conn.query_row(
                "SELECT COUNT(*) FROM outbox WHERE seq > ?1",
                params![acked],
                |row| row.get::<_, i64>(0),
            )?,
            None => 0,
        };
        pending.insert(sink.clone(), u64::try_from(count).unwrap_or(0));
    }
    Ok(pending)
}

/// True when adding `adding` events would leave some sink with more than `max` pending. A sink
/// with nothing pending never overflows, so a single scan larger than the bound still commits.
pub fn would_overflow(
    conn: &Connection,
    sinks: &[String],
    adding: usize,
    max: usize,
) -> Result<bool, OutboxError> {
    let pending = pending_by_sink(conn, sinks)?;
    let adding = u64::try_from(adding).unwrap_or(u64::MAX);
    let max = u64::try_from(max).unwrap_or(u64::MAX);
    // A sink with nothing pending always takes the scan, however large: otherwise one scan with
    // more transitions than the bound could never commit, and the agent would stall for good.
    Ok(pending
        .values()
        .any(|count| *count > 0 && count.saturating_add(adding) > max))
}

/// Up to `limit` events after the sink's cursor, oldest first, with their seq. A row whose JSON
/// no longer decodes is skipped with a warning (it is passed over by the next ack).
pub fn fetch(
    conn: &Connection,
    sink: &str,
    limit: usize,
) -> Result<Vec<(i64, FindingEvent)>, OutboxError> {
    fetch_after(conn, acked_seq(conn, sink)?, limit)
}

/// The sink's cursor: the seq of the last event it acknowledged.
pub fn acked_seq(conn: &Connection, sink: &str) -> Result<i64, OutboxError> {
    cursor(conn, sink)?.ok_or_else(|| OutboxError::UnknownSink(sink.to_owned()))
}

/// Up to `limit` events with a seq above `after`, oldest first, as [`fetch`] reads them after
/// a cursor: a pipelining worker reads on past batches it has written but not yet acknowledged.
pub fn fetch_after(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, FindingEvent)>, OutboxError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut select =
        conn.prepare_cached("SELECT seq, event FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
    let mut rows = select.query(params![after, limit])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let seq = row.get::<_, i64>(0)?;
        // Decoded from SQLite's buffer, without copying the text into a String first.
        let decoded = row
            .get_ref(1)?
            .as_str()
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str::<FindingEvent>(text).map_err(|e| e.to_string()));
        match decoded {
            Ok(event) => events.push((seq, event)),
            Err(error) => {
                tracing::warn!(seq, %error, "Skipping an outbox row that does not decode")
            }
        }
    }
    Ok(events)
}

/// Marks everything up to `seq` delivered for `sink` (the cursor never moves back), then deletes
/// rows every registered sink has passed.
pub fn ack(conn: &Connection, sink: &str, seq: i64) -> Result<(), OutboxError> {
    let changed = conn.execute(
        "UPDATE outbox_cursor SET acked_seq = MAX(acked_seq, ?2) WHERE sink = ?1",
        params![sink, seq],
    )?;
    if changed == 0 {
        return Err(OutboxError::UnknownSink(sink.to_owned()));
    }
    prune(conn)
}

/// Makes the cursors match `sinks`: new sinks start at the current head, cursors of sinks not
/// in the list are removed, and rows no remaining sink needs are deleted.
pub fn register_sinks(conn: &Connection, sinks: &[String]) -> Result<(), OutboxError> {
    let registered: Vec<String> = conn
        .prepare("SELECT sink FROM outbox_cursor")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for stale in registered.iter().filter(|name| !sinks.contains(name)) {
        conn.execute("DELETE FROM outbox_cursor WHERE sink = ?1", params![stale])?;
    }
    for sink in sinks {
        register_sink(conn, sink)?;
    }
    prune(conn)
}

/// Adds one sink at the current head if it has no cursor yet; other sinks are untouched.
pub fn register_sink(conn: &Connection, sink: &str) -> Result<(), OutboxError> {
    conn.execute(
        "INSERT OR IGNORE INTO outbox_cursor (sink, acked_seq)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) FROM outbox))",
        params![sink],
    )?;
    Ok(())
}

fn cursor(conn: &Connection, sink: &str) -> Result<Option<i64>, OutboxError> {
    Ok(conn
        .query_row(
            "SELECT acked_seq FROM outbox_cursor WHERE sink = ?1",
            params![sink],
            |row| row.get(0),
        )
        .optional()?)
}

/// Deletes rows at or below the slowest cursor (all rows when no sink is registered).
fn prune(conn: &Connection) -> Result<(), OutboxError> {
    conn.execute(
        "DELETE FROM outbox WHERE seq <= COALESCE(
            (SELECT MIN(acked_seq) FROM outbox_cursor),
            (SELECT MAX(seq) FROM outbox))",
        [],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventAction;
    use crate::findings::{Category, FindingId, Severity};
    use chrono::TimeZone;

    fn event(n: u32) -> FindingEvent {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, n).unwrap();
        FindingEvent {
            event_id: format!("event-{n}"),
            action: EventAction::New,
            detected_at: at,
            tenant: "contoso".into(),
            finding: FindingId::AccountDisabled,
            title: FindingId::AccountDisabled.meta().title.into(),
            category: Category::UserAccountSettings,
            severity: Severity::Low,
            resource_id: format!("user-{n}"),
            resource_name: format!("u{n}@contoso.com"),
            user_principal_name: Some(format!("u{n}@contoso.com")),
            fingerprint: format!("{n:032x}"),
            first_seen: at,
            last_seen: at,
            details: Default::default(),
        }
    }

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn push(conn: &mut Connection, range: std::ops::Range<u32>) {
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &range.map(event).collect::<Vec<_>>()).unwrap();
        tx.commit().unwrap();
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn ids(rows: &[(i64, FindingEvent)]) -> Vec<String> {
        rows.iter().map(|(_, e)| e.event_id.clone()).collect()
    }

    #[test]
    fn each_sink_reads_in_order_with_its_own_cursor() {
        let mut conn = db();
        register_sinks(&conn, &names(&["a", "b"])).unwrap();
        push(&mut conn, 0..5);
        let a = fetch(&conn, "a", 3).unwrap();
        assert_eq!(ids(&a), ["event-0", "event-1", "event-2"]);
        ack(&conn, "a", a[2].0).unwrap();
        assert_eq!(ids(&fetch(&conn, "a", 10).unwrap()), ["event-3", "event-4"]);
        assert_eq!(fetch(&conn, "b", 10).unwrap().len(), 5);
        let pending = pending_by_sink(&conn, &names(&["a", "b"])).unwrap();
        assert_eq!(pending["a"], 2);
        assert_eq!(pending["b"], 5);
    }

    #[test]
    fn rows_are_deleted_only_when_every_sink_passed_them() {
        let mut conn = db();
        register_sinks(&conn, &names(&["a", "b"])).unwrap();
        push(&mut conn, 0..4);
        let last = fetch(&conn, "a", 10).unwrap().last().unwrap().0;
        ack(&conn, "a", last).unwrap();
        let rows = |c: &Connection| -> i64 {
            c.query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(rows(&conn), 4);
        ack(&conn, "b", last - 2).unwrap();
        assert_eq!(rows(&conn), 2);
        ack(&conn, "b", last).unwrap();
        assert_eq!(rows(&conn), 0);
        // the cursor never moves back
        ack(&conn, "b", 1).unwrap();
        push(&mut conn, 4..5);
        assert_eq!(ids(&fetch(&conn, "b", 10).unwrap()), ["event-4"]);
    }

    #[test]
    fn a_new_sink_starts_at_the_head_and_a_removed_one_stops_pinning_rows() {
        let mut conn = db();
        register_sinks(&conn, &names(&["a"])).unwrap();
        push(&mut conn, 0..3);
        register_sinks(&conn, &names(&["a", "late"])).unwrap();
        assert!(fetch(&conn, "late", 10).unwrap().is_empty());
        push(&mut conn, 3..4);
        assert_eq!(ids(&fetch(&conn, "late", 10).unwrap()), ["event-3"]);
        // "a" removed: its 4 pending rows no longer count, "late" still needs one
        register_sinks(&conn, &names(&["late"])).unwrap();
        assert!(matches!(
            fetch(&conn, "a", 1),
            Err(OutboxError::UnknownSink(_))
        ));
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
        assert!(matches!(
            ack(&conn, "a", 1),
            Err(OutboxError::UnknownSink(_))
        ));
    }

    #[test]
    fn overflow_is_per_sink_and_a_rolled_back_enqueue_leaves_nothing() {
        let mut conn = db();
        register_sinks(&conn, &names(&["a", "b"])).unwrap();
        push(&mut conn, 0..3);
        let last = fetch(&conn, "a", 10).unwrap().last().unwrap().0;
        ack(&conn, "a", last).unwrap();
        let sinks = names(&["a", "b"]);
        assert!(!would_overflow(&conn, &sinks, 2, 5).unwrap());
        assert!(would_overflow(&conn, &sinks, 3, 5).unwrap());
        assert!(!would_overflow(&conn, &names(&["a"]), 5, 5).unwrap());
        assert!(
            !would_overflow(&conn, &names(&["a"]), 50, 5).unwrap(),
            "an empty outbox takes a scan larger than the bound"
        );
        {
            let tx = conn.transaction().unwrap();
            enqueue(&tx, &[event(9)]).unwrap();
            // dropped without commit
        }
        assert_eq!(pending_by_sink(&conn, &sinks).unwrap()["b"], 3);
    }

    #[test]
    fn events_round_trip_through_the_row() {
        let mut conn = db();
        register_sinks(&conn, &names(&["a"])).unwrap();
        let mut original = event(7);
        original
            .details
            .insert("recipients".into(), serde_json::json!(["x@evil.test"]));
        let tx = conn.transaction().unwrap();
        enqueue(&tx, std::slice::from_ref(&original)).unwrap();
        tx.commit().unwrap();
        assert_eq!(fetch(&conn, "a", 1).unwrap()[0].1, original);
    }
}
