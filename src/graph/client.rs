//! The Graph HTTP client of one tenant scan: bearer token, `client-request-id`,
//! `x-ms-throttle-priority: low`, bounded concurrency in two pools (directory and Exchange),
//! the identity reports bucket paced client-side ([`Pacer`]), `Retry-After` on 429/503,
//! exponential backoff with jitter on 5xx and transport errors, one token refresh on 401, and
//! a retry budget per pool and scan (one pool's throttling never spends another's retries). Every HTTP answer is counted by status
//! (`0` for transport errors); 429 and 503-with-Retry-After also count as throttled.

use super::auth::TokenProvider;
use super::body::{bounded_body, json_content_type, BodyError, MAX_BODY_BYTES};
use super::errors::{graph_error_code, GraphError};
use super::limit_warning::{self, Brake};
use super::pacer::Pacer;
pub use super::pool::Pool;
use super::retry::{RetryBudget, RetryPolicy};
use crate::metrics::Metrics;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// `User-Agent` of every request (Microsoft's decorated-traffic form).
pub const USER_AGENT: &str = concat!("ISV|m365-posture|m365-posture/", env!("CARGO_PKG_VERSION"));

/// Builds the shared reqwest client: timeouts, no redirects, the agent's `User-Agent`.
pub fn http_client(request_timeout: Duration) -> Result<reqwest::Client, GraphError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| GraphError::Transport(e.to_string()))
}

/// Settings of a [`GraphClient`].
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Graph base URL without trailing slash (`https://graph.microsoft.com`).
    pub graph_url: String,
    /// Tenant name, the metrics label.
    pub tenant: String,
    /// Requests in flight to directory endpoints, and as many to the reports bucket.
    pub directory_concurrency: usize,
    /// Requests in flight to Exchange endpoints.
    pub exchange_concurrency: usize,
    /// Retry behaviour.
    pub policy: RetryPolicy,
    /// Retries allowed in the whole scan, per pool.
    pub retry_budget: u32,
    /// The tenant's reports-bucket pacer (kept across scans).
    pub reports: Arc<Pacer>,
}

/// What one attempt came to.
enum Attempt {
    Done(Value),
    Fail(GraphError),
    Unauthorized,
    Retry(Option<Duration>, GraphError),
}

/// The Graph client of one tenant scan.
pub struct GraphClient {
    http: reqwest::Client,
    root: String,
    tenant: String,
    tokens: Arc<TokenProvider>,
    directory: Semaphore,
    /// Slots of the reports pool, apart from the directory's: a read waiting for the reports
    /// bucket holds one of these, never a directory slot (issue 10 point 4).
    reports_slots: Semaphore,
    exchange: Semaphore,
    metrics: Metrics,
    policy: RetryPolicy,
    budgets: [RetryBudget; 3],
    brakes: [Brake; 3],
    reports: Arc<Pacer>,
    cancel: CancellationToken,
}

