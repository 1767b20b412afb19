//! The daemon's per-user reads in the state file (table `per_user_reads`): for each tenant,
//! user and kind (`auth_methods`, `calendar`, `rules`) the items of the latest successful read
//! as a JSON array, when it was read, and for methods the registration-report row it was read
//! against. Only successful reads are stored; a failed read leaves the previous row.
//!
//! Crash semantics: one scan's reads and deletions are written in one transaction, after
//! collection and before reconcile. A crash between the two leaves rows newer than the
//! findings state; the next scan evaluates them, so no read is lost and nothing resolves
//! without the data that shows it.

use super::{from_ms, to_ms, StateError, Store};
use chrono::{DateTime, Utc};
use rusqlite::params;

/// One stored per-user read, with its items as `I`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRead<I> {
    /// User object id.
    pub user_id: String,
    /// `auth_methods`, `calendar` or `rules`.
    pub kind: String,
    /// When the read was answered.
    pub read_at: DateTime<Utc>,
    /// For methods: the registration-report key the read was made against.
    pub registration: Option<String>,
    /// The items: their text, or what they are ([`StoredItems`]).
    pub items: I,
}

/// One stored per-user read with its items as a JSON array of snapshot objects (or the
/// "cannot be read" form).
pub type PerUserRead = StoredRead<String>;

/// One stored per-user read without its items' text.
pub type PerUserHead = StoredRead<StoredItems>;

/// What a stored read's items are, told without holding its text: the sweep decides from it
/// whether a read is due, and reads the text only when the merge places it (issue 10: the
/// texts were 30 MB held through every scan at 100,000 users).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredItems {
    /// An empty JSON array.
    Empty,
    /// A JSON array with at least one item.
    Some,
    /// `{"not_readable": reason}`: a 404 Graph documents as "cannot be read".
    NotReadable,
    /// Neither (a damaged row): its parse fails when it is placed.
    Unknown,
}

impl StoredItems {
    /// The kind of `items` (a stored read's text).
    pub fn of(items: &str) -> Self {
        let items = items.trim();
        if items.starts_with('{') {
            Self::NotReadable
        } else if items == "[]" {
            Self::Empty
        } else if items.starts_with('[') {
            Self::Some
        } else {
            Self::Unknown
        }
    }
}

impl PerUserRead {
    /// The read without its items' text.
    pub fn head(&self) -> PerUserHead {
        PerUserHead {
            user_id: self.user_id.clone(),
            kind: self.kind.clone(),
            read_at: self.read_at,
            registration: self.registration.clone(),
            items: StoredItems::of(&self.items),
        }
    }
}

impl Store {
    /// Every stored per-user read of a tenant, without the items' texts.
    pub fn load_per_user_heads(&self, tenant: &str) -> Result<Vec<PerUserHead>, StateError> {
        // Borrowed from the row: the text is not copied.
        self.load_stored_reads(tenant, |items| Ok(StoredItems::of(items.as_str()?)))
    }

