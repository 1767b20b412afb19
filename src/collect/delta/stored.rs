//! A collection's stored objects as an incremental round reads them from the state file
//! ([`crate::state::directory_reads`]): the stored form of each object a page of changes
//! touches, and after the round every object in id order, a chunk at a time, parsed with the
//! round's changes in place. The texts are never all held (issue 10: they were 56 MB of the
//! 141.7 MB heap peak at 100,000 users).
//!
//! Evidence. A stored object that is not a JSON object, or does not parse as the snapshot's
//! shape, or a state file that cannot be read, makes the stored collection [`Unusable`]: the
//! round stores nothing and the collection is listed in full in the same scan. It is never
//! skipped, which would drop a user from a listing that is taken as complete.

use super::DeltaCollection;
use crate::state::{StateError, Store};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Stored objects read a chunk at a time: about 1 MB of text at 100,000 users.
const CHUNK: usize = 1_000;

/// Why the stored collection cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unusable(String);

impl Unusable {
    /// No state file holds the collection.
    pub(super) fn no_state_file() -> Self {
        Self("no state file".to_owned())
    }
}

/// One stored collection of a tenant.
pub(super) struct StoredObjects<'a> {
    store: &'a Store,
    /// One state-file read of the scan's collections at a time: they share one connection,
    /// so more would only park blocking threads on its lock (each thread costs the daemon
    /// 2 to 3 MiB resident; the chaos soak saw 5 to 9 of them).
    gate: &'a tokio::sync::Semaphore,
    tenant: &'a str,
    collection: DeltaCollection,
    /// True when a stored text parses as the snapshot's shape of the collection.
    parses: fn(&str) -> bool,
}

/// True when `text` parses as a `T`.
pub(super) fn parses_as<T: DeserializeOwned>(text: &str) -> bool {
    serde_json::from_str::<T>(text).is_ok()
}

