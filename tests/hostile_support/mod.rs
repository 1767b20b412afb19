//! A hostile Graph for the tests: a proxy on `127.0.0.1:0` in front of graph-sim that forwards
//! every request (with its `Authorization`) and lets a test rewrite chosen answers, and a
//! "foreign" server that records every request it gets, to show the token never reaches it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One answer the proxy sends.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A JSON answer (Graph's content type).
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::raw(
            status,
            "application/json",
            serde_json::to_vec(value).unwrap(),
        )
    }

    /// Any body with any content type.
    pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body,
        }
    }
}

/// What a rule sees: the request's method, path and query as sent, and graph-sim's answer.
pub struct Exchange<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub upstream: Answer,
}

impl Exchange<'_> {
    /// graph-sim's answer parsed as JSON.
    pub fn upstream_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.upstream.body).unwrap()
    }
}

/// Rewrites an answer; return `exchange.upstream` to pass it through.
pub type Rule = Arc<dyn Fn(Exchange<'_>) -> Answer + Send + Sync>;

/// A running proxy.
pub struct HostileGraph {
    pub addr: SocketAddr,
}

impl HostileGraph {
    /// `http://127.0.0.1:PORT`, the `graph_url` to configure.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Starts the proxy in front of `upstream` (graph-sim's base URL). Configure it as both
/// `authority_url` and `graph_url`: token requests ask for the proxy's `/.default` scope,
/// which the proxy renames to graph-sim's.
pub async fn start_proxy(upstream: String, rule: Rule) -> HostileGraph {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let own = format!("http://{addr}");
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream, rule, own) = (
                http.clone(),
                upstream.clone(),
                Arc::clone(&rule),
                own.clone(),
            );
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let (http, upstream, rule, own) = (
                        http.clone(),
                        upstream.clone(),
                        Arc::clone(&rule),
                        own.clone(),
                    );
                    async move {
                        let sites = (upstream.as_str(), own.as_str());
                        Ok::<_, std::convert::Infallible>(
                            forward(request, &http, sites, &rule).await,
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    HostileGraph { addr }
}

async fn forward(
    request: Request<hyper::body::Incoming>,
    http: &reqwest::Client,
    (upstream, own): (&str, &str),
    rule: &Rule,
) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut outgoing = http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{upstream}{path_and_query}"),
    );
    for (name, value) in request.headers() {
        if name != hyper::header::HOST && name != hyper::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let mut body = String::from_utf8_lossy(&body).into_owned();
    if path_and_query.ends_with("/oauth2/v2.0/token") {
        let encode = |url: &str| url.replace(':', "%3A").replace('/', "%2F");
        body = body
            .replace(&encode(own), &encode(upstream))
            .replace(own, upstream);
    }
    let answer = outgoing.body(body).send().await.unwrap();
    let status = answer.status().as_u16();
    let content_type = answer
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let headers = answer
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().eq_ignore_ascii_case("retry-after"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    let body = answer.bytes().await.unwrap().to_vec();
    let upstream = Answer {
        status,
        content_type,
        headers,
        body,
    };
    let answer = rule(Exchange {
        method: &method,
        path_and_query: &path_and_query,
        upstream,
    });
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type);
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.body(Full::new(Bytes::from(answer.body))).unwrap()
}

/// A server that answers every request with an empty page and records it.
pub struct Foreign {
    pub addr: SocketAddr,
    /// (path and query, whether an `Authorization` header came along).
    pub seen: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Foreign {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<(String, bool)> {
        self.seen.lock().unwrap().clone()
    }
}

pub async fn start_foreign() -> Foreign {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let recorder = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let recorder = Arc::clone(&recorder);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                        let path = request.uri().to_string();
                        let auth = request.headers().contains_key(hyper::header::AUTHORIZATION);
                        recorder.lock().unwrap().push((path, auth));
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from_static(b"{\"value\":[]}")))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Foreign { addr, seen }
}
