//! The full listing of a delta collection (a first round, a resync after a refused round, the
//! weekly listing): `/users?$select=...&$top=999` and the like, after the token of
//! [`super::round`]. Each page is parsed into the snapshot's shapes and staged in the state
//! file as it arrives ([`Store::stage_listing`]); the completed listing replaces the stored
//! collection, with its link, in one transaction ([`Store::finish_listing`]).
//!
//! So the listing is not held as text: at 100,000 users its texts were about 65 MB beside the
//! stored per-user reads, and the weekly listing peaked at 212.9 MiB resident against the
//! 200 MB of issue 10 (BENCHMARKS.md, "2026-12-06, evening"). Only when the state file could
//! not be read at the scan's start are the texts held, for the scan's write.
//!
//! Evidence. A listing that fails or is cut short finishes nothing: the stored objects and link
//! stay, what it staged is cleared, the section fails, and the next scan lists again. An object without an id, or one
//! that does not parse, fails the listing. A page that cannot be staged (a state-file error)
//! is logged and the listing is not stored, but its objects still reach this scan: they came
//! from Graph. `@removed` entries (a listing has none) are skipped.

use super::round::merge;
use super::DeltaCollection;
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::state::directory_cache::StoredLink;
use crate::state::Store;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;

/// A directory object with its Graph id.
pub trait DirectoryObject {
    /// The object id.
    fn object_id(&self) -> &str;
}

impl DirectoryObject for crate::snapshot::User {
    fn object_id(&self) -> &str {
        &self.id
    }
}

impl DirectoryObject for crate::snapshot::Application {
    fn object_id(&self) -> &str {
        &self.id
    }
}

impl DirectoryObject for crate::snapshot::ServicePrincipal {
    fn object_id(&self) -> &str {
        &self.id
    }
}

/// Where a listing's texts go.
pub(super) enum Staging<'a> {
    /// Staged in the state file of `tenant`, page by page.
    Store {
        /// The state file.
        store: &'a Store,
        /// The tenant's name.
        tenant: &'a str,
        /// False once a page could not be staged: the listing is then not stored.
        healthy: bool,
    },
    /// Held for the scan's write (the state file could not be read at the scan's start).
    Held(Vec<(String, String)>),
}

impl Staging<'_> {
    /// Runs `write` on the state file in a blocking task; a failure is logged and marks the
    /// listing as not to be stored.
    async fn on_store(
        &mut self,
        what: &str,
        write: impl FnOnce(&Store, &str) -> Result<(), crate::state::StateError> + Send + 'static,
    ) {
        let Self::Store {
            store,
            tenant,
            healthy,
        } = self
        else {
            return;
        };
        if !*healthy {
            return;
        }
        let (owned, name) = ((*store).clone(), (*tenant).to_owned());
        let done = tokio::task::spawn_blocking(move || write(&owned, &name)).await;
        let error = match done {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err.to_string(),
            Err(join) => join.to_string(),
        };
        tracing::warn!(tenant = %tenant, error = %error, step = what, "Cannot store the directory listing; it is listed again next scan");
        *healthy = false;
    }

    async fn begin(&mut self, collection: DeltaCollection) {
        let name = collection.name();
        self.on_store("begin", move |store, tenant| {
            store.begin_listing(tenant, name)
        })
        .await;
    }

    async fn stage(&mut self, collection: DeltaCollection, rows: Vec<(String, String)>) {
        if let Self::Held(held) = self {
            held.extend(rows);
            return;
        }
        let name = collection.name();
        self.on_store("stage", move |store, tenant| {
            store.stage_listing(tenant, name, &rows)
        })
        .await;
    }

    async fn finish(&mut self, collection: DeltaCollection, link: StoredLink) {
        let (name, now) = (collection.name(), crate::scan::clock_now());
        self.on_store("finish", move |store, tenant| {
            store.finish_listing(tenant, name, &link, now)
        })
        .await;
    }
}

/// Lists `collection` in full after the token `link` was taken: every object parsed, in id
/// order (an id listed twice keeps its last form, as the staged rows do);
/// `expected` is how many objects were stored before, to size the list. A listing that fails
/// clears what it staged (best effort; the next listing clears it anyway).
pub(super) async fn list_in_full<T: DeserializeOwned + DirectoryObject>(
    client: &GraphClient,
    (collection, link): (DeltaCollection, StoredLink),
    staging: &mut Staging<'_>,
    expected: usize,
) -> Result<Vec<T>, GraphError> {
    staging.begin(collection).await;
    match listed(client, collection, staging, expected).await {
        Ok(items) => {
            staging.finish(collection, link).await;
            Ok(items)
        }
        Err(err) => {
            staging.begin(collection).await;
            Err(err)
        }
    }
}

