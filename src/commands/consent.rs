//! `m365-posture consent --tenant NAME`: device-code sign-in for a delegated tenant; the
//! refresh token is stored through the [`RefreshTokenStore`] (the state file) and rotated by
//! every later scan.

use crate::config::{Config, TenantAuth};
use crate::graph::auth::TokenEndpoint;
use crate::graph::client::http_client;
use crate::graph::device_code::{self, DevicePrompt};
use crate::graph::{AuthError, GraphError, RefreshTokenStore};
use crate::metrics::{Metrics, MetricsError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why consent failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// `--tenant` names no configured tenant.
    #[error("no tenant named {0:?} in the config")]
    UnknownTenant(String),
    /// The tenant uses client credentials; consent is for `auth = "delegated"`.
    #[error("tenant {0:?} does not use delegated auth; consent is only for auth = \"delegated\"")]
    NotDelegated(String),
    /// The sign-in failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Http(#[from] GraphError),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Runs the device-code sign-in for `tenant`: `show` gets the prompt (print its `message`),
/// then this polls until the admin signs in and stores the refresh token.
pub async fn consent(
    config: &Config,
    tenant: &str,
    store: &dyn RefreshTokenStore,
    show: impl FnOnce(&DevicePrompt),
    cancel: &CancellationToken,
) -> Result<(), ConsentError> {
    let tenant_config = config
        .tenants
        .iter()
        .find(|t| t.name == tenant)
        .ok_or_else(|| ConsentError::UnknownTenant(tenant.to_owned()))?;
    if tenant_config.auth != TenantAuth::Delegated {
        return Err(ConsentError::NotDelegated(tenant.to_owned()));
    }
    let http = http_client(Duration::from_secs(30))?;
    let metrics = Metrics::new()?;
    let endpoint = TokenEndpoint::for_tenant(tenant_config);
    let prompt = device_code::start(&http, &metrics, &endpoint).await?;
    show(&prompt);
    device_code::poll(&http, &metrics, &endpoint, &prompt, store, cancel).await?;
    Ok(())
}
