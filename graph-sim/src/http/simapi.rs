//! The `/_sim` control API: `GET /_sim/stats`, `GET /_sim/tenant`, `POST /_sim/tenant`
//! (replace), `POST /_sim/mutate` (see [`crate::mutation`]), `POST /_sim/device-codes/approve`
//! and `/decline` (`{"user_code": "...", "user_id": "..."?}`), `POST /_sim/token-lifetime`
//! (`{"seconds": N}`), `POST /_sim/tokens/expire` (every access token expires now),
//! `POST /_sim/delta/expire` (every delta token issued so far answers `syncStateNotFound`) and
//! `POST /_sim/delta/reset` (every delta token issued so far answers 410 Gone).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use super::{token_flow, Reply};
use crate::mutation::Mutation;
use crate::state::{lock, Shared};
use crate::tenant::TenantFile;

fn bad(message: impl std::fmt::Display) -> Reply {
    Reply::json(
        400,
        json!({"error": {"code": "BadRequest", "message": message.to_string()}}),
    )
}

/// Handles one `/_sim/...` request.
pub(crate) fn handle(shared: &Arc<Shared>, method: &Method, path: &str, body: &[u8]) -> Reply {
    match (method, path) {
        (&Method::GET, "/_sim/stats") => Reply::json(
            200,
            serde_json::to_value(lock(&shared.stats).clone()).unwrap_or(Value::Null),
        ),
        (&Method::GET, "/_sim/tenant") => Reply::json(
            200,
            serde_json::to_value(&shared.read().file).unwrap_or(Value::Null),
        ),
        (&Method::POST, "/_sim/tenant") => match std::str::from_utf8(body)
            .map_err(|e| e.to_string())
            .and_then(|t| TenantFile::from_json(t).map_err(|e| e.to_string()))
        {
            Ok(tenant) => {
                shared.mutate(|t| *t = tenant);
                Reply::json(200, json!({"ok": true}))
            }
            Err(e) => bad(e),
        },
        (&Method::POST, "/_sim/mutate") => mutate(shared, body),
        (&Method::POST, "/_sim/device-codes/approve")
        | (&Method::POST, "/_sim/device-codes/decline") => {
            let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            let Some(code) = request.get("user_code").and_then(Value::as_str) else {
                return bad("user_code is required");
            };
            let user = request.get("user_id").and_then(Value::as_str);
            let ok = token_flow::decide_device_code(shared, code, path.ends_with("approve"), user);
            Reply::json(if ok { 200 } else { 404 }, json!({"ok": ok}))
        }
        (&Method::POST, "/_sim/token-lifetime") => {
            let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            match request
                .get("seconds")
                .and_then(Value::as_f64)
                .filter(|s| *s >= 0.0)
            {
                Some(seconds) => {
                    lock(&shared.auth).token_lifetime = Duration::from_secs_f64(seconds);
                    Reply::json(200, json!({"ok": true}))
                }
                None => bad("seconds (a non-negative number) is required"),
            }
        }
        (&Method::POST, "/_sim/tokens/expire") => {
            let now = Instant::now();
            lock(&shared.auth)
                .access
                .values_mut()
                .for_each(|t| t.expires_at = now);
            Reply::json(200, json!({"ok": true}))
        }
        (&Method::POST, "/_sim/delta/expire") => {
            shared.write().changes.expire_tokens();
            Reply::json(200, json!({"ok": true}))
        }
        (&Method::POST, "/_sim/delta/reset") => {
            shared.write().changes.reset_tokens();
            Reply::json(200, json!({"ok": true}))
        }
        _ => Reply::json(
            404,
            json!({"error": {"code": "NotFound", "message": format!("no simulator endpoint {method} {path}")}}),
        ),
    }
}

fn mutate(shared: &Shared, body: &[u8]) -> Reply {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad(format!("invalid json: {e}")),
    };
    let list = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mutations: Result<Vec<Mutation>, _> =
        list.into_iter().map(serde_json::from_value).collect();
    let mutations = match mutations {
        Ok(m) => m,
        Err(e) => return bad(format!("invalid mutation: {e}")),
    };
    let count = mutations.len();
    let result = shared.mutate(|tenant| {
        let mut copy_on_failure = None;
        for (position, mutation) in mutations.into_iter().enumerate() {
            if let Err(e) = mutation.apply(tenant) {
                copy_on_failure = Some(format!("mutation {position}: {e}"));
                break;
            }
        }
        copy_on_failure
    });
    match result {
        None => Reply::json(200, json!({"ok": true, "applied": count})),
        Some(error) => bad(error),
    }
}
