//! The state file's schema: ordered migrations tracked in `schema_version`.
//!
//! A migration runs in its own transaction together with the version bump, so a crash during
//! an upgrade leaves the previous version intact. Migrations are append-only: a released one is
//! never edited. The outbox DDL belongs to the outbox module and is idempotent, so it runs on
//! every open after the migrations.

use super::outbox;
use super::StateError;
use rusqlite::{Connection, OptionalExtension};

/// Ordered migrations; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: instances, check status, scans, event counts, delegated refresh tokens.
    "
    CREATE TABLE instances (
        tenant TEXT NOT NULL,
        finding TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        resource_name TEXT NOT NULL,
        severity TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        resolved_at_ms INTEGER,
        suppressed INTEGER NOT NULL DEFAULT 0,
        announced INTEGER NOT NULL DEFAULT 0,
        details TEXT NOT NULL,
        PRIMARY KEY (tenant, finding, resource_id)
    );
    CREATE TABLE check_status (
        tenant TEXT NOT NULL,
        finding TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        severity TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        evaluated_at_ms INTEGER,
        PRIMARY KEY (tenant, finding)
    );
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        finished_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        duration_seconds REAL NOT NULL,
        error TEXT
    );
    CREATE INDEX scans_by_tenant ON scans (tenant, id);
    CREATE TABLE event_counts (
        tenant TEXT NOT NULL,
        finding TEXT NOT NULL,
        severity TEXT NOT NULL,
        action TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (tenant, finding, severity, action)
    );
    CREATE TABLE refresh_tokens (
        tenant TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    ",
    // 2: the daemon's per-user reads (issue 10): the latest successful read of each user's
    // authentication methods, calendar permissions and inbox rules, so checks evaluate the
    // latest data of every user and a restart resumes the sweep.
    "
    CREATE TABLE per_user_reads (
        tenant TEXT NOT NULL,
        user_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        read_at_ms INTEGER NOT NULL,
        registration TEXT,
        items TEXT NOT NULL,
        PRIMARY KEY (tenant, user_id, kind)
    );
    ",
    // 3: the daemon's directory cache for delta queries (issue 10): the objects of each
    // tenant's users, applications and service principals as last synchronised (id and the
    // selected JSON), and the deltaLink of the round that produced them.
    "
    CREATE TABLE directory_objects (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        object TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    );
    CREATE TABLE delta_links (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        query TEXT NOT NULL,
        link TEXT NOT NULL,
        synced_ms INTEGER NOT NULL,
        PRIMARY KEY (tenant, collection)
    );
    ",
    // 4: when each delta collection was last listed in full (a resync). NULL for links stored
    // before this version: the collection is listed again at its next scan.
    "
    ALTER TABLE delta_links ADD COLUMN listed_ms INTEGER;
    ",
    // 5: a full listing in progress, page by page (issue 10): its objects wait here until the
    // listing completes and replaces the collection's stored objects in one transaction, so
    // the daemon never holds a 100,000-user listing as text.
    "
    CREATE TABLE directory_listing (
        tenant TEXT NOT NULL,
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        object TEXT NOT NULL,
        PRIMARY KEY (tenant, collection, id)
    );
    ",
    // 6: when each check was first evaluated, and when its `first_scan = "baseline"` ended: at
    // its first evaluation with every resource collected, which for a per-user check is the
    // end of the tenant's first sweep, not its first scan. A check evaluated before this
    // version has had its baseline.
    "
    ALTER TABLE check_status ADD COLUMN first_evaluated_ms INTEGER;
    ALTER TABLE check_status ADD COLUMN baseline_ended_ms INTEGER;
    UPDATE check_status SET first_evaluated_ms = evaluated_at_ms,
        baseline_ended_ms = evaluated_at_ms
        WHERE evaluated_at_ms IS NOT NULL;
    ",
    // 7: which Entra tenant id each configured tenant name stands for: a config that points
    // the name at another tenant must not resolve the first tenant's instances against the
    // second's directory, nor mix their stored directory and per-user reads.
    "
    CREATE TABLE tenant_identity (
        tenant TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL
    );
    ",
];

/// Refuses a file a reader of this build cannot read: not a state file, or a newer schema.
pub(crate) fn check_readable(conn: &Connection) -> Result<(), StateError> {
    let found: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0);
    if found > CURRENT_VERSION {
        return Err(StateError::NewerSchema {
            found,
            supported: CURRENT_VERSION,
        });
    }
    Ok(())
}

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the schema up to [`CURRENT_VERSION`]; refuses a file from a newer build.
pub fn migrate(conn: &mut Connection) -> Result<(), StateError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);")?;
    let found: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if found > CURRENT_VERSION {
        return Err(StateError::NewerSchema {
            found,
            supported: CURRENT_VERSION,
        });
    }
    for (index, ddl) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i64::try_from(index).unwrap_or(i64::MAX).saturating_add(1);
        let tx = conn.transaction()?;
        tx.execute_batch(ddl)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [version],
        )?;
        tx.commit()?;
        tracing::info!(version, "Migrated the state schema");
    }
    conn.execute_batch(outbox::SCHEMA)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A state file written before version 6 keeps its baselines: a check it evaluated does
    /// not start a second baseline after the upgrade; one never evaluated still has its own.
    #[test]
    fn version_6_counts_checks_evaluated_before_it_as_past_their_baseline() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);")
            .unwrap();
        for (index, ddl) in MIGRATIONS[..5].iter().enumerate() {
            conn.execute_batch(ddl).unwrap();
            conn.execute("INSERT INTO schema_version VALUES (?1)", [index + 1])
                .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO check_status VALUES ('t', 'user.account_disabled', 'partial', NULL,
                 'low', 7, 7);
             INSERT INTO check_status VALUES ('t', 'user.mfa_not_registered', 'skipped', NULL,
                 'high', 7, NULL);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let row = |finding: &str| -> (Option<i64>, Option<i64>) {
            conn.query_row(
                "SELECT first_evaluated_ms, baseline_ended_ms FROM check_status
                 WHERE finding = ?1",
                [finding],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap()
        };
        assert_eq!(row("user.account_disabled"), (Some(7), Some(7)));
        assert_eq!(row("user.mfa_not_registered"), (None, None));
    }
}
