//! JSON batching (`POST /v1.0/$batch`): at most 20 members with unique ids and relative URLs;
//! outer 200 with inner statuses; members without `dependsOn` run concurrently (Exchange
//! members four at a time, as Graph does), dependents wait and get 424 when a dependency
//! failed; inner throttling and injected faults carry their own `Retry-After`; responses come
//! back in a seeded shuffled order.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rand::seq::SliceRandom;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use super::graph::{self, GraphCall};
use super::routes::{self, Workload};
use super::server::{injected_error, plan_faults, template_of};
use super::{token, Body, GraphError, Reply, RequestIds, ODATA_JSON};
use crate::faults::decision_rng;
use crate::state::{lock, Shared};

/// Most members in one batch.
pub(crate) const MAX_REQUESTS: usize = 20;

#[derive(Debug, Clone)]
struct Member {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    depends_on: Vec<String>,
}

fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError::new(400, "BadRequest", message.into())
}

fn parse(body: &[u8]) -> Result<Vec<Member>, GraphError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad_request("Unable to deserialize content."))?;
    let requests = value
        .get("requests")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("Invalid batch payload format."))?;
    if requests.is_empty() {
        return Err(bad_request("Invalid batch payload format."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad_request(format!("Invalid batch payload format. The number of requests ({}) exceeds the maximum of {MAX_REQUESTS}.", requests.len())));
    }
    let mut members = Vec::with_capacity(requests.len());
    let mut seen = HashSet::new();
    for request in requests {
        let text = |k: &str| request.get(k).and_then(Value::as_str).map(str::to_string);
        let id = text("id").ok_or_else(|| bad_request("Request id is missing or invalid."))?;
        if !seen.insert(id.to_ascii_lowercase()) {
            return Err(bad_request(format!(
                "Request id '{id}' is duplicated in the batch."
            )));
        }
        let depends_on = request
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        members.push(Member {
            method: text("method")
                .ok_or_else(|| bad_request(format!("Request '{id}' has no method.")))?,
            url: text("url").ok_or_else(|| bad_request(format!("Request '{id}' has no url.")))?,
            headers: request
                .get("headers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            id,
            depends_on,
        });
    }
    for member in &members {
        if let Some(missing) = member
            .depends_on
            .iter()
            .find(|d| !seen.contains(&d.to_ascii_lowercase()))
        {
            return Err(bad_request(format!(
                "Request '{}' depends on unknown request '{missing}'.",
                member.id
            )));
        }
    }
    Ok(members)
}

/// Handles one `$batch` request.
pub(crate) async fn handle(
    shared: &Arc<Shared>,
    bearer: Option<&str>,
    body: &[u8],
    ids: &RequestIds,
) -> Reply {
    if let Err(error) = token::authorize(shared, bearer) {
        return Reply::graph_error(error, ids);
    }
    let members = match parse(body) {
        Ok(m) => m,
        Err(error) => return Reply::graph_error(error, ids),
    };
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses: Vec<Value> = Vec::with_capacity(members.len());
    let mut pending = members;
    let exchange_slots = Arc::new(Semaphore::new(4));
    while !pending.is_empty() {
        let (ready, waiting): (Vec<Member>, Vec<Member>) = pending.into_iter().partition(|m| {
            m.depends_on
                .iter()
                .all(|d| statuses.contains_key(&d.to_ascii_lowercase()))
        });
        if ready.is_empty() {
            for member in &waiting {
                responses.push(failed_dependency(member, ids));
            }
            break;
        }
        let mut wave = tokio::task::JoinSet::new();
        for member in ready {
            let failed = member.depends_on.iter().find(|d| {
                statuses
                    .get(&d.to_ascii_lowercase())
                    .is_some_and(|s| !(200..300).contains(s))
            });
            if failed.is_some() {
                statuses.insert(member.id.to_ascii_lowercase(), 424);
                responses.push(failed_dependency(&member, ids));
                continue;
            }
            let shared = Arc::clone(shared);
            let bearer = bearer.map(str::to_string);
            let ids = ids.clone();
            let slots = Arc::clone(&exchange_slots);
            wave.spawn(
                async move { run_member(&shared, member, bearer.as_deref(), ids, slots).await },
            );
        }
        while let Some(joined) = wave.join_next().await {
            if let Ok((id, status, response)) = joined {
                statuses.insert(id.to_ascii_lowercase(), status);
                responses.push(response);
            }
        }
        pending = waiting;
    }
    let (seed, number) = (
        shared.read().file.faults.seed,
        shared.batches.fetch_add(1, Ordering::Relaxed),
    );
    responses.shuffle(&mut decision_rng(seed, "batch-order", number));
    Reply::json(200, json!({ "responses": responses }))
}

fn failed_dependency(member: &Member, ids: &RequestIds) -> Value {
    let reply = Reply::graph_error(
        GraphError::new(
            424,
            "FailedDependency",
            "Failed dependency: a request this one depends on did not succeed.".into(),
        ),
        ids,
    );
    member_response(&member.id, reply)
}

async fn run_member(
    shared: &Arc<Shared>,
    member: Member,
    bearer: Option<&str>,
    outer_ids: RequestIds,
    exchange_slots: Arc<Semaphore>,
) -> (String, u16, Value) {
    let header = |name: &str| {
        member
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
    };
    let ids = RequestIds {
        request_id: uuid::Uuid::new_v4().to_string(),
        client_request_id: header("client-request-id")
            .map(str::to_string)
            .unwrap_or(outer_ids.client_request_id),
    };
    let relative = member.url.trim();
    let reply = if relative.starts_with("http://") || relative.starts_with("https://") {
        Reply::graph_error(
            bad_request(
                "Invalid request URL: batch request URLs must be relative to the version root.",
            ),
            &ids,
        )
    } else {
        let with_slash = if relative.starts_with('/') {
            relative.to_string()
        } else {
            format!("/{relative}")
        };
        let (path, raw_query) = with_slash
            .split_once('?')
            .unwrap_or((with_slash.as_str(), ""));
        let template = template_of(&format!("/v1.0{path}"));
        let exchange = routes::resolve(path).is_ok_and(|r| r.workload() == Workload::Exchange);
        let _permit = if exchange {
            exchange_slots.acquire().await.ok()
        } else {
            None
        };
        let plan = plan_faults(
            shared,
            &template,
            &format!("{} /v1.0{path}?{raw_query}", member.method),
        );
        match plan.status {
            Some((status, retry_after)) => {
                if let Some(latency) = plan.latency {
                    tokio::time::sleep(latency).await;
                }
                lock(&shared.stats).faults_injected += 1;
                Reply::graph_error(injected_error(status, retry_after), &ids)
            }
            None => {
                let eventual =
                    header("ConsistencyLevel").is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
                let call = GraphCall {
                    method: &member.method,
                    path,
                    raw_query,
                    bearer,
                    eventual,
                    ids: ids.clone(),
                    latency: plan.latency,
                };
                graph::handle(shared, call).await
            }
        }
    };
    let template = if relative.starts_with("http") {
        "/v1.0/(unknown)".to_string()
    } else {
        template_of(&format!(
            "/v1.0/{}",
            relative
                .trim_start_matches('/')
                .split('?')
                .next()
                .unwrap_or_default()
        ))
    };
    lock(&shared.stats).record_inner(&template, reply.status);
    let status = reply.status;
    (
        member.id.clone(),
        status,
        member_response(&member.id, reply),
    )
}

fn member_response(id: &str, reply: Reply) -> Value {
    let mut headers = Map::new();
    let content_type = if reply.status < 300 {
        ODATA_JSON
    } else {
        "application/json"
    };
    headers.insert("Cache-Control".into(), json!("no-cache"));
    headers.insert("Content-Type".into(), json!(content_type));
    if reply.status < 300 {
        headers.insert("OData-Version".into(), json!("4.0"));
    }
    for (name, value) in &reply.headers {
        headers.insert(name.clone(), json!(value));
    }
    let Body::Json(body) = reply.body;
    json!({"id": id, "status": reply.status, "headers": headers, "body": body})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_oversize_duplicates_and_unknown_dependencies() {
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
            .collect();
        assert!(parse(json!({"requests": many}).to_string().as_bytes())
            .unwrap_err()
            .message
            .contains("exceeds"));
        let dup = json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]});
        assert!(parse(dup.to_string().as_bytes())
            .unwrap_err()
            .message
            .contains("duplicated"));
        let dangling = json!({"requests": [{"id": "a", "method": "GET", "url": "/users", "dependsOn": ["z"]}]});
        assert!(parse(dangling.to_string().as_bytes())
            .unwrap_err()
            .message
            .contains("unknown request"));
        assert!(parse(b"not json").is_err());
    }
}
