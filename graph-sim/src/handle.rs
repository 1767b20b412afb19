//! Starting the simulator in-process and controlling it: [`start`] binds the HTTP and DNS
//! listeners (port 0 allowed) and returns a [`SimHandle`].

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faults::Faults;
use crate::http::throttle::ThrottleState;
use crate::http::token::AuthState;
use crate::http::{server, token_flow};
use crate::latency::GraphLatency;
use crate::mutation::Mutation;
use crate::state::{lock, Shared, TenantData};
use crate::stats::Stats;
use crate::tenant::TenantFile;
use crate::SimError;

/// Where and how the simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// HTTP listener (token endpoint, Graph, `/_sim`).
    pub http_listen: SocketAddr,
    /// DNS listener; UDP and TCP share the port.
    pub dns_listen: SocketAddr,
    /// Access token lifetime (`expires_in`).
    pub token_lifetime: Duration,
    /// Seed of random decisions when the tenant's `faults.seed` is 0.
    pub seed: u64,
    /// Graph-shaped latency; when set it replaces the tenant file's `faults.graph_latency`.
    /// Off by default (tests run at loopback speed).
    pub graph_latency: Option<GraphLatency>,
}

impl Default for SimOptions {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        SimOptions {
            http_listen: loopback,
            dns_listen: loopback,
            token_lifetime: Duration::from_secs(3600),
            seed: 1,
            graph_latency: None,
        }
    }
}

/// A running simulator. Dropping it stops the servers without waiting;
/// [`SimHandle::shutdown`] stops them and waits.
pub struct SimHandle {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    dns_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind_dns(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), SimError> {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| SimError::Bind {
                what: "dns udp",
                addr,
                source,
            })?;
        let bound = udp.local_addr().map_err(|source| SimError::Bind {
            what: "dns udp",
            addr,
            source,
        })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) if addr.port() == 0 => last_error = Some(source),
            Err(source) => {
                return Err(SimError::Bind {
                    what: "dns tcp",
                    addr,
                    source,
                })
            }
        }
    }
    Err(SimError::Bind {
        what: "dns tcp",
        addr,
        source: last_error.unwrap_or_else(|| std::io::Error::other("no free port")),
    })
}

/// Starts the HTTP and DNS servers on the current Tokio runtime.
pub async fn start(mut tenant: TenantFile, options: SimOptions) -> Result<SimHandle, SimError> {
    tenant.validate()?;
    if tenant.faults.seed == 0 {
        tenant.faults.seed = options.seed;
    }
    if let Some(latency) = options.graph_latency {
        tenant.faults.graph_latency = Some(latency);
    }
    let listener = TcpListener::bind(options.http_listen)
        .await
        .map_err(|source| SimError::Bind {
            what: "http",
            addr: options.http_listen,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| SimError::Bind {
        what: "http",
        addr: options.http_listen,
        source,
    })?;
    let (udp, tcp) = bind_dns(options.dns_listen).await?;
    let dns_addr = udp.local_addr().map_err(|source| SimError::Bind {
        what: "dns udp",
        addr: options.dns_listen,
        source,
    })?;
    let shared = Arc::new(Shared {
        tenant: RwLock::new(TenantData::new(tenant)),
        auth: Mutex::new(AuthState::new(options.token_lifetime)),
        throttle: Mutex::new(ThrottleState::default()),
        stats: Mutex::new(Stats::default()),
        occurrences: Mutex::new(Default::default()),
        batches: AtomicU64::new(0),
        latency_draws: Default::default(),
        base_url: format!("http://{http_addr}"),
    });
    let (stop, stopped) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(server::serve(
            listener,
            Arc::clone(&shared),
            stopped.clone(),
        )),
        tokio::spawn(crate::dns::serve_udp(
            udp,
            Arc::clone(&shared),
            stopped.clone(),
        )),
        tokio::spawn(crate::dns::serve_tcp(tcp, Arc::clone(&shared), stopped)),
    ];
    Ok(SimHandle {
        shared,
        http_addr,
        dns_addr,
        stop,
        tasks,
    })
}

