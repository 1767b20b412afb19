//! Reading a stored delta collection in pieces ([`crate::state::directory_cache`] writes it):
//! its link and size without its objects, the objects of given ids, and the objects in id
//! order a chunk at a time.
//!
//! A scan reads the stored directory this way so that its texts are never all held: at
//! 100,000 users they were 56 MB of the daemon's 141.7 MB heap peak in the spread sweep
//! (heaptrack, BENCHMARKS.md "2026-12-07, evening"; issue 10). Each call takes the state
//! file's lock only for its own query, so `/metrics` and delivery are not held up behind a
//! whole collection.

use super::directory_cache::{stored_link, StoredLink};
use super::{StateError, Store};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

/// A stored collection without its objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHead {
    /// The initial query of the stored round and its deltaLink.
    pub link: Option<StoredLink>,
    /// When the collection was last listed in full (a resync); `None` if never.
    pub listed_at: Option<DateTime<Utc>>,
    /// How many objects are stored.
    pub count: usize,
}

impl Store {
    /// The link, listing time and object count of one collection of a tenant.
    pub fn load_directory_head(
        &self,
        tenant: &str,
        collection: &str,
    ) -> Result<StoredHead, StateError> {
        let conn = self.lock()?;
        let (link, listed_at) = stored_link(&conn, tenant, collection)?;
        let count: i64 = conn.query_row(
            "SELECT COUNT(*) FROM directory_objects WHERE tenant = ?1 AND collection = ?2",
            params![tenant, collection],
            |row| row.get(0),
        )?;
        Ok(StoredHead {
            link,
            listed_at,
            count: usize::try_from(count).unwrap_or(0),
        })
    }

    /// `(id, object JSON)` of those of `ids` that are stored, in id order.
    pub fn directory_objects_of(
        &self,
        tenant: &str,
        collection: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, StateError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare_cached(
            "SELECT id, object FROM directory_objects
             WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
        )?;
        let mut found = Vec::new();
        for id in ids {
            let object: Option<String> = statement
                .query_row(params![tenant, collection, id], |row| row.get(1))
                .optional()?;
            if let Some(object) = object {
                found.push((id.clone(), object));
            }
        }
        found.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Up to `limit` stored objects with an id above `after` (from the first when `None`), in
    /// id order: the primary key's order, which is Rust's byte order of the ids.
    pub fn directory_objects_after(
        &self,
        tenant: &str,
        collection: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StateError> {
        let conn = self.lock()?;
        let mut statement = conn.prepare_cached(
            "SELECT id, object FROM directory_objects
             WHERE tenant = ?1 AND collection = ?2 AND (?3 IS NULL OR id > ?3)
             ORDER BY id LIMIT ?4",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![tenant, collection, after, limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A state file holding `rows` (id, object JSON) as tenant `t`'s users, listed at 5 s past
/// the epoch with link `l`.
#[cfg(test)]
pub(crate) fn users_stored(rows: Vec<(String, String)>) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = Store::open(&dir.path().join("state.db")).unwrap_or_else(|e| panic!("{e}"));
    let write = super::directory_cache::CollectionWrite {
        collection: "users".into(),
        link: StoredLink {
            query: "q".into(),
            link: "l".into(),
        },
        replace_all: true,
        upserts: rows,
        removed: Vec::new(),
    };
    store
        .save_directory("t", &[write], super::from_ms(5_000))
        .unwrap_or_else(|e| panic!("{e}"));
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::from_ms;

    fn stored(rows: &[(&str, &str)]) -> (tempfile::TempDir, Store) {
        let rows = rows
            .iter()
            .map(|(id, o)| ((*id).to_owned(), (*o).to_owned()));
        users_stored(rows.collect())
    }

    #[test]
    fn the_head_has_the_link_the_listing_time_and_the_count_only() {
        let (_dir, store) = stored(&[("b", "{}"), ("a", "{}")]);
        let head = store.load_directory_head("t", "users").unwrap();
        assert_eq!(head.count, 2);
        assert_eq!(head.listed_at, Some(from_ms(5_000)));
        assert_eq!(head.link.map(|l| l.link), Some("l".to_owned()));
        let other = store.load_directory_head("t", "applications").unwrap();
        assert_eq!(other, StoredHead::default());
    }

    #[test]
    fn objects_come_by_id_and_in_id_order_a_chunk_at_a_time() {
        let rows = [("c", "{\"n\":3}"), ("a", "{\"n\":1}"), ("b", "{\"n\":2}")];
        let (_dir, store) = stored(&rows);
        let wanted = ["c".to_owned(), "x".to_owned(), "a".to_owned()];
        let found = store.directory_objects_of("t", "users", &wanted).unwrap();
        let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a", "c"], "stored ones only, in id order");
        assert_eq!(found[1].1, "{\"n\":3}");
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let chunk = store
                .directory_objects_after("t", "users", after.as_deref(), 2)
                .unwrap();
            let Some((last, _)) = chunk.last().cloned() else {
                break;
            };
            assert!(chunk.len() <= 2);
            seen.extend(chunk.into_iter().map(|(id, _)| id));
            after = Some(last);
        }
        assert_eq!(seen, ["a", "b", "c"]);
        assert!(store
            .directory_objects_after("other", "users", None, 10)
            .unwrap()
            .is_empty());
    }
}
