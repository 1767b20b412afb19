//! The HTTP side of the simulator: one listener serving the Entra token endpoint, Graph
//! `/v1.0`, `$batch` and the `/_sim` control API.
//!
//! Submodules: `server` (hyper accept loop, faults that act on the connection or body),
//! `graph` (one Graph GET), `batch`, `token`, `throttle`, `routes`, `odata`, `filter`, `simapi`.

mod admission;
pub(crate) mod assertion;
pub(crate) mod batch;
pub(crate) mod delta;
mod device_flow;
pub(crate) mod filter;
pub(crate) mod graph;
pub(crate) mod graph_mailbox;
pub(crate) mod odata;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod simapi;
pub(crate) mod throttle;
pub(crate) mod token;
pub(crate) mod token_flow;

use serde_json::{json, Value};

/// Content type of Graph's JSON answers.
pub(crate) const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A Graph error before it is rendered: status, `code` and `message`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub headers: Vec<(String, String)>,
}

impl GraphError {
    pub fn new(status: u16, code: &'static str, message: String) -> GraphError {
        GraphError {
            status,
            code,
            message,
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: String) -> GraphError {
        self.headers.push((name.to_string(), value));
        self
    }
}

/// Correlation ids of one request.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    /// New `request-id`; echoes the client's `client-request-id` or reuses the request id.
    pub fn new(client_request_id: Option<&str>) -> RequestIds {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = client_request_id
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id,
        }
    }
}

/// An answer before it is written to the wire.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

/// Reply bodies (every answer the simulator gives is JSON).
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Json(Value),
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Json(body),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Renders a Graph error in Graph's shape (`error.code`, `message`, `innerError`).
    pub fn graph_error(error: GraphError, ids: &RequestIds) -> Reply {
        let date = crate::clock::now_utc()
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        let mut inner = json!({
            "date": date,
            "request-id": ids.request_id,
            "client-request-id": ids.client_request_id,
        });
        if error.status == 429 {
            if let Some(map) = inner.as_object_mut() {
                map.insert("code".into(), json!("429"));
                map.insert("message".into(), json!("Please retry after"));
                map.insert("status".into(), json!("429"));
            }
        }
        let body =
            json!({"error": {"code": error.code, "message": error.message, "innerError": inner}});
        let mut reply = Reply::json(error.status, body);
        reply.headers = error.headers;
        reply
    }

    /// The body as bytes and its content type.
    pub fn encode(&self) -> (Vec<u8>, &'static str) {
        match &self.body {
            Body::Json(value) => {
                let content_type = if self.status < 300 {
                    ODATA_JSON
                } else {
                    "application/json"
                };
                (serde_json::to_vec(value).unwrap_or_default(), content_type)
            }
        }
    }
}
