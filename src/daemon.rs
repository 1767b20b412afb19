//! The daemon's lifecycle: opens the state, binds the metrics listener, starts the scheduler,
//! tells systemd it is ready, feeds the watchdog, reloads the config on SIGHUP (validated
//! first; the old config stays on error) and stops on SIGTERM/SIGINT within a grace period.
//!
//! Every task is spawned on one `TaskTracker` with a child of one `CancellationToken`. An
//! unfinished scan commits nothing when cancelled; a commit that already started finishes
//! (it is one short transaction).

use crate::config::Config;
use crate::config::SinkConfig;
use crate::metrics::{Metrics, MetricsError};
use crate::scan::{run_scheduler, ScanEnv, TenantScanner};
use crate::sinks::listener::{serve, ListenerOptions};
use crate::sinks::metrics::{Scope, StateCollector};
use crate::state::{StateError, Store};
use prometheus::{Gauge, IntGauge};
use sd_notify::NotifyState;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Errors starting or running the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state file could not be opened.
    #[error("cannot open state: {0}")]
    State(#[from] StateError),
    /// The metrics listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The configured address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Metrics registration failed.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Loads and validates a config file (the reload path); the error lists every problem.
pub type ConfigLoader = Arc<dyn Fn(&Path) -> Result<Config, String> + Send + Sync>;

/// A running daemon.
pub struct Daemon {
    /// Where `/metrics` listens (the bound address, useful with port 0).
    pub metrics_addr: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
    ready: Arc<AtomicBool>,
    config_tx: watch::Sender<Arc<Config>>,
    scope: Arc<RwLock<Scope>>,
    reload_ok: IntGauge,
    reload_time: Gauge,
    store: Store,
    sinks: Mutex<SinkWorkers>,
    scanner: Arc<dyn TenantScanner>,
}

impl Daemon {
    /// With the state opened ([`Store::open`]): registers the sinks' outbox cursors, binds the
    /// listener, starts the HTTP server, the sink workers and the scheduler, and sends `READY=1`.
    pub async fn start(
        config: Config,
        store: Store,
        metrics: Metrics,
        scanner: Arc<dyn TenantScanner>,
    ) -> Result<Self, DaemonError> {
        Self::start_with(config, store, metrics, scanner, ListenerOptions::default()).await
    }

    /// [`Daemon::start`] with the listener's web config (TLS, basic auth) and limits.
    pub async fn start_with(
        config: Config,
        store: Store,
        metrics: Metrics,
        scanner: Arc<dyn TenantScanner>,
        listener_options: ListenerOptions,
    ) -> Result<Self, DaemonError> {
        let sink_names = sink_names(&config.sinks);
        metrics.touch(&tenant_names(&config), &sink_names);
        let registering = store.clone();
        tokio::task::spawn_blocking(move || registering.register_sinks(&sink_names)).await??;
        let scope = StateCollector::register(store.clone(), Scope::of(&config), &metrics)?;
        let (reload_ok, reload_time) = reload_gauges(&metrics)?;
        let addr = config.metrics.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Listen { addr, source })?;
        let metrics_addr = listener
            .local_addr()
            .map_err(|source| DaemonError::Listen { addr, source })?;
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let ready = Arc::new(AtomicBool::new(true));
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        tracker.spawn(serve(
            listener,
            metrics.clone(),
            Arc::clone(&ready),
            listener_options,
            cancel.child_token(),
            tracker.clone(),
        ));
        let mut sinks = SinkWorkers {
            running: BTreeMap::new(),
            wake: Arc::new(Notify::new()),
            state_path: config_tx.borrow().state.path.clone(),
            metrics: metrics.clone(),
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        };
        sinks.sync(&config_tx.borrow().sinks);
        let env = ScanEnv {
            store: store.clone(),
            metrics,
            scanner: Arc::clone(&scanner),
            config: config_rx,
            outbox_wake: Arc::clone(&sinks.wake),
        };
        tracker.spawn(run_scheduler(env, cancel.child_token(), tracker.clone()));
        tracker.spawn(watchdog(store.clone(), cancel.child_token()));
        tracing::info!(metrics = %metrics_addr, "Daemon ready");
        notify(&[NotifyState::Ready]);
        Ok(Self {
            metrics_addr,
            cancel,
            tracker,
            ready,
            config_tx,
            scope,
            reload_ok,
            reload_time,
            store,
            sinks: Mutex::new(sinks),
            scanner,
        })
    }

    /// Applies a new, already validated config: tenants start and stop, intervals, sinks,
    /// suppressions, severities and the collection settings (`[scan]`, `[dns]`, `[checks]`)
    /// take effect for the next scans. The state path and the listen address need a
    /// restart. Fails (keeping the old config) only if the sink cursors cannot be updated.
    pub fn apply_config(&self, config: Config) -> Result<(), String> {
        let current = self.config_tx.borrow().clone();
        if config.state.path != current.state.path
            || config.metrics.listen != current.metrics.listen
        {
            tracing::warn!("State path or metrics listen address changed; takes effect on restart");
        }
        self.store
            .register_sinks(&sink_names(&config.sinks))
            .map_err(|err| err.to_string())?;
        if let Ok(mut sinks) = self.sinks.lock() {
            sinks
                .metrics
                .touch(&tenant_names(&config), &sink_names(&config.sinks));
            sinks.sync(&config.sinks);
        }
        if let Ok(mut scope) = self.scope.write() {
            *scope = Scope::of(&config);
        }
        let config = Arc::new(config);
        // Collection settings first, so the scans the new config starts use them.
        self.scanner.reconfigure(Arc::clone(&config));
        self.config_tx.send_replace(config);
        self.reload_ok.set(1);
        self.reload_time
            .set(crate::scan::clock_now().timestamp_millis() as f64 / 1000.0);
        Ok(())
    }

    /// Reloads the config file; on error the old config stays and the error is returned.
    pub fn reload(&self, path: &Path, loader: &ConfigLoader) -> Result<(), String> {
        notify_reloading();
        let result = loader(path).and_then(|config| self.apply_config(config));
        match &result {
            Ok(()) => tracing::info!(path = %path.display(), "Config reloaded"),
            Err(err) => {
                self.reload_ok.set(0);
                tracing::error!(path = %path.display(), error = %err, "Config reload failed; keeping the old config");
            }
        }
        notify(&[NotifyState::Ready]);
        result
    }

    /// Stops: cancels every task, and waits up to `grace` for them to finish. Unfinished scans
    /// commit nothing; undelivered events stay in the outbox.
    pub async fn shutdown(self, grace: Duration) {
        notify(&[NotifyState::Stopping]);
        self.ready.store(false, Ordering::SeqCst);
        self.cancel.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(grace = ?grace, "Tasks still running after the grace period; exiting");
        } else {
            tracing::info!("Stopped cleanly");
        }
    }

    /// The config currently in force.
    pub fn config(&self) -> Arc<Config> {
        self.config_tx.borrow().clone()
    }
}

