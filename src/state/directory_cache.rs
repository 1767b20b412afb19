//! The daemon's directory cache in the state file (tables `directory_objects` and
//! `delta_links`): for each tenant and collection (`users`, `applications`,
//! `service_principals`) the objects as the last completed delta round left them (id and the
//! selected JSON), the query that round started from and its deltaLink.
//!
//! Only a completed round is written, in one transaction: its changes (or, for a full resync,
//! the whole collection) and its deltaLink together, so the stored objects always match the
//! stored link. A crash before the write replays the round from the older link; replays are
//! idempotent.
//!
//! A full listing is staged page by page in `directory_listing` ([`Store::stage_listing`]) and
//! replaces the collection's objects, with its link, in one transaction when it completes
//! ([`Store::finish_listing`]). A listing that fails or is cut short leaves its staged rows,
//! which the next listing of that collection clears first ([`Store::begin_listing`]); the
//! stored objects and link stay as they were.

use super::{from_ms, to_ms, StateError, Store};
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

/// A collection as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredCollection {
    /// The initial query of the stored round and its deltaLink.
    pub link: Option<StoredLink>,
    /// `(id, object JSON)` of every stored object.
    pub objects: Vec<(String, String)>,
    /// When the collection was last listed in full (a resync); `None` if never.
    pub listed_at: Option<DateTime<Utc>>,
}

/// Where the next delta round of a collection starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLink {
    /// The initial request the rounds descend from (its `$select`).
    pub query: String,
    /// The deltaLink of the last completed round.
    pub link: String,
}

/// What one completed delta round changes in a stored collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionWrite {
    /// `users`, `applications` or `service_principals`.
    pub collection: String,
    /// The round's initial query and deltaLink.
    pub link: StoredLink,
    /// A full resync: every stored object not in `upserts` is gone.
    pub replace_all: bool,
    /// `(id, object JSON)` of objects new or changed.
    pub upserts: Vec<(String, String)>,
    /// Ids of removed objects.
    pub removed: Vec<String>,
}

