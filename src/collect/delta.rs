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
use crate::state::directory_cache::{CollectionWrite, StoredCollection, StoredLink};
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
#[derive(Debug, Default)]
pub struct DirectoryCache {
    stored: Mutex<HashMap<DeltaCollection, StoredCollection>>,
    writes: Mutex<Vec<CollectionWrite>>,
}

impl DirectoryCache {
    /// A cache over what the state file holds.
    pub fn new(stored: impl IntoIterator<Item = (DeltaCollection, StoredCollection)>) -> Self {
        Self {
            stored: Mutex::new(stored.into_iter().collect()),
            writes: Mutex::new(Vec::new()),
        }
    }

    /// The writes of this scan's completed rounds, for the state file.
    pub fn take_writes(&self) -> Vec<CollectionWrite> {
        std::mem::take(&mut *self.writes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every current object of `collection`: the stored ones with this round's changes.
    pub async fn objects(
        &self,
        client: &GraphClient,
        collection: DeltaCollection,
    ) -> Result<Vec<Value>, GraphError> {
        let stored = self
            .stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&collection)
            .unwrap_or_default();
        let (objects, write) = sync(client, collection, stored).await?;
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(write);
        Ok(objects)
    }

    /// Every current object of `collection`, parsed.
    pub async fn list<T: DeserializeOwned>(
        &self,
        client: &GraphClient,
        collection: DeltaCollection,
    ) -> Result<Vec<T>, GraphError> {
        self.objects(client, collection)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(|e| GraphError::Malformed(e.to_string())))
            .collect()
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

    /// The next page of users; `None` after the last.
    pub(crate) async fn next_page(&mut self) -> Result<Option<Vec<Value>>, GraphError> {
        match self {
            Self::Listing(pager) => pager.next_page().await,
            Self::Delta(pending) => match pending.take() {
                Some((cache, client)) => cache
                    .objects(client, DeltaCollection::Users)
                    .await
                    .map(Some),
                None => Ok(None),
            },
        }
    }
}

/// The changes of one completed round and where the next one starts.
struct Round {
    changes: Vec<Value>,
    delta_link: String,
}

fn under_root(client: &GraphClient, link: &str) -> bool {
    link.starts_with(&format!("{}/", client.root()))
}

/// A refusal that a fresh round may cure: any 4xx but 429 (throttling is retried, not reset).
fn needs_resync(err: &GraphError) -> bool {
    matches!(err, GraphError::Http { status, .. } if (400..500).contains(status) && *status != 429)
}

/// Follows one round from `start` to its deltaLink.
async fn round(client: &GraphClient, start: &str) -> Result<Round, GraphError> {
    let mut pager = Pager::new(client, start.to_owned(), Pool::Directory);
    let mut changes = Vec::new();
    while let Some(page) = pager.next_page().await? {
        changes.extend(page);
    }
    let delta_link = pager
        .delta_link()
        .ok_or_else(|| GraphError::Malformed("delta round ended without a deltaLink".to_owned()))?
        .to_owned();
    if !under_root(client, &delta_link) {
        return Err(GraphError::ForeignLink);
    }
    Ok(Round {
        changes,
        delta_link,
    })
}

/// Runs the collection's round: incremental from the stored link, else (or when refused) a
/// full resync.
async fn sync(
    client: &GraphClient,
    collection: DeltaCollection,
    stored: StoredCollection,
) -> Result<(Vec<Value>, CollectionWrite), GraphError> {
    let query = client.url(&collection.initial());
    let objects = parse_stored(stored.objects);
    let link = stored
        .link
        .filter(|l| l.query == query && under_root(client, &l.link));
    if let (Some(link), Some(objects)) = (link, objects) {
        match round(client, &link.link).await {
            Ok(round) => return apply(collection, objects, round, (query, false)),
            Err(err) if needs_resync(&err) => {
                tracing::info!(collection = collection.name(), error = %err, "Delta round refused; resynchronising");
            }
            Err(err) => return Err(err),
        }
    }
    let round = round(client, &query).await?;
    apply(collection, BTreeMap::new(), round, (query, true))
}

/// The stored objects by id; `None` when one cannot be read (the collection resyncs).
fn parse_stored(rows: Vec<(String, String)>) -> Option<BTreeMap<String, Value>> {
    rows.into_iter()
        .map(|(id, json)| serde_json::from_str(&json).ok().map(|v| (id, v)))
        .collect()
}

/// Applies a round's changes in order (a replay or duplicate lands on the same result).
fn apply(
    collection: DeltaCollection,
    mut objects: BTreeMap<String, Value>,
    round: Round,
    (query, replace_all): (String, bool),
) -> Result<(Vec<Value>, CollectionWrite), GraphError> {
    let mut changed = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for change in round.changes {
        let id = change
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| GraphError::Malformed("delta object without an id".to_owned()))?
            .to_owned();
        if change.get("@removed").is_some() {
            objects.remove(&id);
            changed.remove(&id);
            removed.insert(id);
            continue;
        }
        let merged = merge(objects.remove(&id), change);
        objects.insert(id.clone(), merged);
        removed.remove(&id);
        changed.insert(id);
    }
    let upserts = changed
        .iter()
        .filter_map(|id| Some((id.clone(), objects.get(id)?.to_string())))
        .collect();
    let write = CollectionWrite {
        collection: collection.name().to_owned(),
        link: StoredLink {
            query,
            link: round.delta_link,
        },
        replace_all,
        upserts,
        removed: removed.into_iter().collect(),
    };
    Ok((objects.into_values().collect(), write))
}

/// A changed object over its stored form: properties it carries replace the stored ones (a
/// property set to null comes as null); properties it leaves out keep their stored values.
fn merge(stored: Option<Value>, change: Value) -> Value {
    let Value::Object(changes) = change else {
        return change;
    };
    let mut object = match stored {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
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

    fn round(changes: Vec<Value>) -> Round {
        Round {
            changes,
            delta_link: "link".into(),
        }
    }

    #[test]
    fn changes_apply_in_order_and_replays_are_idempotent() {
        let stored = BTreeMap::from([
            (
                "a".to_owned(),
                json!({"id": "a", "mail": "a@x", "accountEnabled": true}),
            ),
            ("b".to_owned(), json!({"id": "b"})),
        ]);
        let changes = vec![
            json!({"id": "a", "accountEnabled": false}),
            json!({"id": "b", "@removed": {"reason": "deleted"}}),
            json!({"id": "c", "mail": null}),
            json!({"id": "a", "accountEnabled": false}),
            json!({"id": "b", "@removed": {"reason": "changed"}}),
        ];
        let (objects, write) = apply(
            DeltaCollection::Users,
            stored,
            round(changes),
            ("q".into(), false),
        )
        .unwrap();
        assert_eq!(
            objects,
            vec![
                json!({"id": "a", "mail": "a@x", "accountEnabled": false}),
                json!({"id": "c", "mail": null}),
            ]
        );
        assert_eq!(write.removed, vec!["b".to_owned()]);
        assert_eq!(write.upserts.len(), 2);
        assert!(!write.replace_all);
    }

    #[test]
    fn an_object_without_an_id_fails_the_round() {
        let changes = vec![json!({"mail": "x"})];
        assert!(apply(
            DeltaCollection::Users,
            BTreeMap::new(),
            round(changes),
            ("q".into(), true)
        )
        .is_err());
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
        assert!(parse_stored(vec![("a".into(), "{".into())]).is_none());
        assert_eq!(
            parse_stored(vec![("a".into(), "{}".into())]).unwrap().len(),
            1
        );
    }
}
