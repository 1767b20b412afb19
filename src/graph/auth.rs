//! Access tokens for one tenant: client credentials with a client secret or a certificate
//! (client assertion), or delegated refresh tokens with rotation persisted through a
//! [`RefreshTokenStore`]. A single-flight cache refreshes ahead of expiry, and once after Graph
//! rejected a token (401).
//!
//! Hand-written on reqwest rather than the `oauth2` crate: that crate has no `private_key_jwt`,
//! drops `error_codes`, and has no cache; what is left is one form POST.

use super::assertion::CertificateCredential;
use super::errors::{AuthError, OAuthErrorBody};
use super::retry::RetryPolicy;
use crate::config::{Secret, TenantAuth, TenantConfig};
use crate::metrics::Metrics;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where delegated refresh tokens live between runs (the state file).
pub trait RefreshTokenStore: Send + Sync {
    /// The stored refresh token of a tenant (by tenant name).
    fn load(&self, tenant: &str) -> Option<Secret>;
    /// Replaces the stored refresh token of a tenant; must be durable before it returns.
    fn save(&self, tenant: &str, token: &Secret) -> Result<(), String>;
}

/// A store that holds nothing: for app-only tenants and tests.
#[derive(Debug, Default)]
pub struct NoRefreshTokens;

impl RefreshTokenStore for NoRefreshTokens {
    fn load(&self, _tenant: &str) -> Option<Secret> {
        None
    }
    fn save(&self, _tenant: &str, _token: &Secret) -> Result<(), String> {
        Err("no refresh token store configured".to_owned())
    }
}

/// How the agent proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Client secret (sent in the body).
    ClientSecret(Secret),
    /// Certificate: a fresh client assertion per token request.
    Certificate(CertificateCredential),
    /// Delegated: a public client using the stored refresh token.
    Delegated,
}

impl Credential {
    /// Reads the credential files named by the tenant config.
    pub fn from_config(auth: &TenantAuth) -> Result<Self, AuthError> {
        match auth {
            TenantAuth::ClientSecret { secret_file } => Secret::from_file(secret_file)
                .map(Self::ClientSecret)
                .map_err(|e| {
                    AuthError::Credential(format!("reading {}: {e}", secret_file.display()))
                }),
            TenantAuth::Certificate {
                certificate_file,
                private_key_file,
            } => CertificateCredential::from_files(certificate_file, private_key_file)
                .map(Self::Certificate),
            TenantAuth::Delegated => Ok(Self::Delegated),
        }
    }
}

/// An access token and when the cache stops using it.
#[derive(Clone)]
pub struct AccessToken {
    value: Secret,
    refresh_at: Instant,
    generation: u64,
}

impl AccessToken {
    /// The bearer value, for the `Authorization` header only.
    pub fn bearer(&self) -> &str {
        self.value.expose()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken(generation {})", self.generation)
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(deserialize_with = "number_or_string")]
    expires_in: u64,
    #[serde(default)]
    refresh_token: Option<String>,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(u64),
        Text(String),
    }
    match NumOrText::deserialize(d)? {
        NumOrText::Num(n) => Ok(n),
        NumOrText::Text(t) => t.parse().map_err(serde::de::Error::custom),
    }
}

/// Endpoints and identity of one tenant's token requests.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    /// Tenant name (metrics label, refresh-token store key).
    pub tenant_name: String,
    /// Application (client) id.
    pub client_id: String,
    /// `{authority}/{tenant}/oauth2/v2.0/token`.
    pub token_url: String,
    /// `{authority}/{tenant}/oauth2/v2.0/devicecode`.
    pub device_code_url: String,
    /// `{graph}/.default` (app-only) or `offline_access {graph}/.default` (delegated).
    pub scope: String,
}

impl TokenEndpoint {
    /// The endpoints of a tenant from its config.
    pub fn for_tenant(tenant: &TenantConfig) -> Self {
        let base = format!("{}/{}/oauth2/v2.0", tenant.authority_url, tenant.tenant_id);
        let default_scope = format!("{}/.default", tenant.graph_url);
        let scope = match tenant.auth {
            TenantAuth::Delegated => format!("offline_access {default_scope}"),
            _ => default_scope,
        };
        Self {
            tenant_name: tenant.name.clone(),
            client_id: tenant.client_id.clone(),
            token_url: format!("{base}/token"),
            device_code_url: format!("{base}/devicecode"),
            scope,
        }
    }
}

/// The token source of one tenant: credential, cache and refresh-token rotation.
pub struct TokenProvider {
    http: reqwest::Client,
    endpoint: TokenEndpoint,
    credential: Credential,
    store: Arc<dyn RefreshTokenStore>,
    metrics: Metrics,
    cache: tokio::sync::Mutex<Option<AccessToken>>,
    generation: AtomicU64,
}

impl TokenProvider {
    /// The first three characters of a client secret, as Entra shows them in the app's
    /// `passwordCredentials[].hint`; `None` for other credentials. Only compared, never logged.
    pub fn secret_hint(&self) -> Option<String> {
        match &self.credential {
            Credential::ClientSecret(secret) => Some(secret.expose().chars().take(3).collect()),
            _ => None,
        }
    }