impl Store {
    /// The stored objects and deltaLink of one collection of a tenant.
    pub fn load_directory(
        &self,
        tenant: &str,
        collection: &str,
    ) -> Result<StoredCollection, StateError> {
        let conn = self.lock()?;
        let (link, listed_at) = stored_link(&conn, tenant, collection)?;
        let mut statement = conn.prepare(
            "SELECT id, object FROM directory_objects WHERE tenant = ?1 AND collection = ?2",
        )?;
        let objects = statement
            .query_map(params![tenant, collection], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(StoredCollection {
            link,
            objects,
            listed_at,
        })
    }

    /// Applies completed rounds, each with its deltaLink, in one transaction.
    pub fn save_directory(
        &self,
        tenant: &str,
        writes: &[CollectionWrite],
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        for write in writes {
            let collection = write.collection.as_str();
            if write.replace_all {
                tx.execute(
                    "DELETE FROM directory_objects WHERE tenant = ?1 AND collection = ?2",
                    params![tenant, collection],
                )?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO directory_objects (tenant, collection, id, object)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant, collection, id) DO UPDATE SET object = excluded.object",
            )?;
            for (id, object) in &write.upserts {
                upsert.execute(params![tenant, collection, id, object])?;
            }
            let mut delete = tx.prepare_cached(
                "DELETE FROM directory_objects WHERE tenant = ?1 AND collection = ?2 AND id = ?3",
            )?;
            for id in &write.removed {
                delete.execute(params![tenant, collection, id])?;
            }
            upsert_link(
                &tx,
                (tenant, collection),
                &write.link,
                now,
                write.replace_all,
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Starts a full listing of a collection: clears what an earlier, unfinished one staged.
    pub fn begin_listing(&self, tenant: &str, collection: &str) -> Result<(), StateError> {
        self.lock()?.execute(
            "DELETE FROM directory_listing WHERE tenant = ?1 AND collection = ?2",
            params![tenant, collection],
        )?;
        Ok(())
    }

    /// Stages one page of a full listing: `(id, object JSON)`; an id staged again is replaced.
    pub fn stage_listing(
        &self,
        tenant: &str,
        collection: &str,
        objects: &[(String, String)],
    ) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO directory_listing (tenant, collection, id, object)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (id, object) in objects {
                insert.execute(params![tenant, collection, id, object])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Completes a full listing: its staged objects replace the collection's, with `link`
    /// (the token taken before the listing) and the listing time `now`, in one transaction.
    pub fn finish_listing(
        &self,
        tenant: &str,
        collection: &str,
        link: &StoredLink,
        now: DateTime<Utc>,
    ) -> Result<(), StateError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let key = params![tenant, collection];
        tx.execute(
            "DELETE FROM directory_objects WHERE tenant = ?1 AND collection = ?2",
            key,
        )?;
        tx.execute(
            "INSERT INTO directory_objects (tenant, collection, id, object)
             SELECT tenant, collection, id, object FROM directory_listing
             WHERE tenant = ?1 AND collection = ?2",
            key,
        )?;
        tx.execute(
            "DELETE FROM directory_listing WHERE tenant = ?1 AND collection = ?2",
            key,
        )?;
        upsert_link(&tx, (tenant, collection), link, now, true)?;
        tx.commit()?;
        Ok(())
    }
}

/// The stored link of a collection and when it was last listed in full.
pub(super) fn stored_link(
    conn: &rusqlite::Connection,
    tenant: &str,
    collection: &str,
) -> Result<(Option<StoredLink>, Option<DateTime<Utc>>), StateError> {
    let stored = conn
        .query_row(
            "SELECT query, link, listed_ms FROM delta_links
             WHERE tenant = ?1 AND collection = ?2",
            params![tenant, collection],
            |row| {
                let link = StoredLink {
                    query: row.get(0)?,
                    link: row.get(1)?,
                };
                Ok((link, row.get::<_, Option<i64>>(2)?))
            },
        )
        .optional()?;
    Ok(match stored {
        Some((link, listed_ms)) => (Some(link), listed_ms.map(from_ms)),
        None => (None, None),
    })
}

/// Stores a collection's link, synchronised at `now`; `listed` also makes `now` its listing
/// time (a full listing), else the stored listing time stays.
fn upsert_link(
    tx: &rusqlite::Transaction<'_>,
    (tenant, collection): (&str, &str),
    link: &StoredLink,
    now: DateTime<Utc>,
    listed: bool,
) -> Result<(), StateError> {
    tx.execute(
        "INSERT INTO delta_links (tenant, collection, query, link, synced_ms, listed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant, collection) DO UPDATE SET query = excluded.query,
           link = excluded.link, synced_ms = excluded.synced_ms,
           listed_ms = COALESCE(excluded.listed_ms, delta_links.listed_ms)",
        params![
            tenant,
            collection,
            link.query,
            link.link,
            to_ms(now),
            listed.then(|| to_ms(now)),
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(replace_all: bool, upserts: &[(&str, &str)], removed: &[&str]) -> CollectionWrite {
        CollectionWrite {
            collection: "users".into(),
            link: StoredLink {
                query: "q".into(),
                link: format!("link-{}", upserts.len()),
            },
            replace_all,
            upserts: upserts
                .iter()
                .map(|(id, o)| ((*id).to_owned(), (*o).to_owned()))
                .collect(),
            removed: removed.iter().map(|id| (*id).to_owned()).collect(),
        }
    }

    #[test]
    fn rounds_apply_with_their_link_and_a_resync_replaces_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let now = super::super::from_ms(1_700_000_000_000);
        let first = write(true, &[("a", "{}"), ("b", "{}")], &[]);
        store.save_directory("t", &[first], now).unwrap();
        let changes = write(false, &[("a", r#"{"x":1}"#)], &["b", "never-stored"]);
        store
            .save_directory("t", std::slice::from_ref(&changes), now)
            .unwrap();
        let stored = store.load_directory("t", "users").unwrap();
        assert_eq!(stored.objects, vec![("a".into(), r#"{"x":1}"#.into())]);
        assert_eq!(stored.link, Some(changes.link));
        let resync = write(true, &[("c", "{}")], &[]);
        store.save_directory("t", &[resync], now).unwrap();
        let stored = store.load_directory("t", "users").unwrap();
        assert_eq!(stored.objects, vec![("c".into(), "{}".into())]);
        assert_eq!(
            store.load_directory("other", "users").unwrap(),
            StoredCollection::default()
        );
    }

    #[test]
    fn the_listing_time_is_a_resyncs_and_outlives_incremental_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let at = |ms| super::super::from_ms(ms);
        let listed_at = |store: &Store| store.load_directory("t", "users").unwrap().listed_at;
        store
            .save_directory("t", &[write(false, &[("a", "{}")], &[])], at(1_000))
            .unwrap();
        assert_eq!(
            listed_at(&store),
            None,
            "an incremental round lists nothing"
        );
        store
            .save_directory("t", &[write(true, &[("a", "{}")], &[])], at(2_000))
            .unwrap();
        store
            .save_directory("t", &[write(false, &[], &["a"])], at(3_000))
            .unwrap();
        assert_eq!(listed_at(&store), Some(at(2_000)));
    }

    #[test]
    fn a_listing_replaces_the_collection_only_when_it_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let at = |ms| super::super::from_ms(ms);
        let old = write(true, &[("a", "{}"), ("b", "{}")], &[]);
        store
            .save_directory("t", std::slice::from_ref(&old), at(1_000))
            .unwrap();
        let page = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
            rows.iter()
                .map(|(id, o)| ((*id).to_owned(), (*o).to_owned()))
                .collect()
        };
        // An unfinished listing changes nothing that is read.
        store.begin_listing("t", "users").unwrap();
        store
            .stage_listing("t", "users", &page(&[("x", "{}")]))
            .unwrap();
        let stored = store.load_directory("t", "users").unwrap();
        assert_eq!(stored.objects.len(), 2);
        assert_eq!(
            (stored.link, stored.listed_at),
            (Some(old.link), Some(at(1_000)))
        );
        // The next listing starts clean: "x" was staged by the unfinished one.
        store.begin_listing("t", "users").unwrap();
        store
            .stage_listing("t", "users", &page(&[("c", "{}"), ("b", "{\"v\":1}")]))
            .unwrap();
        store
            .stage_listing("t", "users", &page(&[("b", "{\"v\":2}")]))
            .unwrap();
        store
            .stage_listing("other", "users", &page(&[("z", "{}")]))
            .unwrap();
        let link = StoredLink {
            query: "q".into(),
            link: "latest".into(),
        };
        store
            .finish_listing("t", "users", &link, at(2_000))
            .unwrap();
        let stored = store.load_directory("t", "users").unwrap();
        let mut objects = stored.objects.clone();
        objects.sort();
        assert_eq!(
            objects,
            vec![("b".into(), "{\"v\":2}".into()), ("c".into(), "{}".into())]
        );
        assert_eq!(
            (stored.link, stored.listed_at),
            (Some(link), Some(at(2_000)))
        );
        assert!(store
            .load_directory("other", "users")
            .unwrap()
            .objects
            .is_empty());
        let staged: i64 = store
            .lock()
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM directory_listing WHERE tenant = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(staged, 0, "a finished listing leaves nothing staged");
    }
}
