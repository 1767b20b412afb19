//! One delta round of a collection against Graph: following nextLinks to the deltaLink,
//! applying each page's changes (`@removed` included) to the objects as JSON text, or, when
//! there is no usable link or an incremental round is refused, the token of a full resync
//! (learn.microsoft.com/graph/delta-query-overview); the listing that follows the token is
//! [`super::listing`]'s.
//!
//! A full resync is "sync from now" and a listing: Microsoft documents that directory
//! resources "support 'sync from now' scenarios ... Append `$deltaToken=latest` to the `delta`
//! function and the response will contain a `@odata.deltaLink` and no resource data"
//! (delta-query-overview, the note under "Use delta query to track changes in a resource
//! collection"). The token is taken first, then the collection is listed with `$top=999`
//! (user-list, application-list, serviceprincipal-list), where a delta round pages by Graph's
//! own size and does not support `$top` for users (delta-query-overview, "Optional query
//! parameters"). What changes while the listing pages is after the token, so the next round
//! returns it again; applying a change twice lands on the same object.

use super::stored::{StoredObjects, Unusable};
use super::DeltaCollection;
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::state::directory_cache::StoredLink;
use crate::state::directory_reads::StoredHead;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Objects by id, each as its compact JSON text: in a round, the ones it touched (their stored
/// form read first, then its changes applied); the rest stay in the state file.
pub(super) type Objects = BTreeMap<String, String>;

/// The ids a round changed and removed (a replay lands on the same sets).
#[derive(Debug, Default)]
pub(super) struct RoundChanges {
    pub(super) changed: BTreeSet<String>,
    pub(super) removed: BTreeSet<String>,
}

/// A collection after a completed incremental round: the objects it changed, in full.
pub(super) struct Synced {
    pub(super) collection: DeltaCollection,
    pub(super) objects: Objects,
    pub(super) changes: RoundChanges,
    pub(super) link: StoredLink,
}

/// What [`sync`] did.
pub(super) enum Round {
    /// An incremental round completed.
    Changes(Synced),
    /// A full listing is due; the link holds the token taken before it ("sync from now").
    Listing(StoredLink),
}

fn under_root(client: &GraphClient, link: &str) -> bool {
    link.starts_with(&format!("{}/", client.root()))
}

/// A refusal that a fresh round may cure: any 4xx but 429 (throttling is retried, not reset).
fn needs_resync(err: &GraphError) -> bool {
    matches!(err, GraphError::Http { status, .. } if (400..500).contains(status) && *status != 429)
}

/// Why a round did not complete.
enum Failed {
    /// Graph's answer.
    Graph(GraphError),
    /// The stored objects it starts from cannot be used.
    Stored(Unusable),
}

/// Follows one round from `start` to its deltaLink, applying each page to `objects` as it
/// arrives (a failed round's `objects` are dropped by the caller); the stored form of each
/// object a page touches first is read from `stored` before the page applies. Returns what
/// changed and the deltaLink.
async fn round(
    client: &GraphClient,
    start: &str,
    objects: &mut Objects,
    stored: Option<&StoredObjects<'_>>,
) -> Result<(RoundChanges, String), Failed> {
    let mut pager = Pager::new(client, start.to_owned(), Pool::Directory);
    let mut changes = RoundChanges::default();
    while let Some(page) = pager.next_page().await.map_err(Failed::Graph)? {
        if let Some(stored) = stored {
            let first_touched = first_touched(&page, objects, &changes);
            let bases = stored.of(first_touched).await.map_err(Failed::Stored)?;
            objects.extend(bases);
        }
        for change in page {
            apply(objects, &mut changes, change).map_err(Failed::Graph)?;
        }
    }
    let delta_link = pager
        .delta_link()
        .ok_or_else(|| GraphError::Malformed("delta round ended without a deltaLink".to_owned()))
        .map_err(Failed::Graph)?
        .to_owned();
    if !under_root(client, &delta_link) {
        return Err(Failed::Graph(GraphError::ForeignLink));
    }
    Ok((changes, delta_link))
}

/// The ids of a page that the round has not touched yet: their stored form is the one their
/// changes apply to. An id removed earlier in the round starts again from nothing.
fn first_touched(page: &[Value], objects: &Objects, changes: &RoundChanges) -> Vec<String> {
    let mut ids: Vec<String> = page
        .iter()
        .filter_map(|change| change.get("id").and_then(Value::as_str))
        .filter(|id| !objects.contains_key(*id) && !changes.removed.contains(*id))
        .map(str::to_owned)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// How long a collection goes without a full listing. The token of a resync and its listing
/// are two reads of an eventually consistent directory; a weekly listing (about 101 requests
/// at 100,000 users) bounds how long an object the two disagreed on can stay wrong.
const RELIST_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Runs the collection's round: incremental from the stored link over the `stored` objects,
/// else (no usable link or state file, a listing older than [`RELIST_AFTER`] at `now`, a
/// refused round, or stored objects that cannot be used) takes the token of a full resync,
/// whose listing is the caller's.
pub(super) async fn sync(
    client: &GraphClient,
    collection: DeltaCollection,
    (head, stored): (StoredHead, Option<&StoredObjects<'_>>),
    now: DateTime<Utc>,
) -> Result<Round, GraphError> {
    let query = client.url(&collection.initial());
    // A listing time ahead of the clock (a clock set back since) counts as stale: it would
    // otherwise put off the next listing for as long as the clock was ahead.
    let listed_recently = head.listed_at.is_some_and(|at| {
        let age = now.signed_duration_since(at);
        age >= -chrono::TimeDelta::hours(1) && age < RELIST_AFTER
    });
    let mut link = head
        .link
        .filter(|l| l.query == query && under_root(client, &l.link));
    if link.is_some() && !listed_recently {
        tracing::info!(
            collection = collection.name(),
            "Not listed in full for seven days; listing again"
        );
        link = None;
    }
    if let (Some(link), Some(stored)) = (link, stored) {
        let mut objects = Objects::new();
        match round(client, &link.link, &mut objects, Some(stored)).await {
            Ok((changes, link)) => {
                return Ok(Round::Changes(Synced {
                    collection,
                    objects,
                    changes,
                    link: StoredLink { query, link },
                }))
            }
            Err(Failed::Graph(err)) if needs_resync(&err) => {
                tracing::info!(collection = collection.name(), error = %err, "Delta round refused; resynchronising");
            }
            Err(Failed::Stored(why)) => {
                tracing::warn!(collection = collection.name(), error = %why, "Cannot read the stored directory; resynchronising");
            }
            Err(Failed::Graph(err)) => return Err(err),
        }
    }
    let link = resync_link(client, collection).await?;
    Ok(Round::Listing(StoredLink { query, link }))
}

/// The token of a full resync of `collection`: the latest deltaLink. Objects the `latest`
/// request might send (a Graph that ignored it) are dropped: the listing that follows alone
/// says what exists.
pub(super) async fn resync_link(
    client: &GraphClient,
    collection: DeltaCollection,
) -> Result<String, GraphError> {
    let query = client.url(&collection.initial());
    let latest = format!("{query}&$deltatoken=latest");
    match round(client, &latest, &mut Objects::new(), None).await {
        Ok((_, link)) => Ok(link),
        Err(Failed::Graph(err)) => Err(err),
        Err(Failed::Stored(why)) => Err(GraphError::Malformed(why.to_string())),
    }
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

/// A changed object over its stored form: properties it carries replace the stored ones;
/// properties it leaves out keep their stored values. A property that is or becomes null is
/// not kept: the parsed shapes read an absent property as null, and a user of the listing's
/// `$select` is about a quarter shorter without them (issue 10).
pub(super) fn merge(stored: Option<Map<String, Value>>, change: Value) -> Value {
    let Value::Object(changes) = change else {
        return change;
    };
    let mut object = stored.unwrap_or_default();
    for (key, value) in changes {
        if key.starts_with("@odata.") {
            continue;
        }
        if value.is_null() {
            object.remove(&key);
        } else {
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
                json!({"id": "c"}),
            ]
        );
        assert_eq!(round.removed, BTreeSet::from(["b".to_owned()]));
        assert_eq!(
            round.changed,
            BTreeSet::from(["a".to_owned(), "c".to_owned()])
        );
    }

    #[test]
    fn a_property_set_to_null_is_dropped_and_parses_as_null() {
        let mut objects = Objects::from([(
            "a".to_owned(),
            json!({"id": "a", "mail": "a@x", "passwordPolicies": "None"}).to_string(),
        )]);
        let changes = vec![json!({"id": "a", "mail": null, "ageGroup": null})];
        apply_all(&mut objects, changes).unwrap();
        assert_eq!(objects["a"], r#"{"id":"a","passwordPolicies":"None"}"#);
        let user: crate::snapshot::User = serde_json::from_str(&objects["a"]).unwrap();
        assert_eq!((user.mail.as_deref(), user.age_group()), (None, None));
        assert_eq!(user.password_policies.as_deref(), Some("None"));
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
}
