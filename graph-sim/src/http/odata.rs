//! OData query options: parsing, `$select` projection, `$filter`, `$top` and opaque
//! `$skiptoken` paging with absolute `@odata.nextLink`s.
//!
//! Paging reads the collection by position, never copying it: the skiptoken carries the
//! position where the next page resumes. With a `$filter`, one page examines at most
//! [`SCAN_BUDGET`] objects, so selective filters produce short or empty pages that still carry
//! a nextLink, as Graph's do.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::filter::{self, Expr};
use super::GraphError;

/// Objects examined per filtered page before a page is cut short.
pub(crate) const SCAN_BUDGET: usize = 5_000;

/// Parsed query options of one request.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub select: Option<Vec<String>>,
    pub top: Option<String>,
    pub skiptoken: Option<String>,
    /// `$deltatoken` of a delta function (`latest`, empty, or a state token).
    pub deltatoken: Option<String>,
    pub filter: Option<(String, Expr)>,
    pub count: bool,
    pub search: Option<String>,
    pub orderby: Option<String>,
    pub expand: Option<String>,
    pub skip: Option<String>,
}

/// How one collection pages and projects.
pub(crate) struct Collection {
    /// Entity set name in `@odata.context` (`users`).
    pub set: &'static str,
    /// Qualified type (`microsoft.graph.user`).
    pub odata_type: &'static str,
    pub props: &'static [&'static str],
    /// Properties returned without `$select` (`None`: all).
    pub default_props: Option<&'static [&'static str]>,
    /// Properties that cannot be selected on the collection (501).
    pub not_on_collection: &'static [&'static str],
    /// Directory collection: advanced-query rules apply and `$top` over 999 is an error.
    pub directory: bool,
}

/// Parses the raw (still percent-encoded) query string.
pub(crate) fn parse_query(raw: &str) -> Result<Query, GraphError> {
    let mut query = Query::default();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let value = value.into_owned();
        match key.to_ascii_lowercase().as_str() {
            "$select" => {
                query.select = Some(
                    value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "$top" => query.top = Some(value),
            "$skiptoken" => query.skiptoken = Some(value),
            "$deltatoken" => query.deltatoken = Some(value),
            "$filter" => {
                let expr = filter::parse(&value).map_err(|m| {
                    GraphError::new(400, "BadRequest", format!("Invalid filter clause: {m}"))
                })?;
                query.filter = Some((value, expr));
            }
            "$count" => query.count = value.eq_ignore_ascii_case("true"),
            "$search" => query.search = Some(value),
            "$orderby" => query.orderby = Some(value),
            "$expand" => query.expand = Some(value),
            "$skip" => query.skip = Some(value),
            other if other.starts_with('$') => {
                return Err(GraphError::new(
                    400,
                    "BadRequest",
                    format!("Unrecognized query argument specified: '{key}'."),
                ))
            }
            _ => {}
        }
    }
    Ok(query)
}

/// Resolves `$select` names case-insensitively to canonical property names.
pub(crate) fn resolve_select(
    query: &Query,
    props: &'static [&'static str],
    odata_type: &str,
) -> Result<Option<Vec<&'static str>>, GraphError> {
    let Some(names) = &query.select else {
        return Ok(None);
    };
    if names.iter().any(|n| n == "*") {
        return Ok(Some(props.to_vec()));
    }
    let mut resolved = Vec::with_capacity(names.len() + 1);
    for name in names {
        let canonical = props
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                GraphError::new(
                    400,
                    "Request_BadRequest",
                    format!("Could not find a property named '{name}' on type '{odata_type}'."),
                )
            })?;
        if !resolved.contains(canonical) {
            resolved.push(*canonical);
        }
    }
    Ok(Some(resolved))
}

/// Copies the selected properties of one object (`id` and `@odata.*` always kept; a selected
/// property the object lacks comes back as `null`, as Graph does for unset properties).
pub(crate) fn project(object: &Value, select: Option<&[&str]>) -> Value {
    let (Some(select), Some(map)) = (select, object.as_object()) else {
        return object.clone();
    };
    let mut out = Map::with_capacity(select.len() + 2);
    for (key, value) in map {
        if key.starts_with("@odata.") {
            out.insert(key.clone(), value.clone());
        }
    }
    for name in select {
        out.insert(
            (*name).to_string(),
            map.get(*name).cloned().unwrap_or(Value::Null),
        );
    }
    if let Some(id) = map.get("id") {
        out.insert("id".into(), id.clone());
    }
    Value::Object(out)
}

/// Where a page is served from, for absolute links.
pub(crate) struct PageContext<'a> {
    pub base_url: &'a str,
    /// Request path as received, such as `/v1.0/users`.
    pub path: &'a str,
    pub raw_query: &'a str,
    pub eventual: bool,
}

/// Checks the advanced-query rules of directory collections.
pub(crate) fn check_advanced(query: &Query, eventual: bool) -> Result<(), GraphError> {
    let unsupported = |m: &str| {
        Err(GraphError::new(
            400,
            "Request_UnsupportedQuery",
            m.to_string(),
        ))
    };
    if query.orderby.is_some() {
        return unsupported("Sorting not supported for current query.");
    }
    if query.search.is_some() && !eventual {
        return unsupported("Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'");
    }
    if query.count && !eventual {
        return unsupported("$count is not currently supported.");
    }
    if let Some((_, expr)) = &query.filter {
        if expr.is_advanced() && !(eventual && query.count) {
            return unsupported("Unsupported property filter clause operator 'NotEqualsMatch'.");
        }
    }
    Ok(())
}

