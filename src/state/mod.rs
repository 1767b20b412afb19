//! The daemon's state: one SQLite file (WAL, versioned schema, mode 0600) holding finding
//! instances, per-check last status, scan history, event counts, delegated refresh tokens and
//! the event outbox.
//!
//! Crash semantics: every change a scan makes (instances, check status, scan row, event counts
//! and outbox rows) is written in one transaction by [`commit::apply`], so after a crash the
//! file holds either the state before the scan or the state after it with its events, never
//! half. Times are stored as Unix milliseconds.

pub mod commit;
pub mod directory_cache;
pub mod directory_reads;
pub mod outbox;
pub mod per_user;
pub mod reconcile;
mod schema;
pub mod summary;
pub mod tokens;

use crate::findings::{FindingId, Severity};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use schema::CURRENT_VERSION;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed.
    #[error("state database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file could not be created or its mode set.
    #[error("cannot prepare state file {path}: {source}")]
    File {
        /// The state file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was written by a newer build.
    #[error("state schema version {found} is newer than this build supports ({supported})")]
    NewerSchema {
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The config names another Entra tenant than the one the tenant's state belongs to.
    #[error(
        "tenant {tenant:?} holds the state of Entra tenant {stored}, but the config now names \
         tenant {configured}: it is not scanned, so no instance resolves against another \
         tenant's directory. If the tenant_id was changed on purpose, give the tenant a new name \
         to start its state afresh"
    )]
    TenantIdChanged {
        /// Tenant name from config.
        tenant: String,
        /// The tenant id the state belongs to.
        stored: String,
        /// The tenant id the config names now.
        configured: String,
    },
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] outbox::OutboxError),
    /// Stored JSON could not be read or written.
    #[error("state json error: {0}")]
    Json(#[from] serde_json::Error),
    /// The connection lock was poisoned by a panic elsewhere.
    #[error("state lock poisoned")]
    Poisoned,
    /// The outbox is over its bound; nothing was committed.
    #[error("outbox full: {pending} pending events plus {adding} new exceed {max}")]
    OutboxFull {
        /// Most pending events of any sink.
        pending: u64,
        /// Events this scan would add.
        adding: usize,
        /// The configured bound.
        max: usize,
    },
}

