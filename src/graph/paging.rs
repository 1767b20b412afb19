//! `@odata.nextLink` paging: follow the link verbatim until it is absent, one page at a time,
//! so callers can hand each page on (to the `$batch` queue) before the next arrives. A link
//! outside the configured Graph root is refused, so the token never leaves for another host.
//!
//! A hostile or broken service cannot keep the agent paging: a link that repeats an earlier
//! page of the same collection, or a chain longer than [`MAX_PAGES`], fails the collection
//! (and so the section) with a clear error. A collection page must be an object with a `value`
//! array: a 200 with an `error` body, or without `value`, is malformed, never an empty list
//! ("List users": <https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0>,
//! "Paging": <https://learn.microsoft.com/en-us/graph/paging>).

use super::client::{GraphClient, Pool};
use super::errors::{safe_code, GraphError};
use serde_json::Value;
use std::collections::HashSet;

/// Most pages of one collection: 10 million users at `$top=999`, 1 million at 100 a page.
pub const MAX_PAGES: usize = 10_000;

/// A collection being read page by page.
pub struct Pager<'a> {
    client: &'a GraphClient,
    pool: Pool,
    next: Option<String>,
    pages: usize,
    max_pages: usize,
    seen: HashSet<String>,
    delta_link: Option<String>,
}

impl<'a> Pager<'a> {
    /// Starts at `first_url` (absolute, under the client's root).
    pub fn new(client: &'a GraphClient, first_url: String, pool: Pool) -> Self {
        Self {
            client,
            pool,
            next: Some(first_url),
            pages: 0,
            max_pages: MAX_PAGES,
            seen: HashSet::new(),
            delta_link: None,
        }
    }

    /// The same pager with another page limit (tests use a small one).
    pub fn with_page_limit(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages;
        self
    }

    /// The next page's `value` array; `None` after the last page.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, GraphError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if self.pages >= self.max_pages {
            return Err(GraphError::Malformed(format!(
                "paging stopped: more than {} pages",
                self.max_pages
            )));
        }
        if !self.seen.insert(url.clone()) {
            return Err(GraphError::Malformed(
                "paging stopped: nextLink repeats an earlier page".to_owned(),
            ));
        }
        let body = self.client.get(&url, self.pool).await?;
        self.pages += 1;
        self.delta_link = match body.get("@odata.deltaLink") {
            None | Some(Value::Null) => None,
            Some(Value::String(link)) => Some(link.clone()),
            Some(_) => {
                return Err(GraphError::Malformed(
                    "deltaLink is not a string".to_owned(),
                ))
            }
        };
        let (items, next) = split_page(body)?;
        self.next = next;
        Ok(Some(items))
    }

    /// True when no page is left to read: the last page was read (or paging failed).
    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// The `@odata.deltaLink` of the last page read, if it had one (a delta round's end).
    pub fn delta_link(&self) -> Option<&str> {
        self.delta_link.as_deref()
    }

    /// Pages read so far.
    pub fn pages(&self) -> usize {
        self.pages
    }
}

/// Splits a collection page into its `value` items and its `@odata.nextLink`.
pub fn split_page(body: Value) -> Result<(Vec<Value>, Option<String>), GraphError> {
    let Value::Object(mut map) = body else {
        return Err(GraphError::Malformed(
            "page is not a JSON object".to_owned(),
        ));
    };
    if let Some(error) = map.get("error") {
        let code = safe_code(error.get("code").and_then(Value::as_str).unwrap_or("none"));
        return Err(GraphError::Malformed(format!(
            "success status with an error body (code {code})"
        )));
    }
    let next = match map.remove("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(link)) => Some(link),
        Some(_) => return Err(GraphError::Malformed("nextLink is not a string".to_owned())),
    };
    let items = match map.remove("value") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => {
            return Err(GraphError::Malformed("page has no value array".to_owned()))
        }
        Some(_) => return Err(GraphError::Malformed("value is not an array".to_owned())),
    };
    Ok((items, next))
}

/// Reads every page of a collection and parses each item with `parse`.
pub async fn collect_all<T>(
    client: &GraphClient,
    first_url: String,
    pool: Pool,
    parse: impl Fn(Value) -> Result<T, serde_json::Error>,
) -> Result<Vec<T>, GraphError> {
    let mut pager = Pager::new(client, first_url, pool);
    let mut all = Vec::new();
    while let Some(page) = pager.next_page().await? {
        for item in page {
            all.push(parse(item).map_err(|e| GraphError::Malformed(e.to_string()))?);
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn split_reads_items_and_link_verbatim() {
        let link = "https://graph.microsoft.com/v1.0/users?$top=2&$skiptoken=X%27abc%27";
        let (items, next) =
            split_page(json!({"value": [{"id": "1"}, {"id": "2"}], "@odata.nextLink": link}))
                .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(next.as_deref(), Some(link));
        let (items, next) = split_page(json!({"value": []})).unwrap();
        assert!(items.is_empty() && next.is_none());
    }

    #[test]
    fn split_rejects_wrong_shapes() {
        assert!(split_page(json!([1])).is_err());
        assert!(split_page(json!({"value": {}})).is_err());
        assert!(split_page(json!({"value": [], "@odata.nextLink": 3})).is_err());
    }

    #[test]
    fn a_success_without_a_list_is_never_an_empty_list() {
        // A 200 whose body is an error, or has no `value`, must not read as "no items".
        let error = json!({"error": {"code": "InternalServerError", "message": "x"}});
        assert!(split_page(error)
            .unwrap_err()
            .to_string()
            .contains("InternalServerError"));
        assert!(split_page(json!({})).is_err());
        assert!(split_page(json!({"value": null})).is_err());
    }

    #[test]
    fn an_error_body_code_cannot_forge_log_lines() {
        let hostile = json!({"error": {"code": "Denied\n2026-01-01T00:00:00Z  INFO forged"}});
        let message = split_page(hostile).unwrap_err().to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.contains("Denied2026-01-01T000000ZINFOforged"),
            "{message}"
        );
    }
}
