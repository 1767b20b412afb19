//! `m365-posture run`: the daemon. Opens the state file, builds the Graph and DNS collector
//! (with the state file as the delegated refresh-token store), starts [`Daemon`] and runs it
//! until SIGTERM or SIGINT; SIGHUP reloads the config through the same loader as startup.
//!
//! Exit codes: 0 clean stop, 1 runtime failure (state, listener), 78 bad config.

use super::{exit, load_config};
use crate::cli::RunArgs;
use crate::collect::{collect_tenant, CollectContext, CollectError};
use crate::config::{self, Config, TenantConfig};
use crate::daemon::{run_until_signalled, ConfigLoader, Daemon, DaemonError};
use crate::metrics::{Metrics, MetricsError};
use crate::scan::{CollectAndEvaluate, CollectedSnapshot, SnapshotSource, TenantScanner};
use crate::sinks::listener::ListenerOptions;
use crate::sinks::web_config::WebConfig;
use crate::state::{StateError, Store};
use futures::future::BoxFuture;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The `--web.config.file` is unusable.
    #[error(transparent)]
    WebConfig(#[from] crate::sinks::web_config::WebConfigError),
    /// The config lists no tenants.
    #[error("the config lists no tenants; run needs at least one")]
    NoTenants,
    /// The state file could not be opened.
    #[error("cannot open state {path}: {source}")]
    State {
        /// The state file.
        path: String,
        /// Why.
        source: StateError,
    },
    /// Collection could not be set up.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The daemon failed to start or run.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl RunError {
    /// The process exit code: 78 for a config problem, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NoTenants | Self::WebConfig(_) => exit::CONFIG,
            _ => exit::FAILURE,
        }
    }
}

/// The `run` subcommand: loads the config, builds a runtime and runs the daemon.
pub fn command(args: &RunArgs) -> ExitCode {
    let mut config = match load_config(&args.config.path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Some(listen) = args.web_listen_address {
        config.metrics.listen = listen;
    }
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let listener = ListenerOptions {
        web_config: args.web_config_file.clone(),
        ..ListenerOptions::default()
    };
    match runtime.block_on(run(
        &args.config.path,
        config,
        listener,
        args.web_listen_address,
    )) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            tracing::error!(error = %err, "Daemon failed");
            eprintln!("m365-posture: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// Runs the daemon with `config` (already loaded from `config_path`) and the listener's web
/// config (checked here once, so a bad file exits 78 before anything starts) until a stop
/// signal; `listen`, from `--web.listen-address`, replaces `[metrics] listen` of reloaded
/// configs too.
pub async fn run(
    config_path: &Path,
    config: Config,
    listener: ListenerOptions,
    listen: Option<std::net::SocketAddr>,
) -> Result<(), RunError> {
    if config.tenants.is_empty() {
        return Err(RunError::NoTenants);
    }
    if let Some(path) = &listener.web_config {
        WebConfig::load(path)?;
    }
    let path = config.state.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path))
        .await?
        .map_err(|source| RunError::State {
            path: config.state.path.display().to_string(),
            source,
        })?;
    let metrics = Metrics::new()?;
    let scanner = graph_scanner(&config, &store, &metrics)?;
    let daemon = Daemon::start_with(config, store, metrics, scanner, listener).await?;
    let loader: ConfigLoader = Arc::new(move |path: &Path| {
        let mut config = config::load(path).map_err(|err| err.to_string())?;
        if let Some(listen) = listen {
            config.metrics.listen = listen;
        }
        if config.tenants.is_empty() {
            return Err(RunError::NoTenants.to_string());
        }
        Ok(config)
    });
    run_until_signalled(daemon, config_path, loader).await?;
    Ok(())
}

/// The daemon's scanner: Graph and DNS collection (the state file keeps delegated refresh
/// tokens) followed by every check.
pub fn graph_scanner(
    config: &Config,
    store: &Store,
    metrics: &Metrics,
) -> Result<Arc<dyn TenantScanner>, CollectError> {
    let collect = CollectContext::new(
        Arc::new(config.clone()),
        metrics.clone(),
        Arc::new(store.clone()),
    )?;
    Ok(Arc::new(CollectAndEvaluate(GraphSource(collect))))
}

/// Microsoft Graph and DNS collection as the daemon's [`SnapshotSource`].
struct GraphSource(CollectContext);

impl SnapshotSource for GraphSource {
    fn collect<'a>(
        &'a self,
        tenant: &'a TenantConfig,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, CollectedSnapshot> {
        Box::pin(async move {
            let report = collect_tenant(&self.0, tenant, cancel).await;
            CollectedSnapshot {
                snapshot: report.snapshot,
                error: report.error,
            }
        })
    }
}
