//! The delta functions `/users/delta`, `/applications/delta` and `/servicePrincipals/delta`,
//! as Microsoft documents them (learn.microsoft.com/graph/delta-query-overview,
//! /graph/delta-query-users, /graph/api/user-delta, /graph/api/application-delta,
//! /graph/api/serviceprincipal-delta):
//!
//! - A round is one or more GETs: pages with an `@odata.nextLink` (`$skiptoken`), then a last
//!   page with an `@odata.deltaLink` (`$deltatoken`). The first request of a round returns every
//!   current object; a GET of a deltaLink returns only objects changed since it was issued, and
//!   removed ones as `{"id": ..., "@removed": {"reason": "changed"}}`.
//! - Query parameters go in the initial request only and are encoded in the opaque tokens;
//!   "Delta queries with both `$select` and `$skipToken` will not be supported". Only selected
//!   properties are tracked; a property never set is left out of the object.
//! - For users, `$expand`, `$top` and `$orderby` are not supported; `$filter` only by id (not
//!   simulated: refused like any other filter).
//! - `$deltatoken=latest` answers a deltaLink and no objects ("sync from now").
//! - Directory delta tokens are valid seven days; an expired one answers a 40X error with code
//!   `syncStateNotFound` ("The sync state generation is not found. The delta token is expired
//!   and data must be synchronized again", learn.microsoft.com/graph/errors); a reset answers
//!   `410 Gone` with a `Location` of the initial query with an empty `$deltaToken`.
//!
//! Changes made while a round pages are returned again by the next round (the deltaLink carries
//! the sequence at which its round started): Graph warns of such replays.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::graph::{APPLICATIONS, SERVICE_PRINCIPALS, USERS};
use super::odata::{self, Collection, PageContext, Query};
use super::routes::DeltaSet;
use super::GraphError;
use crate::state::TenantData;

/// How long a directory delta token is valid ("For directory objects, the limit is seven days").
const TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// Objects per delta page when the request does not (or may not) say.
const PAGE_SIZE: usize = 100;

/// What a `$skiptoken` or `$deltatoken` carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    /// Entity set (`users`).
    c: String,
    /// Tracked properties; `None` is the default set.
    s: Option<Vec<String>>,
    /// Changes after this sequence; `None` in an initial round (every object).
    f: Option<u64>,
    /// Sequence at which this round started: the next round's `f`.
    r: u64,
    /// Position of the next page within the round.
    p: usize,
    /// Issue time, Unix seconds.
    t: i64,
}

fn collection(set: DeltaSet) -> &'static Collection {
    match set {
        DeltaSet::Users => &USERS,
        DeltaSet::Applications => &APPLICATIONS,
        DeltaSet::ServicePrincipals => &SERVICE_PRINCIPALS,
    }
}

fn unsupported(message: &str) -> GraphError {
    GraphError::new(400, "Request_UnsupportedQuery", message.to_owned())
}

/// First byte of every token: Graph's tokens are opaque (`oEcOySpF_hWYmTIU...` in the
/// delta-query docs), not base64 of readable JSON, and a client must not parse them. The byte
/// also keeps a token from looking like a JWT (`eyJ...`), which the agent's secret checks look for.
const TOKEN_VERSION: u8 = 0xa1;