/// Every page of the listing, parsed and staged.
async fn listed<T: DeserializeOwned + DirectoryObject>(
    client: &GraphClient,
    collection: DeltaCollection,
    staging: &mut Staging<'_>,
    expected: usize,
) -> Result<Vec<T>, GraphError> {
    let mut items: Vec<T> = Vec::with_capacity(expected);
    let mut pager = Pager::new(client, client.url(&collection.listing()), Pool::Directory);
    while let Some(page) = pager.next_page().await? {
        grow_for(&mut items, page.len());
        let mut rows = Vec::with_capacity(page.len());
        for object in page {
            if let Some((id, text, item)) = parsed(collection, object)? {
                rows.push((id, text));
                items.push(item);
            }
        }
        staging.stage(collection, rows).await;
    }
    // The list is kept for the whole scan: no more than a sixteenth spare.
    if items.capacity() - items.len() > items.len() / 16 {
        items.shrink_to_fit();
    }
    Ok(last_by_id(items))
}

/// Makes room for `more` items, growing by at least a quarter: a list of 100,000 users (176
/// bytes each) keeps at most a quarter spare, where doubling could leave nearly half.
fn grow_for<T>(items: &mut Vec<T>, more: usize) {
    let free = items.capacity() - items.len();
    if free < more {
        items.reserve_exact(more.max(items.capacity() / 4));
    }
}

/// One listed object: its id, its stored text (nulls dropped, see [`merge`]) and its parsed
/// form; `None` for an `@removed` entry.
fn parsed<T: DeserializeOwned>(
    collection: DeltaCollection,
    object: Value,
) -> Result<Option<(String, String, T)>, GraphError> {
    if object.get("@removed").is_some() {
        return Ok(None);
    }
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::Malformed("listed object without an id".to_owned()))?
        .to_owned();
    let text = merge(None, object).to_string();
    let item = serde_json::from_str::<T>(&text)
        .map_err(|e| GraphError::Malformed(format!("{}: {e}", collection.name())))?;
    Ok(Some((id, text, item)))
}

/// `items` in id order (as an incremental round gives them), each id once in its last listed
/// form. A list already in strictly increasing id order has no repeat and is returned as it
/// is; otherwise the earlier forms of repeated ids are dropped first, so that an in-place
/// sort (without the scratch copy a stable sort of 100,000 users takes, about 13 MB) cannot
/// mix them up.
fn last_by_id<T: DirectoryObject>(mut items: Vec<T>) -> Vec<T> {
    let increasing = items
        .windows(2)
        .all(|pair| matches!(pair, [a, b] if a.object_id() < b.object_id()));
    if increasing {
        return items;
    }
    let keep: Vec<bool> = {
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            last.insert(item.object_id(), index);
        }
        let is_last = |(index, item): (usize, &T)| last.get(item.object_id()) == Some(&index);
        items.iter().enumerate().map(is_last).collect()
    };
    let mut index = 0;
    items.retain(|_| {
        let kept = keep.get(index).copied().unwrap_or(true);
        index += 1;
        kept
    });
    items.sort_unstable_by(|a, b| a.object_id().cmp(b.object_id()));
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::User;
    use serde_json::json;

    fn user(id: &str, enabled: bool) -> User {
        User {
            id: id.into(),
            account_enabled: Some(enabled),
            ..User::default()
        }
    }

    #[test]
    fn the_list_is_in_id_order_and_a_repeated_id_keeps_its_last_form() {
        let items = vec![
            user("b", true),
            user("a", true),
            user("b", false),
            user("c", true),
        ];
        let listed = last_by_id(items);
        let ids: Vec<&str> = listed.iter().map(|u| &*u.id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(listed[1].account_enabled, Some(false));
        let in_order = last_by_id(vec![user("a", true), user("b", true)]);
        assert_eq!(in_order.len(), 2);
        let repeated = vec![user("c", false), user("c", true), user("a", true)];
        let listed = last_by_id(repeated);
        let ids: Vec<&str> = listed.iter().map(|u| &*u.id).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(listed[1].account_enabled, Some(true));
    }

    #[test]
    fn a_listed_object_is_stored_without_nulls_and_parsed() {
        let object = json!({"id": "u1", "mail": null, "accountEnabled": true, "@odata.etag": "x"});
        let (id, text, user) = parsed::<User>(DeltaCollection::Users, object)
            .unwrap()
            .unwrap();
        assert_eq!(
            (id.as_str(), text.as_str()),
            ("u1", r#"{"accountEnabled":true,"id":"u1"}"#)
        );
        assert_eq!((&*user.id, user.account_enabled), ("u1", Some(true)));
        let removed = json!({"id": "u2", "@removed": {"reason": "deleted"}});
        assert!(parsed::<User>(DeltaCollection::Users, removed)
            .unwrap()
            .is_none());
        assert!(parsed::<User>(DeltaCollection::Users, json!({"mail": "x"})).is_err());
        let wrong = json!({"id": "u3", "accountEnabled": "yes"});
        assert!(parsed::<User>(DeltaCollection::Users, wrong).is_err());
    }

    #[test]
    fn the_list_grows_by_at_least_a_quarter() {
        let mut items: Vec<u8> = vec![0; 1000];
        grow_for(&mut items, 10);
        assert!(items.capacity() >= 1250 && items.capacity() < 2000);
        let mut empty: Vec<u8> = Vec::new();
        grow_for(&mut empty, 999);
        assert_eq!(empty.capacity(), 999);
    }
}