impl<'a> StoredObjects<'a> {
    /// `collection` of `tenant` in `store`, whose objects are read by `parses`
    /// ([`parses_as`]).
    pub(super) fn new(
        (store, tenant, gate): (&'a Store, &'a str, &'a tokio::sync::Semaphore),
        collection: DeltaCollection,
        parses: fn(&str) -> bool,
    ) -> Self {
        Self {
            store,
            gate,
            tenant,
            collection,
            parses,
        }
    }

    /// Runs `read` on the state file in a blocking task.
    async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Store, &str, &str) -> Result<R, StateError> + Send + 'static,
    ) -> Result<R, Unusable> {
        let _turn = self
            .gate
            .acquire()
            .await
            .map_err(|e| Unusable(e.to_string()))?;
        let (store, tenant) = (self.store.clone(), self.tenant.to_owned());
        let name = self.collection.name();
        match tokio::task::spawn_blocking(move || read(&store, &tenant, name)).await {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(err)) => Err(Unusable(err.to_string())),
            Err(join) => Err(Unusable(join.to_string())),
        }
    }

    /// The stored texts of those of `ids` that are stored, each a JSON object of the
    /// collection's shape: a damaged one makes the collection unusable (it is listed again),
    /// rather than fail every round that changes it until the weekly listing.
    pub(super) async fn of(&self, ids: Vec<String>) -> Result<Vec<(String, String)>, Unusable> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .read(move |store, tenant, name| store.directory_objects_of(tenant, name, &ids))
            .await?;
        for (id, text) in &rows {
            let object = serde_json::from_str::<Map<String, Value>>(text).is_ok();
            if !object || !(self.parses)(text) {
                return Err(self.unreadable(id));
            }
        }
        Ok(rows)
    }

    fn unreadable(&self, id: &str) -> Unusable {
        let name = self.collection.name();
        Unusable(format!("stored {name} object {id} does not parse"))
    }

    /// Every object after a round, parsed, in id order: the stored ones with `upserts` (the
    /// round's changed objects, in id order) in place of theirs and without `removed`.
    pub(super) async fn parse_with<T>(
        &self,
        (upserts, removed): (&[(String, String)], &BTreeSet<String>),
        capacity: usize,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, Unusable> {
        let mut items = Vec::with_capacity(capacity + upserts.len());
        let mut changed = upserts.iter().peekable();
        let mut after: Option<String> = None;
        loop {
            let chunk = self
                .read(move |store, tenant, name| {
                    store.directory_objects_after(tenant, name, after.as_deref(), CHUNK)
                })
                .await?;
            let Some(last) = chunk.last().map(|(id, _)| id.clone()) else {
                break;
            };
            let last_chunk = chunk.len() < CHUNK;
            for (id, text) in chunk {
                while let Some((c, change)) = changed.next_if(|(c, _)| c.as_str() < id.as_str()) {
                    items.push(parse(change).ok_or_else(|| self.unreadable(c))?);
                }
                let replaced = upserts.binary_search_by(|(c, _)| c.cmp(&id)).is_ok();
                if !replaced && !removed.contains(&id) {
                    items.push(parse(&text).ok_or_else(|| self.unreadable(&id))?);
                }
            }
            if last_chunk {
                break;
            }
            after = Some(last);
        }
        for (id, change) in changed {
            items.push(parse(change).ok_or_else(|| self.unreadable(id))?);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::directory_reads::users_stored;
    use std::collections::BTreeMap;

    fn object(id: &str, version: u32) -> String {
        serde_json::json!({"id": id, "v": version}).to_string()
    }

    fn parsed(text: &str) -> Option<(String, u64)> {
        let value: Value = serde_json::from_str(text).ok()?;
        Some((value["id"].as_str()?.to_owned(), value["v"].as_u64()?))
    }

    /// 2,500 stored objects (three chunks); changes before the first, on a chunk's last id,
    /// between ids and after the last; removals.
    #[tokio::test]
    async fn a_round_parses_every_object_once_in_id_order_across_chunks() {
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        let mut rows = Vec::new();
        for n in 0..2_500 {
            let id = format!("u{n:05}");
            rows.push((id.clone(), object(&id, 1)));
            expected.insert(id, 1);
        }
        let (_dir, store) = users_stored(rows);
        let gate = tokio::sync::Semaphore::new(1);
        let mut upserts = Vec::new();
        for id in ["a", "u00999", "u00999x", "u01000", "u01500x", "z"] {
            upserts.push((id.to_owned(), object(id, 2)));
            expected.insert(id.to_owned(), 2);
        }
        let removed: BTreeSet<String> = ["u00000", "u01001", "u02499", "never"]
            .map(str::to_owned)
            .into();
        for id in &removed {
            expected.remove(id);
        }
        let objects = StoredObjects::new((&store, "t", &gate), DeltaCollection::Users, |t| {
            parsed(t).is_some()
        });
        let items = objects
            .parse_with((&upserts, &removed), 2_500, parsed)
            .await
            .unwrap();
        let wanted: Vec<(String, u64)> = expected.into_iter().collect();
        assert_eq!(items, wanted);

        let of = objects
            .of(vec!["u00002".into(), "nope".into()])
            .await
            .unwrap();
        assert_eq!(of, vec![("u00002".to_owned(), object("u00002", 1))]);
    }

    #[tokio::test]
    async fn an_object_that_does_not_parse_makes_the_stored_collection_unusable() {
        let (_dir, store) = users_stored(vec![
            ("a".into(), object("a", 1)),
            ("b".into(), "{".into()),
            ("c".into(), "[]".into()),
            ("d".into(), r#"{"id":"d"}"#.into()),
        ]);
        let gate = tokio::sync::Semaphore::new(1);
        let objects = StoredObjects::new((&store, "t", &gate), DeltaCollection::Users, |t| {
            parsed(t).is_some()
        });
        let none = BTreeSet::new();
        let parse = objects.parse_with((&[], &none), 3, parsed).await;
        assert!(parse.unwrap_err().to_string().contains("object b"));
        assert!(objects.of(vec!["c".into()]).await.is_err(), "not an object");
        assert!(objects.of(vec!["b".into()]).await.is_err(), "not JSON");
        assert!(objects.of(vec!["d".into()]).await.is_err(), "not the shape");
        // Removed or replaced, an unreadable object is not read.
        let removed = BTreeSet::from(["b".to_owned(), "d".to_owned()]);
        let replaced = [("c".to_owned(), object("c", 2))];
        let items = objects
            .parse_with((&replaced, &removed), 3, parsed)
            .await
            .unwrap();
        assert_eq!(items, vec![("a".to_owned(), 1), ("c".to_owned(), 2)]);
    }
}
