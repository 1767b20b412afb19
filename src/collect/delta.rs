//! The daemon's directory through delta queries (issue 10): `/users/delta`,
//! `/applications/delta` and `/servicePrincipals/delta` with the listings' `$select`, the
//! objects and the deltaLink kept in the state file ([`crate::state::directory_cache`]), and
//! each section built from the stored objects plus this round's changes, so a rescan of an
//! unchanged directory costs one request per collection.
//!
//! Graph's rules (learn.microsoft.com/graph/delta-query-overview, /graph/api/user-delta,
//! /graph/api/application-delta, /graph/api/serviceprincipal-delta): a round follows
//! `@odata.nextLink`s to a page with an `@odata.deltaLink`; later rounds start from that link
//! and return changed objects and removed ones (`@removed`, reason `changed` or `deleted`); the
//! same change may come twice (replays). Tokens expire (seven days for directory objects, then
//! `syncStateNotFound`) and a tenant may be reset (410 Gone): then a full resync is needed.
//!
//! Evidence. Only a completed round changes what is stored; a round that fails or is cut short
//! stores nothing and its section is unavailable (never "complete" from stored objects alone).
//! `@removed` is positive evidence of deletion. A refused incremental round (any 4xx but 429:
//! expired token, 410, a refusal) is followed by a full resync, after which objects not seen
//! are gone. A stored deltaLink outside the configured Graph root, or from another query, is
//! never followed: the collection resyncs.

use super::directory::{APPLICATION_SELECT, SERVICE_PRINCIPAL_SELECT, USER_SELECT};
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::User;
use crate::state::directory_cache::{CollectionWrite, StoredCollection, StoredLink};
use crate::state::Store;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

/// A collection read through delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeltaCollection {
    /// `/users/delta`.
    Users,
    /// `/applications/delta`.
    Applications,
    /// `/servicePrincipals/delta`.
    ServicePrincipals,
}

impl DeltaCollection {
    /// Every delta collection.
    pub const ALL: [Self; 3] = [Self::Users, Self::Applications, Self::ServicePrincipals];

    /// The name in the state file.
    pub fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::Applications => "applications",
            Self::ServicePrincipals => "service_principals",
        }
    }

    /// The initial request of a round, below the Graph root.
    fn initial(self) -> String {
        match self {
            Self::Users => format!("/users/delta?$select={USER_SELECT}"),
            Self::Applications => format!("/applications/delta?$select={APPLICATION_SELECT}"),
            Self::ServicePrincipals => {
                format!("/servicePrincipals/delta?$select={SERVICE_PRINCIPAL_SELECT}")
            }
        }
    }
}

/// One tenant's stored directory during a scan, and the writes of the rounds that completed.
#[derive(Default)]
pub struct DirectoryCache {
    stored: Mutex<HashMap<DeltaCollection, StoredCollection>>,
    writes: Mutex<Vec<CollectionWrite>>,
    store: Option<(Store, String)>,
}

impl DirectoryCache {
    /// A cache over what the state file holds.
    pub fn new(stored: impl IntoIterator<Item = (DeltaCollection, StoredCollection)>) -> Self {
        Self {
            stored: Mutex::new(stored.into_iter().collect()),
            writes: Mutex::new(Vec::new()),
            store: None,
        }
    }

    /// The same cache writing each completed round to `store` (tenant `tenant`) at once, rather
    /// than holding it for [`DirectoryCache::take_writes`]: a first round of 100,000 users is
    /// tens of megabytes of text. A stored round is complete with its deltaLink, so a crash
    /// later in the scan replays nothing and loses nothing (users gone are gone from the
    /// stored objects too).
    pub fn writing_to(mut self, store: Store, tenant: &str) -> Self {
        self.store = Some((store, tenant.to_owned()));
        self
    }