impl GraphClient {
    /// A client for one scan; `cancel` stops every request and wait.
    pub fn new(
        http: reqwest::Client,
        settings: ClientSettings,
        tokens: Arc<TokenProvider>,
        metrics: Metrics,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            http,
            root: format!("{}/v1.0", settings.graph_url.trim_end_matches('/')),
            tenant: settings.tenant,
            tokens,
            directory: Semaphore::new(settings.directory_concurrency.max(1)),
            reports_slots: Semaphore::new(settings.directory_concurrency.max(1)),
            exchange: Semaphore::new(settings.exchange_concurrency.max(1)),
            metrics,
            policy: settings.policy,
            budgets: Pool::ALL.map(|_| RetryBudget::new(settings.retry_budget)),
            brakes: Pool::ALL.map(|_| Brake::default()),
            reports: settings.reports,
            cancel,
        }
    }

    /// The version root, `https://graph.microsoft.com/v1.0`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The absolute URL of a path relative to the version root (`/users?$top=999`).
    pub fn url(&self, relative: &str) -> String {
        format!("{}/{}", self.root, relative.trim_start_matches('/'))
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Takes one retry from the pool's budget of this scan; false when it is spent.
    pub fn take_retry(&self, pool: Pool) -> bool {
        self.budgets
            .get(pool.index())
            .is_some_and(RetryBudget::take)
    }

    /// The most requests worth sending at once to `pool` (a `$batch` larger than the reports
    /// bucket's window would only collect 429s).
    pub fn batch_limit(&self, pool: Pool, max: usize) -> usize {
        match pool {
            Pool::Reports => self.reports.limit().min(max),
            Pool::Directory | Pool::Exchange => max,
        }
    }

    /// Counts an answer that asked the agent to back off (also inside `$batch`), and blocks
    /// the reports bucket for `retry_after` when it was the one that refused.
    pub fn count_throttled(&self, pool: Pool, retry_after: Option<Duration>) {
        self.metrics
            .graph_throttled
            .with_label_values(&[&self.tenant])
            .inc();
        self.metrics
            .graph_pool_throttled
            .with_label_values(&[&self.tenant, pool.as_str()])
            .inc();
        if let (Pool::Reports, Some(wait)) = (pool, retry_after) {
            self.reports.throttled(wait);
        }
    }

    /// Holds `pool` when Graph warns that most of its budget is used (counted in
    /// `m365_posture_graph_pool_slowed_total`).
    /// Also for `$batch` members, whose headers are in the batch body.
    pub(crate) fn heed_limit_warning(&self, share: f64, pool: Pool) {
        if let Some(brake) = self.brakes.get(pool.index()) {
            brake.warned(share);
            self.metrics
                .graph_pool_slowed
                .with_label_values(&[&self.tenant, pool.as_str()])
                .inc();
        }
    }

    /// Sleeps unless the scan is cancelled.
    pub async fn wait(&self, delay: Duration) -> Result<(), GraphError> {
        tokio::select! {
            () = self.cancel.cancelled() => Err(GraphError::Cancelled),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }

    /// GET an absolute URL under the root and parse the JSON answer.
    pub async fn get(&self, url: &str, pool: Pool) -> Result<Value, GraphError> {
        self.send(Method::GET, url, None, (pool, 1)).await
    }

    /// POST a `$batch` of `members` requests to `pool`; each member counts in its bucket.
    pub async fn post_batch(
        &self,
        url: &str,
        body: &Value,
        pool: Pool,
        members: usize,
    ) -> Result<Value, GraphError> {
        self.send(Method::POST, url, Some(body), (pool, members))
            .await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        (pool, cost): (Pool, usize),
    ) -> Result<Value, GraphError> {
        if !url.starts_with(&format!("{}/", self.root)) {
            return Err(GraphError::ForeignLink);
        }
        let semaphore = match pool {
            Pool::Directory => &self.directory,
            Pool::Reports => &self.reports_slots,
            Pool::Exchange => &self.exchange,
        };
        let _permit = tokio::select! {
            () = self.cancel.cancelled() => return Err(GraphError::Cancelled),
            permit = semaphore.acquire() => permit.map_err(|_| GraphError::Cancelled)?,
        };
        let mut retries = 0;
        let mut refreshed = false;
        loop {
            if self.cancel.is_cancelled() {
                return Err(GraphError::Cancelled);
            }
            if let Some(brake) = self.brakes.get(pool.index()) {
                tokio::select! {
                    () = self.cancel.cancelled() => return Err(GraphError::Cancelled),
                    () = brake.wait() => {}
                }
            }
            if pool == Pool::Reports {
                tokio::select! {
                    () = self.cancel.cancelled() => return Err(GraphError::Cancelled),
                    () = self.reports.acquire(cost) => {}
                }
            }
            let token = self.tokens.token().await?;
            self.metrics
                .graph_pool_requests
                .with_label_values(&[&self.tenant, pool.as_str()])
                .inc();
            match self
                .attempt(method.clone(), url, body, token.bearer(), pool)
                .await
            {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(err) => return Err(err),
                Attempt::Unauthorized if !refreshed => {
                    refreshed = true;
                    self.tokens.invalidate(&token).await;
                }
                Attempt::Unauthorized => {
                    return Err(GraphError::Http {
                        status: 401,
                        code: "InvalidAuthenticationToken".to_owned(),
                    })
                }
                Attempt::Retry(wait, err) => {
                    if retries >= self.policy.max_retries || !self.take_retry(pool) {
                        return Err(err);
                    }
                    let delay = wait.unwrap_or_else(|| self.policy.backoff(retries));
                    retries += 1;
                    tracing::debug!(tenant = %self.tenant, error = %err, ?delay, "Retrying Graph request");
                    self.wait(delay).await?;
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        bearer: &str,
        pool: Pool,
    ) -> Attempt {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(bearer)
            .header("client-request-id", uuid::Uuid::new_v4().to_string())
            .header("x-ms-throttle-priority", "low")
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = tokio::select! {
            () = self.cancel.cancelled() => return Attempt::Fail(GraphError::Cancelled),
            response = request.send() => response,
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.count("0");
                return Attempt::Retry(None, GraphError::Transport(e.without_url().to_string()));
            }
        };
        let status = response.status();
        self.count(status.as_str());
        if let Some(share) = response
            .headers()
            .get(limit_warning::HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(limit_warning::parse_share)
        {
            self.heed_limit_warning(share, pool);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| self.policy.retry_after(Some(v)));
        if status.is_success() {
            if let Err(err) = json_content_type(response.headers()) {
                return Attempt::Fail(err);
            }
        }
        let bytes = match bounded_body(response).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Attempt::Fail(GraphError::Malformed(format!(
                    "answer larger than {MAX_BODY_BYTES} bytes"
                )))
            }
            Err(BodyError::Transport(e)) => {
                return Attempt::Retry(None, GraphError::Transport(e.without_url().to_string()))
            }
        };
        self.classify(status, retry_after, &bytes, pool)
    }

    fn classify(
        &self,
        status: StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
        pool: Pool,
    ) -> Attempt {
        let code = status.as_u16();
        if status.is_success() {
            if body.is_empty() {
                return Attempt::Done(Value::Null);
            }
            return match serde_json::from_slice(body) {
                Ok(value) => Attempt::Done(value),
                Err(e) => Attempt::Fail(GraphError::Malformed(format!("invalid JSON: {e}"))),
            };
        }
        let http = GraphError::Http {
            status: code,
            code: graph_error_code(body),
        };
        match code {
            401 => Attempt::Unauthorized,
            429 => {
                self.count_throttled(pool, retry_after);
                Attempt::Retry(retry_after, GraphError::Throttled)
            }
            503 if retry_after.is_some() => {
                self.count_throttled(pool, None);
                Attempt::Retry(retry_after, http)
            }
            500 | 502 | 503 | 504 => Attempt::Retry(None, http),
            _ => Attempt::Fail(http),
        }
    }

    fn count(&self, code: &str) {
        self.metrics
            .graph_requests
            .with_label_values(&[&self.tenant, code])
            .inc();
    }
}
