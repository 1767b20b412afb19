//! The daemon's directory through delta queries (issue 10): `/users/delta`,
//! `/applications/delta` and `/servicePrincipals/delta` with the listings' `$select`, the
//! objects and the deltaLink kept in the state file ([`crate::state::directory_cache`]), and
//! each section built from the stored objects plus this round's changes, so a rescan of an
//! unchanged directory costs one request per collection. A first round (and every resync)
//! takes the latest deltaLink with `$deltatoken=latest` ([`round`]) and then lists the
//! collection 999 a page, a tenth of the requests of a delta round's pages, parsing and
//! staging each page in the state file as it arrives ([`listing`]). A collection not listed
//! for seven days is listed again.
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
//! in its complete listing are gone; a resync whose token or listing fails stores nothing. A
//! stored deltaLink outside the configured Graph root, or from another query, is never
//! followed: the collection resyncs.

mod listing;
mod round;
mod stored;

use super::directory::{APPLICATION_SELECT, SERVICE_PRINCIPAL_SELECT, USER_SELECT};
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::User;
use crate::state::directory_cache::{CollectionWrite, StoredLink};
use crate::state::directory_reads::StoredHead;
use crate::state::Store;
pub use listing::DirectoryObject;
use listing::{list_in_full, Staging};
use round::{resync_link, sync, Round, Synced};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Mutex;
use stored::{parses_as, StoredObjects, Unusable};

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

    /// The full listing of a resync, below the Graph root: 999 objects a page, where a delta
    /// round pages by Graph's own size and does not support `$top` for users
    /// (delta-query-overview; graph-client.md section 5.2).
    pub(crate) fn listing(self) -> String {
        match self {
            Self::Users => format!("/users?$select={USER_SELECT}&$top=999"),
            Self::Applications => format!("/applications?$select={APPLICATION_SELECT}&$top=999"),
            Self::ServicePrincipals => {
                format!("/servicePrincipals?$select={SERVICE_PRINCIPAL_SELECT}&$top=999")
            }
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
/// Only each collection's link and size are held; its objects are read from the state file
/// as a round needs them ([`stored`]).
pub struct DirectoryCache {
    heads: Mutex<HashMap<DeltaCollection, StoredHead>>,
    /// One state-file read of the collections at a time ([`StoredObjects`]).
    reads: tokio::sync::Semaphore,
    writes: Mutex<Vec<CollectionWrite>>,
    store: Option<(Store, String)>,
}

impl Default for DirectoryCache {
    fn default() -> Self {
        Self {
            heads: Mutex::default(),
            reads: tokio::sync::Semaphore::new(1),
            writes: Mutex::default(),
            store: None,
        }
    }
}

impl DirectoryCache {
    /// A cache over what the state file `store` holds for `tenant` (`heads`), writing each
    /// completed round there at once and staging each page of a listing there, rather than
    /// holding them for [`DirectoryCache::take_writes`]: a listing of 100,000 users is tens
    /// of megabytes of text. A stored round is complete with its deltaLink, so a crash later
    /// in the scan replays nothing and loses nothing (users gone are gone from the stored
    /// objects too). Without a state file ([`Default`]) every collection is listed in full.
    pub fn in_store(
        store: Store,
        tenant: &str,
        heads: impl IntoIterator<Item = (DeltaCollection, StoredHead)>,
    ) -> Self {
        Self {
            heads: Mutex::new(heads.into_iter().collect()),
            reads: tokio::sync::Semaphore::new(1),
            writes: Mutex::new(Vec::new()),
            store: Some((store, tenant.to_owned())),
        }
    }

    /// Stores `write` now. On a failed write the older link and objects stay stored together:
    /// the next scan replays this round.
    async fn store_now(
        &self,
        (store, tenant): &(Store, String),
        write: CollectionWrite,
    ) -> Result<(), GraphError> {
        let (store, name, now) = (store.clone(), tenant.clone(), crate::scan::clock_now());
        let saved = tokio::task::spawn_blocking(move || {
            store.save_directory(&name, std::slice::from_ref(&write), now)
        })
        .await;
        match saved {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                tracing::warn!(tenant = %tenant, error = %err, "Cannot store the directory");
                Ok(())
            }
            Err(join) => Err(GraphError::Malformed(format!("directory write: {join}"))),
        }
    }

    /// The writes of this scan's completed rounds, for the state file.
    pub fn take_writes(&self) -> Vec<CollectionWrite> {
        std::mem::take(&mut *self.writes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every current object of `collection`, parsed, in id order: the stored ones with this
    /// round's changes, or a full listing ([`listing`]).
    pub async fn list<T: DeserializeOwned + DirectoryObject>(
        &self,
        client: &GraphClient,
        collection: DeltaCollection,
    ) -> Result<Vec<T>, GraphError> {
        let head = self
            .heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&collection)
            .unwrap_or_default();
        let expected = head.count;
        let stored = self.store.as_ref().map(|(store, tenant)| {
            StoredObjects::new((store, tenant, &self.reads), collection, parses_as::<T>)
        });
        let now = crate::scan::clock_now();
        let link = match sync(client, collection, (head, stored.as_ref()), now).await? {
            Round::Changes(synced) => {
                match self.apply_round(synced, stored.as_ref(), expected).await? {
                    Ok(items) => return Ok(items),
                    Err(why) => {
                        tracing::warn!(collection = collection.name(), error = %why, "Cannot read the stored directory; resynchronising");
                        resync_link(client, collection).await?
                    }
                }
            }
            Round::Listing(link) => link.link,
        };
        let link = StoredLink {
            query: client.url(&collection.initial()),
            link,
        };
        self.list_all(client, collection, link, expected).await
    }

    /// Lists `collection` in full after the token `link` was taken, staged in the state file
    /// or held for [`DirectoryCache::take_writes`].
    async fn list_all<T: DeserializeOwned + DirectoryObject>(
        &self,
        client: &GraphClient,
        collection: DeltaCollection,
        link: StoredLink,
        expected: usize,
    ) -> Result<Vec<T>, GraphError> {
        let mut staging = match &self.store {
            Some((store, tenant)) => Staging::Store {
                store,
                tenant,
                healthy: true,
            },
            None => Staging::Held(Vec::new()),
        };
        let held_link = link.clone();
        let items = list_in_full(client, (collection, link), &mut staging, expected).await?;
        if let Staging::Held(upserts) = staging {
            self.hold_listing(collection, held_link, upserts);
        }
        Ok(items)
    }

    /// Holds a completed listing for [`DirectoryCache::take_writes`] (no state file to stage
    /// it in): it replaces the stored collection. A stable sort keeps an id listed twice in
    /// listing order, so its last form is written last.
    fn hold_listing(
        &self,
        collection: DeltaCollection,
        link: StoredLink,
        mut upserts: Vec<(String, String)>,
    ) {
        upserts.sort_by(|a, b| a.0.cmp(&b.0));
        let write = CollectionWrite {
            collection: collection.name().to_owned(),
            link,
            replace_all: true,
            upserts,
            removed: Vec::new(),
        };
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(write);
    }

    /// The objects after an incremental round, parsed, and the round stored. Only the changed
    /// objects are held as text (a parsed `Value` costs several times its text); the stored
    /// ones are parsed a chunk at a time ([`StoredObjects::parse_with`]). A round whose changed
    /// objects do not parse fails and stores nothing; stored objects that cannot be read store
    /// nothing either, and the caller lists the collection in full.
    async fn apply_round<T: DeserializeOwned>(
        &self,
        synced: Synced,
        stored: Option<&StoredObjects<'_>>,
        expected: usize,
    ) -> Result<Result<Vec<T>, Unusable>, GraphError> {
        let collection = synced.collection;
        for text in synced.objects.values() {
            serde_json::from_str::<T>(text)
                .map_err(|e| GraphError::Malformed(format!("{}: {e}", collection.name())))?;
        }
        let (Some(stored), Some(store)) = (stored, &self.store) else {
            return Ok(Err(Unusable::no_state_file()));
        };
        let write = round_write(synced);
        let removed = write.removed.iter().cloned().collect();
        let parse = |text: &str| serde_json::from_str::<T>(text).ok();
        let items = stored
            .parse_with((&write.upserts, &removed), expected, parse)
            .await;
        if items.is_ok() {
            self.store_now(store, write).await?;
        }
        Ok(items)
    }
}

/// A round's write: the objects it changed (in id order) and the ids it removed.
fn round_write(synced: Synced) -> CollectionWrite {
    let Synced {
        collection,
        objects,
        changes,
        link,
    } = synced;
    let upserts = objects
        .into_iter()
        .filter(|(id, _)| changes.changed.contains(id))
        .collect();
    CollectionWrite {
        collection: collection.name().to_owned(),
        link,
        replace_all: false,
        upserts,
        removed: changes.removed.into_iter().collect(),
    }
}

/// The pages of the user list: `/users` paged, or the delta-synchronised users in one go.
pub(crate) enum UserPages<'a> {
    /// `/users?$select=...&$top=999`, page by page.
    Listing(Pager<'a>),
    /// The users of the delta cache (a delta round over the stored ones, or a full listing),
    /// in one page; `None` once handed out.
    Delta(Option<(&'a DirectoryCache, &'a GraphClient)>),
}

impl<'a> UserPages<'a> {
    /// The user list of a scan: through `cache` when there is one.
    pub(crate) fn new(client: &'a GraphClient, cache: Option<&'a DirectoryCache>) -> Self {
        match cache {
            Some(cache) => Self::Delta(Some((cache, client))),
            None => {
                let url = client.url(&DeltaCollection::Users.listing());
                Self::Listing(Pager::new(client, url, Pool::Directory))
            }
        }
    }

    /// True once the last page has been handed out.
    pub(crate) fn exhausted(&self) -> bool {
        match self {
            Self::Listing(pager) => pager.is_done(),
            Self::Delta(pending) => pending.is_none(),
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