    /// Stores `write` now when the cache has a store; else keeps it for `take_writes`.
    async fn record(&self, write: CollectionWrite) {
        let Some((store, tenant)) = &self.store else {
            self.writes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(write);
            return;
        };
        let (store, name, now) = (store.clone(), tenant.clone(), crate::scan::clock_now());
        let saved =
            tokio::task::spawn_blocking(move || store.save_directory(&name, &[write], now)).await;
        let failure = match saved {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        // The older link and objects stay stored together: the next scan replays this round.
        tracing::warn!(tenant = %tenant, error = %failure, "Cannot store the directory");
    }

    /// The writes of this scan's completed rounds, for the state file.
    pub fn take_writes(&self) -> Vec<CollectionWrite> {
        std::mem::take(&mut *self.writes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every current object of `collection`, parsed: the stored ones with this round's
    /// changes. Objects are held as their JSON text until here (a parsed `Value` costs several
    /// times its text); the texts of changed objects move into the round's write.
    pub async fn list<T: DeserializeOwned>(
        &self,
        client: &GraphClient,
        collection: DeltaCollection,
    ) -> Result<Vec<T>, GraphError> {
        let stored = self
            .stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&collection)
            .unwrap_or_default();
        let synced = sync(client, collection, stored).await?;
        let mut items = Vec::with_capacity(synced.objects.len());
        let mut upserts = Vec::with_capacity(synced.changes.changed.len());
        for (id, text) in synced.objects {
            let item = serde_json::from_str(&text)
                .map_err(|e| GraphError::Malformed(format!("{}: {e}", collection.name())))?;
            items.push(item);
            if synced.changes.changed.contains(&id) {
                upserts.push((id, text));
            }
        }
        let write = CollectionWrite {
            collection: collection.name().to_owned(),
            link: synced.link,
            replace_all: synced.replace_all,
            upserts,
            removed: synced.changes.removed.into_iter().collect(),
        };
        self.record(write).await;
        Ok(items)
    }
}

/// The pages of the user list: `/users` paged, or the delta-synchronised users in one go.
pub(crate) enum UserPages<'a> {
    /// `/users?$select=...&$top=999`, page by page.
    Listing(Pager<'a>),
    /// The users of a delta round merged with the stored ones; `None` once handed out.
    Delta(Option<(&'a DirectoryCache, &'a GraphClient)>),
}

impl<'a> UserPages<'a> {
    /// The user list of a scan: through `cache` when there is one.
    pub(crate) fn new(client: &'a GraphClient, cache: Option<&'a DirectoryCache>) -> Self {
        match cache {
            Some(cache) => Self::Delta(Some((cache, client))),
            None => {
                let url = client.url(&format!("/users?$select={USER_SELECT}&$top=999"));
                Self::Listing(Pager::new(client, url, Pool::Directory))
            }
        }
    }

    /// The next page of users, parsed; `None` after the last.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<User>>, GraphError> {
        match self {
            Self::Listing(pager) => match pager.next_page().await? {
                Some(page) => page
                    .into_iter()
                    .map(|v| {
                        serde_json::from_value(v)
                            .map_err(|e| GraphError::Malformed(format!("user: {e}")))
                    })
                    .collect::<Result<Vec<User>, _>>()
                    .map(Some),
                None => Ok(None),
            },
            Self::Delta(pending) => match pending.take() {
                Some((cache, client)) => cache.list(client, DeltaCollection::Users).await.map(Some),
                None => Ok(None),
            },
        }
    }
}

/// A collection's objects by id, each as its compact JSON text.
type Objects = BTreeMap<String, String>;

/// The ids a round changed and removed (a replay lands on the same sets).
#[derive(Debug, Default)]
struct RoundChanges {
    changed: BTreeSet<String>,
    removed: BTreeSet<String>,
}

/// A collection after a completed round.
struct Synced {
    objects: Objects,
    changes: RoundChanges,
    link: StoredLink,
    replace_all: bool,
}

fn under_root(client: &GraphClient, link: &str) -> bool {
    link.starts_with(&format!("{}/", client.root()))
}

/// A refusal that a fresh round may cure: any 4xx but 429 (throttling is retried, not reset).
fn needs_resync(err: &GraphError) -> bool {
    matches!(err, GraphError::Http { status, .. } if (400..500).contains(status) && *status != 429)
}

/// Follows one round from `start` to its deltaLink, applying each page to `objects` as it
/// arrives (a failed round's `objects` are dropped by the caller); returns what changed and
/// the deltaLink.
async fn round(
    client: &GraphClient,
    start: &str,
    objects: &mut Objects,
) -> Result<(RoundChanges, String), GraphError> {
    let mut pager = Pager::new(client, start.to_owned(), Pool::Directory);
    let mut changes = RoundChanges::default();
    while let Some(page) = pager.next_page().await? {
        for change in page {
            apply(objects, &mut changes, change)?;
        }
    }
    let delta_link = pager
        .delta_link()
        .ok_or_else(|| GraphError::Malformed("delta round ended without a deltaLink".to_owned()))?
        .to_owned();
    if !under_root(client, &delta_link) {
        return Err(GraphError::ForeignLink);
    }
    Ok((changes, delta_link))
}

/// Runs the collection's round: incremental from the stored link, else (or when refused) a
/// full resync.
async fn sync(
    client: &GraphClient,
    collection: DeltaCollection,
    stored: StoredCollection,
) -> Result<Synced, GraphError> {
    let query = client.url(&collection.initial());
    let link = stored
        .link
        .filter(|l| l.query == query && under_root(client, &l.link));
    if let (Some(link), Some(mut objects)) = (link, readable(stored.objects)) {
        match round(client, &link.link, &mut objects).await {
            Ok((changes, link)) => {
                return Ok(Synced {
                    objects,
                    changes,
                    link: StoredLink { query, link },
                    replace_all: false,
                })
            }
            Err(err) if needs_resync(&err) => {
                tracing::info!(collection = collection.name(), error = %err, "Delta round refused; resynchronising");
            }
            Err(err) => return Err(err),
        }
    }
    let mut objects = Objects::new();
    let (changes, link) = round(client, &query, &mut objects).await?;
    Ok(Synced {
        objects,
        changes,
        link: StoredLink { query, link },
        replace_all: true,
    })
}

/// The stored objects by id; `None` when one is not a JSON object (the collection resyncs).
fn readable(rows: Vec<(String, String)>) -> Option<Objects> {
    rows.into_iter()
        .map(|(id, json)| {
            serde_json::from_str::<Map<String, Value>>(&json)
                .ok()
                .map(|_| (id, json))
        })
        .collect()
}

/// Applies one change of a round (a replay or duplicate lands on the same result).
fn apply(
    objects: &mut Objects,
    changes: &mut RoundChanges,
    change: Value,
) -> Result<(), GraphError> {
    let id = change
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::Malformed("delta object without an id".to_owned()))?
        .to_owned();
    if change.get("@removed").is_some() {
        objects.remove(&id);
        changes.changed.remove(&id);
        changes.removed.insert(id);
        return Ok(());
    }
    let stored = objects
        .remove(&id)
        .and_then(|text| serde_json::from_str::<Map<String, Value>>(&text).ok());
    objects.insert(id.clone(), merge(stored, change).to_string());
    changes.removed.remove(&id);
    changes.changed.insert(id);
    Ok(())
}

