//! JSON `$batch`: up to 20 GET requests in one POST, answers correlated by id (any order),
//! and per-item retry: inner 429 and 5xx answers are sent again in a new batch after the
//! largest `Retry-After` (or a backoff), within the scan's retry budget. An answer missing
//! from the batch is retried the same way; an id answered twice fails as malformed; answers to
//! ids that were not asked are ignored.

use super::client::{GraphClient, Pool};
use super::errors::{safe_code, GraphError};
use super::limit_warning;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Most requests Graph accepts in one batch.
pub const MAX_BATCH: usize = 20;

/// How one inner answer is handled.
enum Inner {
    Done(Result<Value, GraphError>),
    Retry(Option<Duration>, GraphError),
}

/// Runs GETs of `urls` (relative to the version root, such as `/users/1/calendar/...`) in
/// batches of at most 20 (fewer for the reports bucket, see [`GraphClient::batch_limit`]),
/// retrying throttled and failed items; the answers come back in the order of `urls`.
/// A 2xx item gives its JSON body; a 404 stays an error the caller may read as "empty".
pub async fn get_batch(
    client: &GraphClient,
    urls: &[String],
    pool: Pool,
) -> Vec<Result<Value, GraphError>> {
    let size = client.batch_limit(pool, MAX_BATCH).max(1);
    let mut results = Vec::with_capacity(urls.len());
    for chunk in urls.chunks(size) {
        results.extend(get_one_batch(client, chunk, pool).await);
    }
    results
}

async fn get_one_batch(
    client: &GraphClient,
    urls: &[String],
    pool: Pool,
) -> Vec<Result<Value, GraphError>> {
    let mut results: Vec<Option<Result<Value, GraphError>>> = vec![None; urls.len()];
    let mut pending: Vec<usize> = (0..urls.len()).collect();
    let mut round: u32 = 0;
    while !pending.is_empty() {
        let answers = match send(client, urls, &pending, pool).await {
            Ok(answers) => answers,
            Err(err) => {
                fill(&mut results, &pending, &err);
                break;
            }
        };
        let mut retry = Vec::new();
        let mut wait: Option<Duration> = None;
        let mut last_err = None;
        for index in pending {
            match answers.get(&index.to_string()) {
                Some(answer) => match inner(client, answer, pool) {
                    Inner::Done(result) => set(&mut results, index, result),
                    Inner::Retry(after, err) => {
                        wait = wait.max(after);
                        retry.push((index, err));
                    }
                },
                None => retry.push((index, GraphError::Malformed("batch answer missing".into()))),
            }
        }
        if retry.is_empty() {
            break;
        }
        if round >= client.policy().max_retries || !client.take_retry(pool) {
            for (index, err) in retry {
                set(&mut results, index, Err(err));
            }
            break;
        }
        let delay = wait.unwrap_or_else(|| client.policy().backoff(round));
        round += 1;
        if let Err(err) = client.wait(delay).await {
            last_err = Some(err);
        }
        pending = retry.iter().map(|(i, _)| *i).collect();
        if let Some(err) = last_err {
            fill(&mut results, &pending, &err);
            break;
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(GraphError::Cancelled)))
        .collect()
}

fn set(
    results: &mut [Option<Result<Value, GraphError>>],
    index: usize,
    value: Result<Value, GraphError>,
) {
    if let Some(slot) = results.get_mut(index) {
        *slot = Some(value);
    }
}

fn fill(results: &mut [Option<Result<Value, GraphError>>], indexes: &[usize], err: &GraphError) {
    for &index in indexes {
        set(results, index, Err(err.clone()));
    }
}

async fn send(
    client: &GraphClient,
    urls: &[String],
    pending: &[usize],
    pool: Pool,
) -> Result<HashMap<String, Value>, GraphError> {
    let requests: Vec<Value> = pending
        .iter()
        .filter_map(|&i| urls.get(i).map(|url| (i, url)))
        .map(|(i, url)| json!({"id": i.to_string(), "method": "GET", "url": url}))
        .collect();
    let members = requests.len();
    let body = client
        .post_batch(
            &client.url("$batch"),
            &json!({ "requests": requests }),
            pool,
            members,
        )
        .await?;
    let Some(Value::Array(responses)) = body.get("responses").cloned() else {
        return Err(GraphError::Malformed(
            "batch answer has no responses".to_owned(),
        ));
    };
    Ok(by_id(responses))
}

/// Answers by id. An id answered twice is answered by neither (which of two contradicting
/// answers is true cannot be told), so it fails as malformed; ids that were not asked are
/// never looked up.
fn by_id(responses: Vec<Value>) -> HashMap<String, Value> {
    let mut answers = HashMap::new();
    for response in responses {
        let Some(id) = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            continue;
        };
        if answers.insert(id.clone(), response).is_some() {
            answers.insert(id, json!({"status": 0, "duplicate": true}));
        }
    }
    answers
}

fn inner(client: &GraphClient, answer: &Value, pool: Pool) -> Inner {
    let status = answer
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(0);
    let body = answer.get("body").cloned().unwrap_or(Value::Null);
    if answer.get("duplicate").is_some() {
        return Inner::Done(Err(GraphError::Malformed(
            "batch answers the same id twice".to_owned(),
        )));
    }
    if let Some(share) = header(answer, limit_warning::HEADER).and_then(limit_warning::parse_share)
    {
        client.heed_limit_warning(share, pool);
    }
    if (200..300).contains(&status) {
        return Inner::Done(Ok(body));
    }
    let code = safe_code(
        body.pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    let http = GraphError::Http { status, code };
    let retry_after =
        header(answer, "retry-after").and_then(|v| client.policy().retry_after(Some(v)));
    match status {
        429 => {
            client.count_throttled(pool, retry_after);
            Inner::Retry(retry_after, GraphError::Throttled)
        }
        503 if retry_after.is_some() => {
            client.count_throttled(pool, None);
            Inner::Retry(retry_after, http)
        }
        500 | 502 | 503 | 504 => Inner::Retry(None, http),
        _ => Inner::Done(Err(http)),
    }
}

fn header<'a>(answer: &'a Value, name: &str) -> Option<&'a str> {
    answer
        .get("headers")?
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}
