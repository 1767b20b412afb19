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

use super::directory::{APPLICATION_SELECT, SERVICE_PRINCIPAL_SELECT, USER_SELECT};
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::User;
use crate::state::directory_cache::{CollectionWrite, StoredCollection, StoredLink};
use crate::state::Store;
pub use listing::DirectoryObject;
use listing::{list_in_full, Staging};
use round::{sync, Round, Synced};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
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

    /// The same cache writing each completed round to `store` (tenant `tenant`) at once, and
    /// staging each page of a listing there, rather than holding them for
    /// [`DirectoryCache::take_writes`]: a listing of 100,000 users is tens of megabytes of
    /// text. A stored round is complete with its deltaLink, so a crash
    /// later in the scan replays nothing and loses nothing (users gone are gone from the
    /// stored objects too).
    pub fn writing_to(mut self, store: Store, tenant: &str) -> Self {
        self.store = Some((store, tenant.to_owned()));
        self
    }

    /// Stores `write` now and hands it back (its texts are parsed next). On a failed write
    /// the older link and objects stay stored together: the next scan replays this round.
    async fn store_now(
        &self,
        (store, tenant): &(Store, String),
        write: CollectionWrite,
    ) -> Result<CollectionWrite, GraphError> {
        let (store, name, now) = (store.clone(), tenant.clone(), crate::scan::clock_now());
        let saved = tokio::task::spawn_blocking(move || {
            let saved = store.save_directory(&name, std::slice::from_ref(&write), now);
            (saved, write)
        })
        .await;
        match saved {
            Ok((Ok(()), write)) => Ok(write),
            Ok((Err(err), write)) => {
                tracing::warn!(tenant = %tenant, error = %err, "Cannot store the directory");
                Ok(write)
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
        let stored = self
            .stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&collection)
            .unwrap_or_default();
        let expected = stored.objects.len();
        match sync(client, collection, stored, crate::scan::clock_now()).await? {
            Round::Changes(synced) => self.apply_round(collection, synced).await,
            Round::Listing(link) => {
                let mut staging = match &self.store {
                    Some((store, tenant)) => Staging::Store {
                        store,
                        tenant,
                        healthy: true,
                    },
                    None => Staging::Held(Vec::new()),
                };
                let held_link = link.clone();
                let items =
                    list_in_full(client, (collection, link), &mut staging, expected).await?;
                if let Staging::Held(upserts) = staging {
                    self.hold_listing(collection, held_link, upserts);
                }
                Ok(items)
            }
        }
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

    /// The objects after an incremental round, parsed. Objects are held as their JSON text
    /// until here (a parsed `Value` costs several times its text); the texts of changed objects
    /// move into the round's write.
    async fn apply_round<T: DeserializeOwned>(
        &self,
        collection: DeltaCollection,
        synced: Synced,
    ) -> Result<Vec<T>, GraphError> {
        let parse = |text: &str| {
            serde_json::from_str::<T>(text)
                .map_err(|e| GraphError::Malformed(format!("{}: {e}", collection.name())))
        };
        // A round whose objects do not parse stores nothing: each is checked first, one at a
        // time, so that the texts and the parsed objects are never all held at once.
        for text in synced.objects.values() {
            parse(text)?;
        }
        let (unchanged, write) = round_write(collection, synced);
        let Some(store) = &self.store else {
            let items = parse_in_id_order(borrowed(&unchanged), borrowed(&write.upserts), parse);
            self.writes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(write);
            return items;
        };
        let write = self.store_now(store, write).await?;
        parse_in_id_order(unchanged, write.upserts, parse)
    }
}

/// The objects the round left unchanged, and its write (the changed ones move into it).
fn round_write(
    collection: DeltaCollection,
    synced: Synced,
) -> (Vec<(String, String)>, CollectionWrite) {
    let Synced {
        objects,
        changes,
        link,
    } = synced;
    let mut unchanged = Vec::new();
    let mut upserts = Vec::with_capacity(changes.changed.len());
    for (id, text) in objects {
        if changes.changed.contains(&id) {
            upserts.push((id, text));
        } else {
            unchanged.push((id, text));
        }
    }
    let write = CollectionWrite {
        collection: collection.name().to_owned(),
        link,
        replace_all: false,
        upserts,
        removed: changes.removed.into_iter().collect(),
    };
    (unchanged, write)
}

/// `(id, text)` rows as borrowed text.
fn borrowed(rows: &[(String, String)]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|(id, text)| (id.as_str(), text.as_str()))
        .collect()
}

/// Parses two lists of `(id, text)` sorted by id into one list in id order. Owned texts are
/// freed as they are parsed.
fn parse_in_id_order<T, S: AsRef<str>>(
    left: impl IntoIterator<Item = (S, S)>,
    right: impl IntoIterator<Item = (S, S)>,
    parse: impl Fn(&str) -> Result<T, GraphError>,
) -> Result<Vec<T>, GraphError> {
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    let mut items = Vec::with_capacity(left.size_hint().0 + right.size_hint().0);
    loop {
        let next = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) if l.0.as_ref() <= r.0.as_ref() => left.next(),
            (Some(_), Some(_)) | (None, Some(_)) => right.next(),
            (Some(_), None) => left.next(),
            (None, None) => return Ok(items),
        };
        if let Some((_, text)) = next {
            items.push(parse(text.as_ref())?);
        }
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