impl SimHandle {
    /// Bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Bound DNS address (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns_addr
    }

    /// `http://127.0.0.1:PORT`: use it as both `authority_url` and `graph_url`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The simulated tenant's id.
    pub fn tenant_id(&self) -> String {
        self.shared.read().file.tenant_id.clone()
    }

    /// The token URL of the tenant (`{base}/{tenant_id}/oauth2/v2.0/token`), the `aud` of
    /// client assertions.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base_url(), self.tenant_id())
    }

    /// Changes the tenant (between scans); indexes are rebuilt before the next request.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut TenantFile) -> R) -> R {
        self.shared.mutate(f)
    }

    /// Applies one [`Mutation`] (same as `POST /_sim/mutate`).
    pub fn apply(&self, mutation: Mutation) -> Result<(), SimError> {
        self.shared.mutate(|tenant| mutation.apply(tenant))
    }

    /// A copy of the current tenant.
    pub fn tenant(&self) -> TenantFile {
        self.shared.read().file.clone()
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.auth).token_lifetime = lifetime;
    }

    /// Makes every access token issued so far expired (Graph answers 401).
    pub fn expire_access_tokens(&self) {
        let now = Instant::now();
        lock(&self.shared.auth)
            .access
            .values_mut()
            .for_each(|t| t.expires_at = now);
    }

    /// Expires every delta token issued so far: its next use answers 400 `syncStateNotFound`
    /// (what Graph does after the seven days a directory delta token lives).
    pub fn expire_delta_tokens(&self) {
        self.shared.write().changes.expire_tokens();
    }

    /// Resets every delta token issued so far: its next use answers 410 Gone with a `Location`
    /// of the initial query (Graph's "synchronization reset").
    pub fn reset_delta_tokens(&self) {
        self.shared.write().changes.reset_tokens();
    }

    /// Revokes every refresh token (the next refresh fails with AADSTS50173).
    pub fn revoke_refresh_tokens(&self) {
        lock(&self.shared.auth)
            .refresh
            .values_mut()
            .for_each(|r| r.revoked = true);
    }

    /// Refresh tokens unused this long fail with AADSTS700082 (default 90 days).
    pub fn set_refresh_token_inactivity(&self, limit: Duration) {
        lock(&self.shared.auth).refresh_inactivity = limit;
    }

    /// While set, refresh grants fail with AADSTS50076 (`suberror: basic_action`).
    pub fn set_require_mfa(&self, required: bool) {
        lock(&self.shared.auth).require_mfa = required;
    }

    /// The `interval` the device-code endpoint announces (default 5 s).
    pub fn set_device_code_interval(&self, seconds: u64) {
        lock(&self.shared.auth).device_interval_secs = seconds;
    }

    /// Replaces the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.mutate(|tenant| tenant.faults = faults);
    }

    /// Approves a pending device code as the first enabled member user.
    pub fn approve_device_code(&self, user_code: &str) -> bool {
        token_flow::decide_device_code(&self.shared, user_code, true, None)
    }

    /// Approves a pending device code as a given user.
    pub fn approve_device_code_as(&self, user_code: &str, user_id: &str) -> bool {
        token_flow::decide_device_code(&self.shared, user_code, true, Some(user_id))
    }

    /// Declines a pending device code (polling then gets `authorization_declined`).
    pub fn decline_device_code(&self, user_code: &str) -> bool {
        token_flow::decide_device_code(&self.shared, user_code, false, None)
    }

    /// The pending device codes' user codes (what a user would type).
    pub fn pending_user_codes(&self) -> Vec<String> {
        lock(&self.shared.auth)
            .devices
            .values()
            .filter(|d| d.state == crate::http::token::DeviceState::Pending)
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// Counters (same data as `GET /_sim/stats`).
    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Stops the servers and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
