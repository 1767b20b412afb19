//! The device-code sign-in behind `m365-posture consent`: ask for a user code, show the
//! message, poll the token endpoint at the given interval (`slow_down` adds five seconds), and
//! store the refresh token of the signed-in admin.

use super::auth::{post_token_form, RefreshTokenStore, TokenAttempt, TokenEndpoint};
use super::errors::AuthError;
use crate::config::Secret;
use crate::metrics::Metrics;
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the user must do, from the `/devicecode` answer.
#[derive(Clone, Deserialize)]
pub struct DevicePrompt {
    /// Opaque code the agent polls with (never shown).
    device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Polling interval in seconds.
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// Microsoft's instruction text.
    #[serde(default)]
    pub message: String,
}

impl std::fmt::Debug for DevicePrompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicePrompt")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

fn default_interval() -> u64 {
    5
}

#[derive(Deserialize)]
struct DeviceToken {
    refresh_token: Option<String>,
}

/// Starts a device-code sign-in for a delegated tenant.
pub async fn start(
    http: &reqwest::Client,
    metrics: &Metrics,
    endpoint: &TokenEndpoint,
) -> Result<DevicePrompt, AuthError> {
    let form = [
        ("client_id", endpoint.client_id.clone()),
        ("scope", endpoint.scope.clone()),
    ];
    let devicecode = TokenEndpoint {
        token_url: endpoint.device_code_url.clone(),
        ..endpoint.clone()
    };
    post_token_form(http, metrics, &devicecode, &form)
        .await
        .map_err(|(TokenAttempt::Transient(e) | TokenAttempt::Final(e))| e)
}

/// Polls until the user approves, declines or the code expires; on approval stores the
/// refresh token through `store` under the tenant name.
pub async fn poll(
    http: &reqwest::Client,
    metrics: &Metrics,
    endpoint: &TokenEndpoint,
    prompt: &DevicePrompt,
    store: &dyn RefreshTokenStore,
    cancel: &CancellationToken,
) -> Result<(), AuthError> {
    let form = [
        ("client_id", endpoint.client_id.clone()),
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:device_code".to_owned(),
        ),
        ("device_code", prompt.device_code.clone()),
    ];
    let mut interval = Duration::from_secs(prompt.interval.max(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(prompt.expires_in);
    loop {
        match post_token_form::<DeviceToken>(http, metrics, endpoint, &form).await {
            Ok(token) => {
                let refresh = token.refresh_token.ok_or_else(|| {
                    AuthError::DeviceCode(
                        "no refresh token returned (offline_access not granted)".to_owned(),
                    )
                })?;
                return store
                    .save(&endpoint.tenant_name, &Secret::new(refresh))
                    .map_err(AuthError::StoreFailed);
            }
            Err(TokenAttempt::Final(AuthError::Refused { error, .. }))
                if error == "authorization_pending" => {}
            Err(TokenAttempt::Final(AuthError::Refused { error, .. })) if error == "slow_down" => {
                interval += Duration::from_secs(5);
            }
            Err(TokenAttempt::Final(AuthError::Refused { error, .. }))
                if error == "authorization_declined" =>
            {
                return Err(AuthError::DeviceCode("sign-in declined".to_owned()));
            }
            Err(TokenAttempt::Final(err)) => return Err(err),
            Err(TokenAttempt::Transient(err)) => {
                tracing::warn!(error = %err, "Device code poll failed, retrying");
            }
        }
        if tokio::time::Instant::now() + interval > deadline {
            return Err(AuthError::DeviceCode(
                "the code expired before sign-in finished".to_owned(),
            ));
        }
        tokio::select! {
            () = cancel.cancelled() => return Err(AuthError::Cancelled),
            () = tokio::time::sleep(interval) => {}
        }
    }
}