/// A handle to the state file; cheap to clone, one connection behind a mutex.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating with mode 0600 if needed) and migrates the state file.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        prepare_file(path)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&mut conn)?;
        tighten_companions(path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Opens an existing state file for reading only (the `report` command): no migration,
    /// no change to the file. When no daemon has it open (no `-wal` file beside it), it is
    /// opened `immutable`, so SQLite creates no `-wal` or `-shm` either: run as root, a report
    /// must not leave root-owned companions the daemon's user then cannot open.
    pub fn open_read_only(path: &Path) -> Result<Self, StateError> {
        let in_use = companion(path, "-wal").exists();
        let mut uri = format!("file:{}?mode=ro", uri_path(path));
        if !in_use {
            uri.push_str("&immutable=1");
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(uri, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::check_readable(&conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Locks the connection for a unit of work.
    pub fn lock(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.conn.lock().map_err(|_| StateError::Poisoned)
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, StateError> {
        let conn = self.lock()?;
        Ok(
            conn.query_row("SELECT MAX(version) FROM schema_version", [], |row| {
                row.get(0)
            })?,
        )
    }

    /// A trivial query, for the watchdog: proves the file answers and the lock is free.
    pub fn ping(&self) -> Result<(), StateError> {
        let conn = self.lock()?;
        conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?;
        Ok(())
    }

    /// Makes the outbox cursors match the configured sinks (at start and on reload, before
    /// the next enqueue): new sinks start at the head, removed sinks release their rows.
    pub fn register_sinks(&self, sinks: &[String]) -> Result<(), StateError> {
        let conn = self.lock()?;
        Ok(outbox::register_sinks(&conn, sinks)?)
    }

    /// Every stored instance of a tenant (open and resolved).
    pub fn load_instances(&self, tenant: &str) -> Result<Vec<StoredInstance>, StateError> {
        let conn = self.lock()?;
        load_instances(&conn, tenant)
    }

    /// Binds the tenant name to its Entra tenant id (a GUID, compared without case) on first
    /// sight, and refuses another one afterwards ([`StateError::TenantIdChanged`]). A state
    /// file from before the binding takes the id the config names at its first scan.
    pub fn bind_tenant_id(&self, tenant: &str, tenant_id: &str) -> Result<(), StateError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT OR IGNORE INTO tenant_identity (tenant, tenant_id) VALUES (?1, ?2)",
            params![tenant, tenant_id],
        )?;
        let stored: String = conn.query_row(
            "SELECT tenant_id FROM tenant_identity WHERE tenant = ?1",
            [tenant],
            |row| row.get(0),
        )?;
        if stored.eq_ignore_ascii_case(tenant_id) {
            return Ok(());
        }
        Err(StateError::TenantIdChanged {
            tenant: tenant.to_owned(),
            stored,
            configured: tenant_id.to_owned(),
        })
    }

    /// The findings whose `first_scan = "baseline"` is over for the tenant: their check was
    /// once evaluated with every resource collected (for a per-user check, once the first
    /// sweep reached every user), or was first evaluated `longest` or more before `now`, so
    /// that a sweep that never completes cannot keep new instances silent for good.
    pub fn baseline_over(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        longest: chrono::Duration,
    ) -> Result<Vec<FindingId>, StateError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT finding FROM check_status WHERE tenant = ?1
             AND (baseline_ended_ms IS NOT NULL OR first_evaluated_ms <= ?2)",
        )?;
        let since = now.checked_sub_signed(longest).map_or(i64::MIN, to_ms);
        let rows = stmt.query_map(params![tenant, since], |row| row.get::<_, String>(0))?;
        let mut found = Vec::new();
        for name in rows {
            if let Ok(id) = name?.parse::<FindingId>() {
                found.push(id);
            }
        }
        Ok(found)
    }
}

/// Creates the directory (mode 0700) and the file (mode 0600) before SQLite opens it, whatever
/// the umask and whoever starts the agent, and tightens an existing file. An existing directory
/// is left as it is (it may be the working directory, or systemd's `StateDirectory=`).
fn prepare_file(path: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let file_error = |source| StateError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(file_error)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(file_error)?;
    make_private(path).map_err(file_error)
}

/// Sets mode 0600 on the state file's `-wal` and `-shm` files where they exist (SQLite
/// creates those with the database file's mode; this also fixes files left by older builds).
fn tighten_companions(path: &Path) -> Result<(), StateError> {
    for suffix in ["-wal", "-shm"] {
        let companion = companion(path, suffix);
        match make_private(&companion) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(StateError::File {
                    path: companion,
                    source: err,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// One stored instance of a finding in a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInstance {
    /// Which finding.
    pub finding: FindingId,
    /// The instance key.
    pub resource_id: String,
    /// Stable fingerprint (tenant id, finding, resource id).
    pub fingerprint: String,
    /// UPN, app or domain name as last seen.
    pub resource_name: String,
    /// Effective severity when last written.
    pub severity: Severity,
    /// Start of the current (or last) open period.
    pub first_seen: DateTime<Utc>,
    /// Last scan that saw it.
    pub last_seen: DateTime<Utc>,
    /// When it resolved; `None` while open.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Whether a suppression applied at the last scan that saw it.
    pub suppressed: bool,
    /// Whether this open period was announced (a `new` event, or a baseline): only announced
    /// instances produce a `resolved` event.
    pub announced: bool,
    /// Evidence as last seen.
    pub details: crate::details::Details,
}

impl StoredInstance {
    /// Open (not resolved).
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }
}

fn load_instances(conn: &Connection, tenant: &str) -> Result<Vec<StoredInstance>, StateError> {
    let mut stmt = conn.prepare_cached(
        "SELECT finding, resource_id, fingerprint, resource_name, severity, first_seen_ms,
                last_seen_ms, resolved_at_ms, suppressed, announced, details
         FROM instances WHERE tenant = ?1",
    )?;
    let mut rows = stmt.query(params![tenant])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let finding: String = row.get(0)?;
        let severity: String = row.get(4)?;
        let (Ok(finding), Ok(severity)) = (finding.parse(), severity.parse()) else {
            tracing::warn!(
                tenant,
                finding,
                "Ignoring a stored instance of an unknown finding"
            );
            continue;
        };
        let details: String = row.get(10)?;
        found.push(StoredInstance {
            finding,
            resource_id: row.get(1)?,
            fingerprint: row.get(2)?,
            resource_name: row.get(3)?,
            severity,
            first_seen: from_ms(row.get(5)?),
            last_seen: from_ms(row.get(6)?),
            resolved_at: row.get::<_, Option<i64>>(7)?.map(from_ms),
            suppressed: row.get(8)?,
            announced: row.get(9)?,
            details: serde_json::from_str(&details)?,
        });
    }
    Ok(found)
}

/// Unix milliseconds of a time.
pub(crate) fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A time from Unix milliseconds (the epoch if out of range).
pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `path` with `suffix` appended to its file name (`state.db-wal`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A path as the path part of an SQLite `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}
