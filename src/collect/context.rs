//! The [`CollectContext`]: what every collection shares and keeps across scans: the config
//! in force (replaced on reload), metrics, the HTTP client, and per tenant its token
//! provider, reports-bucket pacer and progress counters (let go when the tenant is removed).

use super::progress::ScanProgress;
use crate::config::{Config, TenantConfig};
use crate::graph::auth::{Credential, TokenEndpoint};
use crate::graph::client::{http_client, ClientSettings};
use crate::graph::pacer::Pacer;
use crate::graph::retry::RetryPolicy;
use crate::graph::{AuthError, GraphClient, GraphError, RefreshTokenStore, TokenProvider};
use crate::metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Timeout of one HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Retries allowed in one tenant scan, per throttling pool.
const RETRY_BUDGET: u32 = 5_000;
/// The window of Graph's identity reports bucket (10 s), plus slack: Graph counts a request
/// when it arrives and the agent when it sends it, so a window measured from the send alone
/// could reopen a moment before Graph's does.
const REPORTS_WINDOW: Duration = Duration::from_millis(10_500);

/// Errors building a [`CollectContext`].
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    Http(#[from] GraphError),
}

/// Shared state of every collection: config, metrics, refresh-token store, the HTTP client
/// and one token cache per tenant (kept across scans).
pub struct CollectContext {
    /// The validated config in force ([`CollectContext::reconfigure`] on reload).
    config: RwLock<Arc<Config>>,
    /// Metrics to count requests in.
    pub metrics: Metrics,
    /// Where delegated refresh tokens are kept.
    pub tokens: Arc<dyn RefreshTokenStore>,
    http: reqwest::Client,
    providers: Mutex<HashMap<String, (TenantConfig, Arc<TokenProvider>)>>,
    /// The reports-bucket pacer of each tenant, kept across scans (the window is Graph's).
    pacers: Mutex<HashMap<String, Arc<Pacer>>>,
    /// Each tenant's collection progress, for the `scan` command's terminal line.
    progress: Mutex<HashMap<String, Arc<ScanProgress>>>,
}

impl CollectContext {
    /// Builds the context once per process; a reload replaces only its config
    /// ([`CollectContext::reconfigure`]).
    pub fn new(
        config: Arc<Config>,
        metrics: Metrics,
        tokens: Arc<dyn RefreshTokenStore>,
    ) -> Result<Self, CollectError> {
        Ok(Self {
            config: RwLock::new(config),
            metrics,
            tokens,
            http: http_client(REQUEST_TIMEOUT)?,
            providers: Mutex::new(HashMap::new()),
            pacers: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
        })
    }

    /// The config in force: the startup config until a reload replaces it.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A reloaded config takes effect for the next scans: `[scan]`, `[dns]` and `[checks]`.
    pub fn reconfigure(&self, config: Arc<Config>) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    /// Lets go of everything kept for the tenant named `tenant` (removed from the config): its
    /// token provider with the credential and token it holds, its reports-bucket pacer and
    /// its progress counters. Added back, it starts afresh (reading its credential files).
    pub fn forget_tenant(&self, tenant: &str) {
        self.providers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(tenant);
        self.pacers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(tenant);
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(tenant);
    }

    /// The shared HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The token provider of a tenant, created (reading credential files) on first use and
    /// reused while the tenant's config is unchanged.
    pub fn token_provider(&self, tenant: &TenantConfig) -> Result<Arc<TokenProvider>, AuthError> {
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((known, provider)) = providers.get(&tenant.name) {
            if known == tenant {
                return Ok(provider.clone());
            }
        }
        let provider = Arc::new(TokenProvider::new(
            self.http.clone(),
            TokenEndpoint::for_tenant(tenant),
            Credential::from_config(&tenant.auth)?,
            self.tokens.clone(),
            self.metrics.clone(),
        ));
        providers.insert(tenant.name.clone(), (tenant.clone(), provider.clone()));
        Ok(provider)
    }

    /// Forgets a tenant's provider so the next scan re-reads its credential files.
    pub fn forget(&self, tenant: &TenantConfig) {
        let mut providers = self.providers.lock().unwrap_or_else(|p| p.into_inner());
        providers.remove(&tenant.name);
    }

    /// The collection progress of the tenant named `tenant` (counted over every scan).
    pub fn progress(&self, tenant: &str) -> Arc<ScanProgress> {
        let mut progress = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        progress.entry(tenant.to_owned()).or_default().clone()
    }

    /// The reports-bucket pacer of `tenant` (`scan.reports_per_10s` per 10 s).
    fn reports_pacer(&self, tenant: &TenantConfig) -> Arc<Pacer> {
        let limit = self.config().scan.reports_per_10s;
        let mut pacers = self.pacers.lock().unwrap_or_else(|p| p.into_inner());
        let pacer = pacers
            .entry(tenant.name.clone())
            .or_insert_with(|| Arc::new(Pacer::new(limit, REPORTS_WINDOW)));
        if pacer.limit() != usize::try_from(limit).unwrap_or(usize::MAX) {
            *pacer = Arc::new(Pacer::new(limit, REPORTS_WINDOW));
        }
        pacer.clone()
    }

    /// A Graph client for one scan of `tenant`.
    pub fn client(
        &self,
        tenant: &TenantConfig,
        provider: Arc<TokenProvider>,
        cancel: CancellationToken,
    ) -> GraphClient {
        let scan = &self.config().scan;
        let settings = ClientSettings {
            graph_url: tenant.graph_url.clone(),
            tenant: tenant.name.clone(),
            directory_concurrency: scan.directory_concurrency,
            exchange_concurrency: scan.mailbox_concurrency,
            policy: RetryPolicy::default(),
            retry_budget: RETRY_BUDGET,
            reports: self.reports_pacer(tenant),
        };
        GraphClient::new(
            self.http.clone(),
            settings,
            provider,
            self.metrics.clone(),
            cancel,
        )
    }
}