/// A changed object over its stored form: properties it carries replace the stored ones (a
/// property set to null comes as null); properties it leaves out keep their stored values.
fn merge(stored: Option<Map<String, Value>>, change: Value) -> Value {
    let Value::Object(changes) = change else {
        return change;
    };
    let mut object = stored.unwrap_or_default();
    for (key, value) in changes {
        if !key.starts_with("@odata.") {
            object.insert(key, value);
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply_all(objects: &mut Objects, changes: Vec<Value>) -> Result<RoundChanges, GraphError> {
        let mut round = RoundChanges::default();
        for change in changes {
            apply(objects, &mut round, change)?;
        }
        Ok(round)
    }

    #[test]
    fn changes_apply_in_order_and_replays_are_idempotent() {
        let mut objects = Objects::from([
            (
                "a".to_owned(),
                json!({"id": "a", "mail": "a@x", "accountEnabled": true}).to_string(),
            ),
            ("b".to_owned(), json!({"id": "b"}).to_string()),
        ]);
        let changes = vec![
            json!({"id": "a", "accountEnabled": false}),
            json!({"id": "b", "@removed": {"reason": "deleted"}}),
            json!({"id": "c", "mail": null}),
            json!({"id": "a", "accountEnabled": false}),
            json!({"id": "b", "@removed": {"reason": "changed"}}),
        ];
        let round = apply_all(&mut objects, changes).unwrap();
        let parsed: Vec<Value> = objects
            .values()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        assert_eq!(
            parsed,
            vec![
                json!({"id": "a", "mail": "a@x", "accountEnabled": false}),
                json!({"id": "c", "mail": null}),
            ]
        );
        assert_eq!(round.removed, BTreeSet::from(["b".to_owned()]));
        assert_eq!(
            round.changed,
            BTreeSet::from(["a".to_owned(), "c".to_owned()])
        );
    }

    #[test]
    fn an_object_without_an_id_fails_the_round() {
        let changes = vec![json!({"mail": "x"})];
        assert!(apply_all(&mut Objects::new(), changes).is_err());
    }

    #[test]
    fn only_refusals_resync() {
        let http = |status| GraphError::Http {
            status,
            code: String::new(),
        };
        assert!(needs_resync(&http(400)) && needs_resync(&http(410)) && needs_resync(&http(403)));
        assert!(!needs_resync(&http(429)) && !needs_resync(&http(503)));
        assert!(!needs_resync(&GraphError::Throttled));
        assert!(!needs_resync(&GraphError::Malformed("x".into())));
    }

    #[test]
    fn an_unreadable_stored_row_forces_a_resync() {
        assert!(readable(vec![("a".into(), "{".into())]).is_none());
        assert!(readable(vec![("a".into(), "[]".into())]).is_none());
        assert_eq!(readable(vec![("a".into(), "{}".into())]).unwrap().len(), 1);
    }
}
