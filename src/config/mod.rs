//! Configuration: the validated, typed [`Config`] every other module reads.
//!
//! Loading (TOML file + `M365_POSTURE__SECTION__KEY` environment overrides through the `config`
//! crate), the raw serde shapes with `deny_unknown_fields`, and pure validation that reports
//! every problem at once with its key path live in the submodules. Secrets are never in the
//! config text: only paths to files (systemd `LoadCredential=`), read at use through [`Secret`].

mod error;
mod fields;
pub mod files;
pub mod load;
mod overrides;
pub mod raw;
mod sinks;
pub mod validate;
mod walk;

pub use error::{ConfigError, ConfigProblem};
pub use load::{from_toml_str, load, load_with_env};
pub use walk::known_keys;

use crate::checks::CheckOptions;
use crate::findings::{FindingId, Severity};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Tenants to scan (at least one for `run` and `scan`).
    pub tenants: Vec<TenantConfig>,
    /// DNS resolution for SPF and DMARC.
    pub dns: DnsConfig,
    /// Scan schedule and limits.
    pub scan: ScanConfig,
    /// The state file.
    pub state: StateConfig,
    /// The `/metrics` listener.
    pub metrics: MetricsConfig,
    /// Event sinks; each has its own outbox cursor.
    pub sinks: Vec<SinkConfig>,
    /// Check thresholds and switches.
    pub checks: CheckOptions,
    /// Per-finding severity overrides.
    pub severity_overrides: BTreeMap<FindingId, Severity>,
    /// Accepted findings.
    pub suppressions: Vec<Suppression>,
}

impl Config {
    /// The effective severity of a finding after overrides.
    pub fn severity_of(&self, finding: FindingId) -> Severity {
        self.severity_overrides
            .get(&finding)
            .copied()
            .unwrap_or(finding.meta().severity)
    }
}

/// One tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    /// Label on metrics and events (`contoso`); unique.
    pub name: String,
    /// Entra tenant id (GUID).
    pub tenant_id: String,
    /// App registration's client id (GUID).
    pub client_id: String,
    /// How the agent authenticates.
    pub auth: TenantAuth,
    /// Token authority base, default `https://login.microsoftonline.com` (no trailing slash).
    pub authority_url: String,
    /// Graph base, default `https://graph.microsoft.com` (no trailing slash).
    pub graph_url: String,
    /// Scan interval of this tenant (defaults to `[scan] interval`).
    pub interval: Duration,
}

/// How a tenant authenticates.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantAuth {
    /// Client credentials with a client secret read from a file.
    ClientSecret {
        /// File holding the secret (trailing newline ignored).
        secret_file: PathBuf,
    },
    /// Client credentials with a certificate (client assertion, preferred).
    Certificate {
        /// PEM certificate registered on the app.
        certificate_file: PathBuf,
        /// PEM private key (PKCS#8 or PKCS#1 RSA).
        private_key_file: PathBuf,
    },
    /// Delegated: refresh token stored in the state file by `consent`.
    Delegated,
}

/// `[dns]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// Resolvers to ask (UDP then TCP); empty means the system's resolv.conf.
    pub servers: Vec<SocketAddr>,
    /// Timeout per query.
    pub timeout: Duration,
}

/// What the very first scan of a tenant emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstScan {
    /// Every finding is a `new` event (default).
    #[default]
    Emit,
    /// Record a silent baseline: state is stored, no events.
    Baseline,
}

/// `[scan]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanConfig {
    /// Default interval between the end of one scan and the start of the next.
    pub interval: Duration,
    /// Deadline of one scan; an unfinished scan commits nothing.
    pub timeout: Duration,
    /// First scan behaviour.
    pub first_scan: FirstScan,
    /// Concurrent Graph requests per tenant for directory endpoints, and as many again for the
    /// reports bucket.
    pub directory_concurrency: usize,
    /// Concurrent Graph requests per tenant for Exchange (mailbox) endpoints.
    pub mailbox_concurrency: usize,
    /// Requests per 10 s the agent sends to the identity reports bucket (the registration
    /// report and authentication-method reads, each `$batch` member once); Graph's limit is 5.
    pub reports_per_10s: u32,
    /// A user's per-user data (methods, calendar, rules) is read again once it is this old.
    pub per_user_max_age: Duration,
    /// While the per-user sweep has due reads left, the next scan starts after this pause (or
    /// the tenant's interval, if shorter) instead of the interval.
    pub sweep_pause: Duration,
    /// Grace period for a clean stop (less than systemd's TimeoutStopSec).
    pub shutdown_grace: Duration,
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// SQLite file.
    pub path: PathBuf,
    /// Outbox bound per sink; when reached, scans stop committing (events delayed, not lost).
    pub outbox_max_events: usize,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// Listen address, default `0.0.0.0:9365`.
    pub listen: SocketAddr,
}

/// One `[[sinks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// Unique name, the `sink` metric label and the outbox cursor key (default `<type>-<index>`).
    pub name: String,
    /// Event payload.
    pub payload: Payload,
    /// Where events go.
    pub kind: SinkKind,
}

/// Event payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Payload {
    /// CEF (default).
    #[default]
    Cef,
    /// One JSON object per event with the same fields.
    Json,
}

/// Sink destination.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// One line per event on standard output.
    Stdout,
    /// Syslog.
    Syslog(SyslogSink),
}

/// Syslog transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram, best effort.
    Udp,
    /// TCP stream.
    Tcp,
    /// TLS over TCP (rustls).
    Tls,
    /// Local unix socket (datagram, like `/dev/log`).
    Unix,
}

/// Syslog header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyslogFormat {
    /// RFC 5424 (default).
    #[default]
    Rfc5424,
    /// RFC 3164 (BSD).
    Rfc3164,
}

/// Stream framing for TCP and TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// RFC 6587 octet counting (default).
    #[default]
    OctetCounting,
    /// One message per line (LF).
    Lf,
}

/// A syslog sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SyslogSink {
    /// Transport.
    pub transport: Transport,
    /// `host:port`, or a socket path for `unix`.
    pub address: String,
    /// Header format.
    pub format: SyslogFormat,
    /// Stream framing (tcp, tls).
    pub framing: Framing,
    /// TLS settings (tls only).
    pub tls: Option<TlsConfig>,
    /// Maximum message size in bytes (header included); msg and details are shortened first.
    pub max_message_bytes: usize,
}

/// TLS settings of a syslog sink.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM CA bundle to trust; default the system's web PKI roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub client_certificate_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    pub client_key_file: Option<PathBuf>,
    /// Server name to verify; default the host part of `address`.
    pub server_name: Option<String>,
}

/// An accepted finding: still evaluated and stored, counted apart, no `new` event.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppression {
    /// Which finding.
    pub finding: FindingId,
    /// Only this tenant (by name); all tenants when absent.
    pub tenant: Option<String>,
    /// Exact resource id; all resources when absent (with `resource_name` absent too).
    pub resource_id: Option<String>,
    /// Resource name pattern (`*` wildcard, case-insensitive), such as `*@contoso.com`.
    pub resource_name: Option<String>,
    /// Why it is accepted.
    pub reason: String,
    /// Who accepted it.
    pub owner: String,
    /// When it stops applying; never when absent.
    pub expires: Option<DateTime<Utc>>,
}

/// A secret read from a file; `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// Reads a secret file, trimming one trailing newline (and CR).
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self(text.trim_end_matches(['\n', '\r']).to_owned()))
    }

    /// The secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
