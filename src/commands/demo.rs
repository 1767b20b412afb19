//! `m365-posture demo`: the zero-setup main job. Starts graph-sim in-process on loopback with a
//! generated tenant, writes a real config (tenant pointed at the simulator, a stdout CEF sink, a
//! temporary state file) and runs the real daemon on it, while the tenant changes every cycle
//! (see [`crate::demo::scenario`]) so findings appear and resolve.

use super::exit;
use super::run::run;
use crate::cli::DemoArgs;
use crate::config;
use crate::demo::scenario;
use graph_sim::{SimHandle, SimOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator did not start.
    #[error("cannot start graph-sim: {0}")]
    Simulator(String),
    /// The temporary files could not be written.
    #[error("cannot prepare the demo directory {path}: {source}")]
    Files {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The generated config did not validate (a bug).
    #[error("the demo config is invalid: {0}")]
    Config(#[from] config::ConfigError),
    /// The daemon failed.
    #[error(transparent)]
    Run(#[from] super::run::RunError),
}

/// The `demo` subcommand.
pub fn command(args: &DemoArgs) -> ExitCode {
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(demo(args)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(err) => {
            eprintln!("m365-posture demo: {err}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// Runs the demo until SIGINT or SIGTERM.
pub async fn demo(args: &DemoArgs) -> Result<(), DemoError> {
    let mut tenant = graph_sim::generate(args.users, args.seed);
    scenario::apply_step(&mut tenant, 0);
    let sim = graph_sim::start(tenant, SimOptions::default())
        .await
        .map_err(|err| DemoError::Simulator(err.to_string()))?;
    let sim = Arc::new(sim);
    let dir = DemoDir::create()?;
    let config_path = write_config(&dir.0, &sim, args)?;
    let config = config::load(&config_path)?;
    print_banner(&sim, args, &dir.0);
    let stop_changes = CancellationToken::new();
    let changes = tokio::spawn(change_tenant(
        Arc::clone(&sim),
        args.interval,
        stop_changes.clone(),
    ));
    let result = run(&config_path, config, Default::default(), None).await;
    stop_changes.cancel();
    let _ = changes.await;
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
    result.map_err(DemoError::from)
}

/// Applies the next scenario step every interval, half an interval after the scans start.
async fn change_tenant(sim: Arc<SimHandle>, interval: Duration, cancel: CancellationToken) {
    let mut step = 1;
    let mut next = tokio::time::Instant::now() + interval + interval / 2;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let change = sim.mutate(|tenant| scenario::apply_step(tenant, step));
        eprintln!("demo: tenant changed: {change}");
        step += 1;
        next += interval;
    }
}

fn write_config(dir: &Path, sim: &SimHandle, args: &DemoArgs) -> Result<PathBuf, DemoError> {
    let secret = dir.join("client-secret");
    write_private(&secret, graph_sim::DEFAULT_CLIENT_SECRET)?;
    let text = format!(
        r#"# Written by `m365-posture demo`: the daemon against graph-sim on loopback.
[[tenants]]
name = "demo"
tenant_id = "{tenant_id}"
client_id = "{client_id}"
client_secret_file = "{secret}"
authority_url = "{base}"
graph_url = "{base}"

[dns]
servers = ["{dns}"]

[scan]
interval = "{interval}"
timeout = "{timeout}"

[state]
path = "{state}"

[metrics]
listen = "{listen}"

[[sinks]]
name = "stdout"
type = "stdout"
"#,
        tenant_id = sim.tenant_id(),
        client_id = graph_sim::DEFAULT_CLIENT_ID,
        secret = secret.display(),
        base = sim.base_url(),
        dns = sim.dns_addr(),
        interval = humantime::format_duration(args.interval),
        timeout = humantime::format_duration(args.interval.max(Duration::from_secs(60))),
        state = dir.join("state.db").display(),
        listen = args.listen,
    );
    let path = dir.join("config.toml");
    write_private(&path, &text)?;
    Ok(path)
}

fn write_private(path: &Path, text: &str) -> Result<(), DemoError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let files = |source| DemoError::Files {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(files)?;
    file.write_all(text.as_bytes()).map_err(files)
}

fn print_banner(sim: &SimHandle, args: &DemoArgs, dir: &Path) {
    eprintln!(
        "\
m365-posture demo: the real daemon scanning a simulated tenant of {users} users.
  Graph simulator   {base}   (stats: {base}/_sim/stats)
  metrics           http://{listen}/metrics
  events            CEF lines on standard output, one per new or resolved finding
  config and state  {dir}
The tenant changes every {interval} (a forwarding rule appears, DMARC gets fixed, a user is
disabled, ...). Press Ctrl-C to stop.",
        users = args.users,
        base = sim.base_url(),
        listen = args.listen,
        dir = dir.display(),
        interval = humantime::format_duration(args.interval),
    );
}

/// The demo's temporary directory, removed when the demo ends.
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> Result<Self, DemoError> {
        let path = std::env::temp_dir().join(format!("m365-posture-demo-{}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|source| DemoError::Files {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self(path))
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