    /// Every stored read of `tenant`, its items made by `items` from the row's column.
    fn load_stored_reads<I>(
        &self,
        tenant: &str,
        items: impl Fn(rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<I>,
    ) -> Result<Vec<StoredRead<I>>, StateError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare(
            "SELECT user_id, kind, read_at_ms, registration, items
             FROM per_user_reads WHERE tenant = ?1",
        )?;
        let rows = statement.query_map([tenant], |row| {
            Ok(StoredRead {
                user_id: row.get(0)?,
                kind: row.get(1)?,
                read_at: from_ms(row.get(2)?),
                registration: row.get(3)?,
                items: items(row.get_ref(4)?).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        4,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Calls `visit` with the user id and items of up to `limit` stored reads of one kind of a
    /// tenant with a user id above `after` (from the first when `None`), in user id order,
    /// each borrowed from its row (nothing is copied); returns how many it visited.
    pub fn visit_per_user_items(
        &self,
        (tenant, kind): (&str, &str),
        (after, limit): (Option<&str>, usize),
        mut visit: impl FnMut(&str, &str),
    ) -> Result<usize, StateError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare_cached(
            "SELECT user_id, items FROM per_user_reads
             WHERE tenant = ?1 AND kind = ?2 AND (?3 IS NULL OR user_id > ?3)
             ORDER BY user_id LIMIT ?4",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = statement.query(params![tenant, kind, after, limit])?;
        let mut visited = 0;
        while let Some(row) = rows.next()? {
            let text =
                |column| -> Result<&str, rusqlite::Error> { Ok(row.get_ref(column)?.as_str()?) };
            visit(text(0)?, text(1)?);
            visited += 1;
        }
        Ok(visited)
    }

    /// Every stored per-user read of a tenant.
    pub fn load_per_user_reads(&self, tenant: &str) -> Result<Vec<PerUserRead>, StateError> {
        self.load_stored_reads(tenant, |items| Ok(items.as_str()?.to_owned()))
    }

    /// Stores `reads` (replacing older ones) and forgets every read of `deleted_users`, in one
    /// transaction.
    pub fn save_per_user_reads(
        &self,
        tenant: &str,
        reads: impl IntoIterator<Item = PerUserRead>,
        deleted_users: &[String],
    ) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare(
                "INSERT INTO per_user_reads (tenant, user_id, kind, read_at_ms, registration, items)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, user_id, kind) DO UPDATE SET
                   read_at_ms = excluded.read_at_ms, registration = excluded.registration,
                   items = excluded.items",
            )?;
            for read in reads {
                upsert.execute(params![
                    tenant,
                    read.user_id,
                    read.kind,
                    to_ms(read.read_at),
                    read.registration,
                    read.items
                ])?;
            }
            let mut delete =
                tx.prepare("DELETE FROM per_user_reads WHERE tenant = ?1 AND user_id = ?2")?;
            for user in deleted_users {
                delete.execute(params![tenant, user])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(user: &str, kind: &str, items: &str) -> PerUserRead {
        PerUserRead {
            user_id: user.into(),
            kind: kind.into(),
            read_at: from_ms(1_700_000_000_000),
            registration: Some("fido2|2026-01-01T00:00:00Z".into()),
            items: items.into(),
        }
    }

    #[test]
    fn reads_replace_older_ones_and_deleted_users_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let first = [read("u1", "calendar", "[]"), read("u2", "rules", "[]")];
        store.save_per_user_reads("t", first, &[]).unwrap();
        let newer = read("u1", "calendar", r#"[{"id":"p1"}]"#);
        store
            .save_per_user_reads("t", [newer.clone()], &["u2".into()])
            .unwrap();
        assert_eq!(store.load_per_user_reads("t").unwrap(), vec![newer]);
        assert!(store.load_per_user_reads("other").unwrap().is_empty());
    }

    #[test]
    fn heads_tell_the_items_apart_and_items_come_by_kind_in_user_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let reads = [
            read("u2", "rules", r#"[{"id":"r"}]"#),
            read("u1", "rules", " [] "),
            read("u1", "calendar", r#"{"not_readable":"404"}"#),
            read("u3", "rules", "damaged"),
        ];
        store.save_per_user_reads("t", reads, &[]).unwrap();
        let mut heads = store.load_per_user_heads("t").unwrap();
        heads.sort_by(|a, b| (&a.user_id, &a.kind).cmp(&(&b.user_id, &b.kind)));
        let kinds: Vec<(&str, &str, StoredItems)> = heads
            .iter()
            .map(|h| (h.user_id.as_str(), h.kind.as_str(), h.items))
            .collect();
        assert_eq!(
            kinds,
            [
                ("u1", "calendar", StoredItems::NotReadable),
                ("u1", "rules", StoredItems::Empty),
                ("u2", "rules", StoredItems::Some),
                ("u3", "rules", StoredItems::Unknown),
            ]
        );
        assert_eq!(heads[2].registration, read("u", "", "").registration);
        assert_eq!(heads[2].read_at, from_ms(1_700_000_000_000));
        let items = |kind: &str| {
            let mut seen: Vec<(String, String)> = Vec::new();
            loop {
                let after = seen.last().map(|(user, _)| user.clone());
                let chunk = (after.as_deref(), 2);
                let visit =
                    |user: &str, items: &str| seen.push((user.to_owned(), items.to_owned()));
                if store
                    .visit_per_user_items(("t", kind), chunk, visit)
                    .unwrap()
                    < 2
                {
                    return seen;
                }
            }
        };
        let rules = items("rules");
        let users: Vec<&str> = rules.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(users, ["u1", "u2", "u3"]);
        assert_eq!(rules[1].1, r#"[{"id":"r"}]"#);
        assert!(items("auth_methods").is_empty());
    }
}
