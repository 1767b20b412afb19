//! The hyper accept loop and request dispatch. Faults that act on the transport (latency,
//! connection reset) or on the body (malformed, truncated JSON) are applied here; a reset is
//! a service error, which makes hyper close the connection without an answer.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::graph::{self, GraphCall};
use super::{batch, routes, simapi, token_flow, Body, GraphError, Reply, RequestIds};
use crate::faults::decision_rng;
use crate::latency::{self, RequestKind};
use crate::state::{lock, Shared};

/// Largest request body read (a `$batch` of 20 small requests is far below).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Error that tells hyper to drop the connection (an injected reset).
#[derive(Debug, thiserror::Error)]
#[error("connection reset by fault injection")]
pub(crate) struct Reset;

/// Serves HTTP until `shutdown` flips to true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| dispatch(Arc::clone(&shared), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
            _ = shutdown.changed() => break,
        }
    }
    connections.abort_all();
}

/// Faults decided for one request before it is handled.
#[derive(Default)]
pub(crate) struct FaultPlan {
    pub latency: Option<Duration>,
    pub reset: bool,
    pub status: Option<(u16, f64)>,
    pub truncated: bool,
    pub malformed: bool,
}

/// Draws the faults for one request (reproducible, see `faults`).
pub(crate) fn plan_faults(shared: &Shared, template: &str, key: &str) -> FaultPlan {
    let (fault, seed) = {
        let data = shared.read();
        (
            data.file.faults.for_template(template).cloned(),
            data.file.faults.seed,
        )
    };
    let Some(fault) = fault else {
        return FaultPlan::default();
    };
    let query = key.split_once('?').map_or("", |(_, query)| query);
    if let Some(needle) = &fault.query_contains {
        if !query.contains(needle.as_str()) {
            return FaultPlan::default();
        }
    }
    let mut rng = decision_rng(seed, key, shared.occurrence(key));
    let mut hit = |rate: f64| rate > 0.0 && rng.gen_bool(rate.clamp(0.0, 1.0));
    let reset = hit(fault.reset_rate);
    let status = hit(fault.rate).then(|| {
        (
            fault.status.unwrap_or(503),
            fault.retry_after_secs.unwrap_or(1.0),
        )
    });
    let truncated = hit(fault.truncated_rate);
    let malformed = hit(fault.malformed_rate);
    let latency = fault.latency_ms.map(|[low, high]| {
        Duration::from_millis(if high > low {
            rng.gen_range(low..=high)
        } else {
            low
        })
    });
    FaultPlan {
        latency,
        reset,
        status,
        truncated,
        malformed,
    }
}

/// The Graph error of an injected status.
pub(crate) fn injected_error(status: u16, retry_after: f64) -> GraphError {
    let (code, message) = match status {
        429 => ("TooManyRequests", "Please retry again later."),
        500 => ("generalException", "General exception while processing."),
        502 => ("BadGateway", "Bad Gateway"),
        503 => ("serviceNotAvailable", "Service unavailable, please retry."),
        504 => ("GatewayTimeout", "Gateway Timeout"),
        _ => ("UnknownError", ""),
    };
    let error = GraphError::new(status, code, message.into());
    if matches!(status, 429 | 503) {
        let fractional = retry_after.fract() != 0.0;
        error.with_header(
            "Retry-After",
            super::throttle::retry_after_header(retry_after, fractional),
        )
    } else {
        error
    }
}

/// Path template of a request path, for stats and faults.
pub(crate) fn template_of(path: &str) -> String {
    if path.eq_ignore_ascii_case("/v1.0/$batch") {
        return "/v1.0/$batch".into();
    }
    if let Some(rest) = path.strip_prefix("/v1.0") {
        return routes::resolve(rest)
            .map(|r| r.template().to_string())
            .unwrap_or_else(|_| "/v1.0/(unknown)".into());
    }
    if path.starts_with("/_sim/") {
        return path.to_string();
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [_, "oauth2", "v2.0", "token"] => "/{tenant}/oauth2/v2.0/token".into(),
        [_, "oauth2", "v2.0", "devicecode"] => "/{tenant}/oauth2/v2.0/devicecode".into(),
        [_, "v2.0", ".well-known", "openid-configuration"] => {
            "/{tenant}/v2.0/.well-known/openid-configuration".into()
        }
        _ => "(unknown)".into(),
    }
}