    /// A provider for one tenant. Nothing is requested until [`TokenProvider::token`].
    pub fn new(
        http: reqwest::Client,
        endpoint: TokenEndpoint,
        credential: Credential,
        store: Arc<dyn RefreshTokenStore>,
        metrics: Metrics,
    ) -> Self {
        if let Credential::Certificate(cert) = &credential {
            if let Some(expiry) = cert.not_after() {
                metrics
                    .credential_expiry
                    .with_label_values(&[&endpoint.tenant_name])
                    .set(expiry.timestamp());
            }
        }
        Self {
            http,
            endpoint,
            credential,
            store,
            metrics,
            cache: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    /// The endpoints this provider uses.
    pub fn endpoint(&self) -> &TokenEndpoint {
        &self.endpoint
    }

    /// A valid token: the cached one unless it is close to expiry. Concurrent callers wait for
    /// one request (single flight).
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        let mut cached = self.cache.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.clone());
            }
        }
        let fresh = self.request_token().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `rejected` from the cache (Graph answered 401 with it), so the next
    /// [`TokenProvider::token`] fetches a new one. A token already replaced is left alone.
    pub async fn invalidate(&self, rejected: &AccessToken) {
        let mut cached = self.cache.lock().await;
        if cached
            .as_ref()
            .is_some_and(|t| t.generation == rejected.generation)
        {
            *cached = None;
        }
    }

    async fn request_token(&self) -> Result<AccessToken, AuthError> {
        let policy = RetryPolicy {
            max_retries: 3,
            ..RetryPolicy::default()
        };
        let mut retry = 0;
        loop {
            let form = self.form()?;
            match self.post_form(&form).await {
                Err(TokenAttempt::Transient(err)) if retry < policy.max_retries => {
                    tracing::warn!(tenant = %self.endpoint.tenant_name, error = %err, "Token request failed, retrying");
                    tokio::time::sleep(policy.backoff(retry)).await;
                    retry += 1;
                }
                Err(TokenAttempt::Transient(err) | TokenAttempt::Final(err)) => return Err(err),
                Ok(response) => return self.accept(response),
            }
        }
    }

    fn form(&self) -> Result<Vec<(&'static str, String)>, AuthError> {
        let mut form = vec![
            ("client_id", self.endpoint.client_id.clone()),
            ("scope", self.endpoint.scope.clone()),
        ];
        match &self.credential {
            Credential::ClientSecret(secret) => {
                form.push(("grant_type", "client_credentials".to_owned()));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            Credential::Certificate(cert) => {
                #[allow(clippy::disallowed_methods)] // the assertion's nbf/exp need wall time
                let now = chrono::Utc::now();
                let jwt =
                    cert.assertion(&self.endpoint.client_id, &self.endpoint.token_url, now)?;
                form.push(("grant_type", "client_credentials".to_owned()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", jwt));
            }
            Credential::Delegated => {
                let refresh = self
                    .store
                    .load(&self.endpoint.tenant_name)
                    .ok_or_else(|| AuthError::NoRefreshToken(self.endpoint.tenant_name.clone()))?;
                form.push(("grant_type", "refresh_token".to_owned()));
                form.push(("refresh_token", refresh.expose().to_owned()));
            }
        }
        Ok(form)
    }

    async fn post_form(&self, form: &[(&str, String)]) -> Result<TokenResponse, TokenAttempt> {
        post_token_form(&self.http, &self.metrics, &self.endpoint, form).await
    }

    fn accept(&self, response: TokenResponse) -> Result<AccessToken, AuthError> {
        if let Some(rotated) = response.refresh_token {
            if matches!(self.credential, Credential::Delegated) {
                self.store
                    .save(&self.endpoint.tenant_name, &Secret::new(rotated))
                    .map_err(AuthError::StoreFailed)?;
            }
        }
        let lifetime = Duration::from_secs(response.expires_in);
        let margin = (lifetime / 4).min(Duration::from_secs(300));
        Ok(AccessToken {
            value: Secret::new(response.access_token),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
        })
    }
}

/// The outcome of one token-endpoint request that did not give a token.
pub(crate) enum TokenAttempt {
    /// Worth retrying (transport error, 5xx, 429, `temporarily_unavailable`).
    Transient(AuthError),
    /// Not worth retrying.
    Final(AuthError),
}

/// Posts a form to the token endpoint and reads a token, counting the request in metrics.
pub(crate) async fn post_token_form<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    metrics: &Metrics,
    endpoint: &TokenEndpoint,
    form: &[(&str, String)],
) -> Result<T, TokenAttempt> {
    let count = |code: &str| {
        metrics
            .graph_requests
            .with_label_values(&[&endpoint.tenant_name, code])
            .inc();
    };
    let response = match http.post(&endpoint.token_url).form(form).send().await {
        Ok(r) => r,
        Err(e) => {
            count("0");
            return Err(TokenAttempt::Transient(AuthError::Transport(
                e.without_url().to_string(),
            )));
        }
    };
    let status = response.status().as_u16();
    count(&status.to_string());
    let body = response
        .bytes()
        .await
        .map_err(|e| TokenAttempt::Transient(AuthError::Transport(e.without_url().to_string())))?;
    if status == 200 {
        return serde_json::from_slice(&body).map_err(|_| {
            TokenAttempt::Final(AuthError::Transport(
                "token response is not the expected JSON".to_owned(),
            ))
        });
    }
    let transient = status == 429 || status >= 500;
    let err = match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(oauth) if !oauth.error.is_empty() => {
            let busy = oauth.error == "temporarily_unavailable";
            let err = oauth.into_auth_error();
            return Err(if transient || busy {
                TokenAttempt::Transient(err)
            } else {
                TokenAttempt::Final(err)
            });
        }
        _ => AuthError::Http(status),
    };
    Err(if transient {
        TokenAttempt::Transient(err)
    } else {
        TokenAttempt::Final(err)
    })
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