fn encode(state: &State) -> String {
    let mut bytes = vec![TOKEN_VERSION];
    bytes.extend(serde_json::to_vec(state).unwrap_or_default());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode(token: &str, set: &str) -> Result<State, GraphError> {
    let state: Option<State> =
        URL_SAFE_NO_PAD
            .decode(token.trim())
            .ok()
            .and_then(|bytes| match bytes.split_first() {
                Some((&TOKEN_VERSION, json)) => serde_json::from_slice(json).ok(),
                _ => None,
            });
    match state {
        Some(state) if state.c == set => Ok(state),
        _ => Err(GraphError::new(
            400,
            "syncStateNotFound",
            "The sync state generation is not found.".into(),
        )),
    }
}

fn now_secs() -> i64 {
    crate::clock::now_utc().timestamp()
}

/// Refuses a token that expired (seven days, or expired through the control API) or was reset.
fn check_token(
    data: &TenantData,
    state: &State,
    context: &PageContext<'_>,
) -> Result<(), GraphError> {
    let changes = &data.changes;
    if changes
        .reset_through
        .is_some_and(|through| state.r <= through)
    {
        let select = state
            .s
            .as_ref()
            .map(|s| format!("$select={}&", s.join(",")));
        let location = format!(
            "{}{}?{}$deltatoken=",
            context.base_url,
            context.path,
            select.unwrap_or_default()
        );
        return Err(GraphError::new(
            410,
            "resyncRequired",
            "The delta token is no longer valid, and the app must reset the sync state.".into(),
        )
        .with_header("Location", location));
    }
    let expired = changes
        .expired_through
        .is_some_and(|through| state.r <= through)
        || now_secs().saturating_sub(state.t) > TOKEN_LIFETIME_SECS;
    if expired {
        return Err(GraphError::new(
            400,
            "syncStateNotFound",
            "The sync state generation is not found. The delta token is expired and data must be synchronized again.".into(),
        ));
    }
    Ok(())
}

/// Canonical selected names, refusing unknown ones (400) and those stored outside the
/// directory (501, as the overview's `skills` example shows).
fn selected(query: &Query, collection: &Collection) -> Result<Option<Vec<String>>, GraphError> {
    let select = odata::resolve_select(query, collection.props, collection.odata_type)?;
    if let Some(p) = select
        .iter()
        .flatten()
        .find(|p| collection.not_on_collection.contains(p))
    {
        return Err(GraphError::new(
            501,
            "NotImplemented",
            format!("This operation target is not yet supported. Property '{p}' is not supported for change tracking."),
        ));
    }
    Ok(select.map(|names| names.iter().map(|n| (*n).to_owned()).collect()))
}

fn refuse_options(set: DeltaSet, query: &Query) -> Result<(), GraphError> {
    if query.filter.is_some() || query.search.is_some() || query.count || query.skip.is_some() {
        return Err(unsupported("Unsupported Query."));
    }
    if query.expand.is_some() || query.orderby.is_some() {
        return Err(unsupported(
            "$expand and $orderby are not supported with delta.",
        ));
    }
    if set == DeltaSet::Users && query.top.is_some() {
        return Err(unsupported("$top is not supported with delta for users."));
    }
    Ok(())
}

/// The round state of this request.
fn state_of(
    data: &TenantData,
    set: DeltaSet,
    query: &Query,
    context: &PageContext<'_>,
) -> Result<State, GraphError> {
    let collection = collection(set);
    let name = collection.set.to_owned();
    if let Some(token) = &query.skiptoken {
        if query.select.is_some() {
            return Err(unsupported(
                "Delta queries with both $select and $skipToken are not supported.",
            ));
        }
        let state = decode(token, &name)?;
        check_token(data, &state, context)?;
        return Ok(state);
    }
    let fresh = |since: Option<u64>, select: Option<Vec<String>>| State {
        c: name.clone(),
        s: select,
        f: since,
        r: data.changes.sequence,
        p: 0,
        t: now_secs(),
    };
    match query.deltatoken.as_deref().map(str::trim) {
        None | Some("") => Ok(fresh(None, selected(query, collection)?)),
        Some(latest) if latest.eq_ignore_ascii_case("latest") => {
            let mut state = fresh(Some(data.changes.sequence), selected(query, collection)?);
            state.p = usize::MAX;
            Ok(state)
        }
        Some(token) => {
            let issued = decode(token, &name)?;
            check_token(data, &issued, context)?;
            let select = match query.select {
                Some(_) => selected(query, collection)?,
                None => issued.s.clone(),
            };
            Ok(fresh(Some(issued.r), select))
        }
    }
}

/// Selected properties of one object, leaving out those never set.
fn project(object: &Value, names: &[&str]) -> Value {
    let mut out = Map::with_capacity(names.len() + 1);
    if let Some(map) = object.as_object() {
        for name in names {
            if let Some(value) = map.get(*name) {
                out.insert((*name).to_owned(), value.clone());
            }
        }
        if let Some(id) = map.get("id") {
            out.insert("id".into(), id.clone());
        }
    }
    Value::Object(out)
}

/// One object of a round: a current object (projected only when its page is served) or the id
/// of a removed one.
enum RoundItem<'a> {
    Current(&'a Value),
    Removed(String),
}

impl RoundItem<'_> {
    fn render(&self, names: &[&str]) -> Value {
        match self {
            RoundItem::Current(object) => project(object, names),
            RoundItem::Removed(id) => json!({"id": id, "@removed": {"reason": "changed"}}),
        }
    }
}

/// The objects of this round, in a stable order: current objects first, then removed ids.
/// Nothing is copied here, so a page costs a pass over the collection's references plus the
/// projection of its own objects, not a projection of the whole collection.
fn round_items<'a>(
    data: &'a TenantData,
    set: DeltaSet,
    state: &State,
    names: &[&str],
) -> Vec<RoundItem<'a>> {
    if state.p == usize::MAX {
        return Vec::new();
    }
    let tracked = state.s.as_ref().map(|_| names);
    let mut items: Vec<RoundItem<'a>> = set
        .objects(&data.file)
        .iter()
        .filter(|object| match state.f {
            None => true,
            Some(since) => crate::tenant::object_id(object)
                .and_then(|id| data.changes.get(set, id))
                .is_some_and(|c| c.changed_after(since, tracked)),
        })
        .map(RoundItem::Current)
        .collect();
    if let Some(since) = state.f {
        items.extend(
            data.changes
                .removed_after(set, since)
                .into_iter()
                .map(RoundItem::Removed),
        );
    }
    items
}

/// One delta page.
pub(crate) fn answer(
    data: &TenantData,
    set: DeltaSet,
    query: &Query,
    context: &PageContext<'_>,
) -> Result<Value, GraphError> {
    refuse_options(set, query)?;
    let collection = collection(set);
    let mut state = state_of(data, set, query, context)?;
    let names: Vec<&str> = match &state.s {
        Some(names) => names.iter().map(String::as_str).collect(),
        None => collection
            .default_props
            .unwrap_or(collection.props)
            .to_vec(),
    };
    let top = match set {
        DeltaSet::Users => PAGE_SIZE,
        _ if query.top.is_some() => odata::page_size(query, true)?,
        _ => PAGE_SIZE,
    };
    let items = round_items(data, set, &state, &names);
    let start = state.p.min(items.len());
    let end = start.saturating_add(top).min(items.len());
    let value: Vec<Value> = items
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|item| item.render(&names))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(odata::context_url(context.base_url, collection.set, None)),
    );
    let link = if end < items.len() {
        state.p = end;
        (
            "@odata.nextLink",
            format!(
                "{}{}?$skiptoken={}",
                context.base_url,
                context.path,
                encode(&state)
            ),
        )
    } else {
        let next = State {
            f: None,
            p: 0,
            t: now_secs(),
            ..state
        };
        (
            "@odata.deltaLink",
            format!(
                "{}{}?$deltatoken={}",
                context.base_url,
                context.path,
                encode(&next)
            ),
        )
    };
    body.insert(link.0.into(), json!(link.1));
    body.insert("value".into(), Value::Array(value));
    Ok(Value::Object(body))
}