/// Runs the daemon until SIGTERM or SIGINT, reloading on SIGHUP.
pub async fn run_until_signalled(
    daemon: Daemon,
    config_path: &Path,
    loader: ConfigLoader,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = daemon.reload(config_path, &loader);
            }
        }
    }
    tracing::info!("Stopping");
    let grace = daemon.config().scan.shutdown_grace;
    daemon.shutdown(grace).await;
    Ok(())
}

fn tenant_names(config: &Config) -> Vec<String> {
    config.tenants.iter().map(|t| t.name.clone()).collect()
}

fn sink_names(sinks: &[SinkConfig]) -> Vec<String> {
    sinks.iter().map(|s| s.name.clone()).collect()
}

/// One delivery worker per configured sink; restarted when its config changes.
struct SinkWorkers {
    running: BTreeMap<String, (SinkConfig, CancellationToken)>,
    wake: Arc<Notify>,
    state_path: PathBuf,
    metrics: Metrics,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl SinkWorkers {
    fn sync(&mut self, sinks: &[SinkConfig]) {
        self.running.retain(|name, (running, token)| {
            let keep = sinks.iter().any(|s| s == running);
            if !keep {
                tracing::info!(sink = %name, "Stopping the sink worker");
                token.cancel();
            }
            keep
        });
        let starting: Vec<&SinkConfig> = sinks
            .iter()
            .filter(|s| !self.running.contains_key(&s.name))
            .collect();
        for sink in starting {
            let token = self.cancel.child_token();
            self.running
                .insert(sink.name.clone(), (sink.clone(), token.clone()));
            self.tracker.spawn(crate::sinks::run_sink(
                sink.clone(),
                self.state_path.clone(),
                self.metrics.clone(),
                Arc::clone(&self.wake),
                token,
            ));
        }
    }
}

fn reload_gauges(metrics: &Metrics) -> Result<(IntGauge, Gauge), MetricsError> {
    let ok = IntGauge::new(
        "m365_posture_config_last_reload_successful",
        "Whether the last config reload succeeded (1 at start).",
    )?;
    let at = Gauge::new(
        "m365_posture_config_last_reload_success_timestamp_seconds",
        "When the config was last loaded successfully (Unix time).",
    )?;
    ok.set(1);
    at.set(crate::scan::clock_now().timestamp_millis() as f64 / 1000.0);
    metrics.registry.register(Box::new(ok.clone()))?;
    metrics.registry.register(Box::new(at.clone()))?;
    Ok((ok, at))
}

/// Feeds the systemd watchdog at half its period while the state file answers.
async fn watchdog(store: Store, cancel: CancellationToken) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let period = Duration::from_micros(usec / 2);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        let store = store.clone();
        let healthy =
            tokio::time::timeout(period, tokio::task::spawn_blocking(move || store.ping())).await;
        if matches!(healthy, Ok(Ok(Ok(())))) {
            notify(&[NotifyState::Watchdog]);
        } else {
            tracing::warn!("State file did not answer; withholding the watchdog ping");
        }
    }
}

fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// Sends a notification to systemd when running under it; a no-op otherwise.
fn notify(state: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(false, state) {
        tracing::debug!(error = %err, "sd_notify failed");
    }
}