async fn dispatch(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Reset> {
    let (parts, body) = request.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let ids = RequestIds::new(header("client-request-id"));
    let path = parts.uri.path();
    let raw_query = parts.uri.query().unwrap_or("");
    let template = template_of(path);
    let plan = if template.starts_with("/_sim/") {
        FaultPlan::default()
    } else {
        plan_faults(
            &shared,
            &template,
            &format!("{} {path}?{raw_query}", parts.method),
        )
    };
    if plan.reset {
        if let Some(latency) = plan.latency {
            tokio::time::sleep(latency).await;
        }
        let mut stats = lock(&shared.stats);
        stats.faults_injected += 1;
        stats.connection_resets += 1;
        stats.total_requests += 1;
        return Err(Reset);
    }
    let reply = match plan.status {
        Some((status, retry_after)) => {
            if let Some(latency) = plan.latency {
                tokio::time::sleep(latency).await;
            }
            lock(&shared.stats).faults_injected += 1;
            Reply::graph_error(injected_error(status, retry_after), &ids)
        }
        None => {
            let call = Call {
                method: &parts.method,
                path,
                raw_query,
                bytes: &bytes,
                ids: ids.clone(),
                latency: plan.latency,
            };
            route(&shared, &call, &parts.headers).await
        }
    };
    Ok(render(&shared, &template, reply, &plan, &ids, bytes.len()))
}

struct Call<'a> {
    method: &'a Method,
    path: &'a str,
    raw_query: &'a str,
    bytes: &'a [u8],
    ids: RequestIds,
    latency: Option<Duration>,
}

async fn route(shared: &Arc<Shared>, call: &Call<'_>, headers: &hyper::HeaderMap) -> Reply {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let bearer = header("authorization").map(|v| {
        let v = v.trim();
        match v.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => "",
        }
    });
    let eventual = header("consistencylevel").is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    if call.path.eq_ignore_ascii_case("/v1.0/$batch") {
        if let Some(latency) = call.latency {
            tokio::time::sleep(latency).await;
        }
        if call.method != Method::POST {
            return Reply::graph_error(
                GraphError::new(
                    405,
                    "Request_BadRequest",
                    "Specified HTTP method is not allowed for the request target.".into(),
                ),
                &call.ids,
            );
        }
        latency::wait(shared, RequestKind::Batch).await;
        return batch::handle(shared, bearer, call.bytes, &call.ids).await;
    }
    if let Some(rest) = call.path.strip_prefix("/v1.0") {
        let graph_call = GraphCall {
            method: call.method.as_str(),
            path: rest,
            raw_query: call.raw_query,
            bearer,
            eventual,
            ids: call.ids.clone(),
            latency: call.latency,
        };
        return graph::handle(shared, graph_call).await;
    }
    if let Some(latency) = call.latency {
        tokio::time::sleep(latency).await;
    }
    if call.path.starts_with("/_sim/") {
        return simapi::handle(shared, call.method, call.path, call.bytes);
    }
    let segments: Vec<&str> = call.path.trim_start_matches('/').split('/').collect();
    match (segments.as_slice(), call.method) {
        ([tenant, "oauth2", "v2.0", "token"], &Method::POST) => {
            latency::wait(shared, RequestKind::Token).await;
            token_flow::token(shared, tenant, call.bytes, header("authorization"))
        }
        ([tenant, "oauth2", "v2.0", "devicecode"], &Method::POST) => {
            token_flow::device_code(shared, tenant, call.bytes)
        }
        ([_, "oauth2", "v2.0", _], _) => super::token::AuthError::new(
            400,
            "invalid_request",
            900561,
            "The endpoint only accepts POST requests.",
        )
        .reply(&shared.base_url),
        ([tenant, "v2.0", ".well-known", "openid-configuration"], &Method::GET) => {
            token_flow::openid_configuration(shared, tenant)
        }
        ([version, ..], _) if is_version_like(version) => Reply::graph_error(
            GraphError::new(400, "BadRequest", format!("Invalid version: {version}")),
            &call.ids,
        ),
        _ => Reply::json(
            404,
            json!({"error": {"code": "NotFound", "message": format!("No such endpoint: {}", call.path)}}),
        ),
    }
}

fn render(
    shared: &Shared,
    template: &str,
    reply: Reply,
    plan: &FaultPlan,
    ids: &RequestIds,
    received: usize,
) -> Response<Full<Bytes>> {
    let (mut body, content_type) = reply.encode();
    if reply.status == 200 && matches!(reply.body, Body::Json(_)) {
        if plan.malformed {
            body = b"<html><head><title>502 Bad Gateway</title></head><body>upstream connect error or disconnect/reset before headers</body></html>".to_vec();
        } else if plan.truncated {
            body.truncate(body.len() / 2);
        }
    }
    {
        let mut stats = lock(&shared.stats);
        if plan.malformed || plan.truncated {
            stats.faults_injected += 1;
        }
        stats.record(template, reply.status, body.len() as u64, received as u64);
    }
    let mut builder = Response::builder().status(reply.status);
    let has_content_type = reply
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if !has_content_type {
        builder = builder.header("Content-Type", content_type);
    }
    if template.starts_with("/v1.0") {
        builder = builder
            .header("request-id", &ids.request_id)
            .header("client-request-id", &ids.client_request_id)
            .header("x-ms-ags-diagnostic", r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"003","RoleInstance":"AM2PEPF00000001"}}"#)
            .header("Strict-Transport-Security", "max-age=31536000")
            .header("Cache-Control", "no-cache");
    }
    for (name, value) in &reply.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn is_version_like(segment: &str) -> bool {
    segment == "beta"
        || (segment.starts_with('v') && segment.chars().nth(1).is_some_and(|c| c.is_ascii_digit()))
}
