//! `m365-posture consent --tenant NAME`: device-code sign-in for a delegated tenant; the
//! refresh token is stored through the [`RefreshTokenStore`] (the state file) and rotated by
//! every later scan.
//!
//! [`run`] is the command line: it prints the verification URL and user code on standard
//! error, waits for the sign-in (Ctrl-C cancels) and exits 0 when the token is stored, 1 when
//! the sign-in failed (cause in words, with the AADSTS code), 64 when the tenant is unknown or
//! not delegated and 78 on a bad config.

use super::exit;
use crate::cli::ConsentArgs;
use crate::config::{Config, TenantAuth, TenantConfig};
use crate::graph::auth::TokenEndpoint;
use crate::graph::client::http_client;
use crate::graph::device_code::{self, DevicePrompt};
use crate::graph::{AuthError, GraphError, RefreshTokenStore};
use crate::metrics::{Metrics, MetricsError};
use crate::state::Store;
use std::path::Path;
use std::process::ExitCode;
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

impl ConsentError {
    /// The process exit code: 64 for a tenant that is unknown or not delegated, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownTenant(_) | Self::NotDelegated(_) => exit::USAGE,
            _ => exit::FAILURE,
        }
    }
}

/// The configured tenant named `tenant`, when it uses `auth = "delegated"`.
pub fn delegated_tenant<'a>(
    config: &'a Config,
    tenant: &str,
) -> Result<&'a TenantConfig, ConsentError> {
    let tenant_config = config
        .tenants
        .iter()
        .find(|t| t.name == tenant)
        .ok_or_else(|| ConsentError::UnknownTenant(tenant.to_owned()))?;
    if tenant_config.auth != TenantAuth::Delegated {
        return Err(ConsentError::NotDelegated(tenant.to_owned()));
    }
    Ok(tenant_config)
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
    let tenant_config = delegated_tenant(config, tenant)?;
    let http = http_client(Duration::from_secs(30))?;
    let metrics = Metrics::new()?;
    let endpoint = TokenEndpoint::for_tenant(tenant_config);
    let prompt = device_code::start(&http, &metrics, &endpoint).await?;
    show(&prompt);
    device_code::poll(&http, &metrics, &endpoint, &prompt, store, cancel).await?;
    Ok(())
}

/// Runs `consent` from the command line: instructions and errors on standard error.
pub fn run(args: &ConsentArgs) -> ExitCode {
    let config = match super::load_config(&args.config.path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(err) = delegated_tenant(&config, &args.tenant) {
        eprintln!("m365-posture: {err}");
        return ExitCode::from(err.exit_code());
    }
    let state_path = &config.state.path;
    let store = match Store::open(state_path) {
        Ok(store) => store,
        Err(err) => {
            eprintln!(
                "m365-posture: cannot open the state file {}: {err}",
                state_path.display()
            );
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(consent_until_interrupted(&config, &args.tenant, &store)),
        Err(err) => {
            eprintln!("m365-posture: cannot start the async runtime: {err}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    report(&args.tenant, state_path, result)
}

/// Tells the admin how consent ended and gives the exit code.
fn report(tenant: &str, state_path: &Path, result: Result<(), ConsentError>) -> ExitCode {
    match result {
        Ok(()) => {
            eprintln!(
                "Signed in. The refresh token of tenant {tenant:?} is stored in {}; `scan` and \
                 `run` use it from now on.",
                state_path.display()
            );
            ExitCode::from(exit::OK)
        }
        Err(ConsentError::Auth(AuthError::Cancelled)) => {
            eprintln!("m365-posture: sign-in cancelled; nothing was stored");
            ExitCode::from(exit::FAILURE)
        }
        Err(err) => {
            eprintln!("m365-posture: consent for tenant {tenant:?} failed: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// [`consent`] with [`print_prompt`], ended early by Ctrl-C (then `AuthError::Cancelled`).
async fn consent_until_interrupted(
    config: &Config,
    tenant: &str,
    store: &Store,
) -> Result<(), ConsentError> {
    let cancel = CancellationToken::new();
    let interrupted = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler: the sign-in can only end by itself.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = consent(config, tenant, store, |prompt| print_prompt(tenant, prompt), &cancel) => result,
        () = interrupted => {
            cancel.cancel();
            Err(ConsentError::Auth(AuthError::Cancelled))
        }
    }
}

/// Tells the admin where to sign in, on standard error.
fn print_prompt(tenant: &str, prompt: &DevicePrompt) {
    let expires = humantime::format_duration(Duration::from_secs(prompt.expires_in));
    eprintln!(
        "To let m365-posture read tenant {tenant:?} with your sign-in:\n  \
         1. Open {} in a web browser.\n  \
         2. Enter the code {} and sign in as an administrator of the tenant.\n\
         The code expires in {expires}. Waiting for the sign-in (Ctrl-C cancels)...",
        prompt.verification_uri, prompt.user_code
    );
}