/// One page of a collection.
pub(crate) fn page(
    items: &[Value],
    collection: &Collection,
    query: &Query,
    context: &PageContext<'_>,
) -> Result<Value, GraphError> {
    if query.skip.is_some() && collection.directory {
        return Err(GraphError::new(
            400,
            "Request_BadRequest",
            "'$skip' is not supported by the service.".into(),
        ));
    }
    if query.expand.is_some() {
        return Err(GraphError::new(
            400,
            "Request_BadRequest",
            "Expand is not supported by the simulator for this collection.".into(),
        ));
    }
    if collection.directory {
        check_advanced(query, context.eventual)?;
    }
    let select = resolve_select(query, collection.props, collection.odata_type)?;
    if let Some(selected) = &select {
        if let Some(p) = selected
            .iter()
            .find(|p| collection.not_on_collection.contains(p))
        {
            return Err(GraphError::new(
                501,
                "NotImplemented",
                format!("This operation target is not yet supported. Property '{p}' cannot be selected on a collection."),
            ));
        }
    }
    if let Some((_, expr)) = &query.filter {
        if let Some(p) = expr.unknown_property(collection.props) {
            return Err(GraphError::new(
                400,
                "Request_UnsupportedQuery",
                format!("Unsupported or invalid query filter clause specified for property '{p}' of resource '{}'.", collection.odata_type),
            ));
        }
    }
    let top = page_size(query, collection.directory)?;
    let start = match &query.skiptoken {
        Some(token) => decode_skiptoken(token, collection.set)?,
        None => 0,
    };
    let projection = select.as_deref().or(collection.default_props);
    let search = query.search.as_deref().map(parse_search);
    let keep = |object: &Value| {
        query
            .filter
            .as_ref()
            .map_or(true, |(_, e)| e.matches(object))
            && search.as_ref().map_or(true, |s| s.matches(object))
    };
    let filtered = query.filter.is_some() || search.is_some();
    let mut value = Vec::with_capacity(top.min(items.len()));
    let mut position = start;
    let budget_end = if filtered {
        start.saturating_add(SCAN_BUDGET)
    } else {
        usize::MAX
    };
    while position < items.len() && value.len() < top && position < budget_end {
        if let Some(object) = items.get(position) {
            if keep(object) {
                value.push(project(object, projection));
            }
        }
        position += 1;
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context_url(
            context.base_url,
            collection.set,
            select.as_deref()
        )),
    );
    if query.count && start == 0 {
        let total = if filtered {
            items.iter().filter(|o| keep(o)).count()
        } else {
            items.len()
        };
        body.insert("@odata.count".into(), json!(total));
    }
    if position < items.len() {
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(context, collection.set, position)),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(Value::Object(body))
}

pub(crate) fn page_size(query: &Query, strict: bool) -> Result<usize, GraphError> {
    let Some(raw) = &query.top else {
        return Ok(100);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=999).contains(&n) => Ok(usize::try_from(n).unwrap_or(100)),
        Ok(n) if !strict && n > 999 => Ok(999),
        _ => Err(GraphError::new(
            400,
            "Request_BadRequest",
            format!("Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."),
        )),
    }
}

/// `@odata.context` for a collection.
pub(crate) fn context_url(base: &str, set: &str, select: Option<&[&str]>) -> String {
    match select {
        Some(props) => format!("{base}/v1.0/$metadata#{set}({})", props.join(",")),
        None => format!("{base}/v1.0/$metadata#{set}"),
    }
}

fn next_link(context: &PageContext<'_>, set: &str, position: usize) -> String {
    let kept: Vec<&str> = context
        .raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            !decoded.eq_ignore_ascii_case("$skiptoken")
        })
        .collect();
    let token = encode_skiptoken(set, position);
    let mut link = format!("{}{}?", context.base_url, context.path);
    for pair in kept {
        link.push_str(pair);
        link.push('&');
    }
    link.push_str("$skiptoken=");
    link.push_str(&token);
    link
}

fn encode_skiptoken(set: &str, position: usize) -> String {
    let plain = format!(
        "RFNwdAIAAQ|{set}|{position}|{:08x}",
        position.wrapping_mul(2_654_435_761) as u32
    );
    URL_SAFE_NO_PAD.encode(plain)
}

fn decode_skiptoken(token: &str, set: &str) -> Result<usize, GraphError> {
    let invalid = || {
        GraphError::new(
            400,
            "Request_BadRequest",
            "Invalid value for $skiptoken.".into(),
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let parts: Vec<&str> = text.split('|').collect();
    match parts.as_slice() {
        [_, token_set, position, _] if *token_set == set => position.parse().map_err(|_| invalid()),
        _ => Err(invalid()),
    }
}

/// `$search="displayName:adele"` (quotes required, as in Graph).
struct Search {
    property: String,
    needle: String,
}

impl Search {
    fn matches(&self, object: &Value) -> bool {
        object
            .get(&self.property)
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_lowercase().contains(&self.needle))
    }
}

fn parse_search(raw: &str) -> Search {
    let inner = raw.trim().trim_matches('"');
    let (property, needle) = inner.split_once(':').unwrap_or(("displayName", inner));
    Search {
        property: property.trim().to_string(),
        needle: needle.trim().to_lowercase(),
    }
}

#[cfg(test)]
#[path = "odata_tests.rs"]
mod tests;
