//! Raw serde shapes mirroring the TOML file, before validation.
//!
//! Every struct has `deny_unknown_fields` and every field is optional or defaulted, so that one
//! key can be deserialized on its own (see `walk`) and a missing required key is reported by
//! validation with its path instead of stopping serde at the first error. Values that need a
//! clear message (GUIDs, durations as humantime strings, addresses, finding ids, severities,
//! timestamps) stay strings here and are parsed in `validate`.

use crate::checks::CheckOptions;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `[[tenants]]`.
    pub tenants: Vec<RawTenant>,
    /// `[dns]`.
    pub dns: RawDns,
    /// `[scan]`.
    pub scan: RawScan,
    /// `[state]`.
    pub state: RawState,
    /// `[metrics]`.
    pub metrics: RawMetrics,
    /// `[[sinks]]`.
    pub sinks: Vec<RawSink>,
    /// `[checks]`, already typed: it has its own defaults and `deny_unknown_fields`.
    pub checks: CheckOptions,
    /// `[severity_overrides]`: finding id to severity name (dotted TOML keys are flattened).
    pub severity_overrides: BTreeMap<String, String>,
    /// `[[suppressions]]`.
    pub suppressions: Vec<RawSuppression>,
}

/// `auth = "..."`: the one auth mode that has no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawAuth {
    /// Refresh token stored by `consent`.
    Delegated,
}

/// One `[[tenants]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTenant {
    /// Label on metrics and events.
    pub name: Option<String>,
    /// Entra tenant id.
    pub tenant_id: Option<String>,
    /// App registration's client id.
    pub client_id: Option<String>,
    /// Client secret file (client credentials).
    pub client_secret_file: Option<PathBuf>,
    /// Certificate file (client assertion).
    pub certificate_file: Option<PathBuf>,
    /// Private key file (client assertion).
    pub private_key_file: Option<PathBuf>,
    /// `delegated`.
    pub auth: Option<RawAuth>,
    /// Token authority base URL.
    pub authority_url: Option<String>,
    /// Graph base URL.
    pub graph_url: Option<String>,
    /// Per-tenant scan interval (humantime).
    pub interval: Option<String>,
}

/// `[dns]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDns {
    /// `ip` or `ip:port` resolvers.
    pub servers: Option<Vec<String>>,
    /// Per-query timeout (humantime).
    pub timeout: Option<String>,
}

/// `first_scan = "emit" | "baseline"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawFirstScan {
    /// Every finding is a `new` event.
    Emit,
    /// Silent baseline.
    Baseline,
}

/// `[scan]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawScan {
    /// Default interval (humantime).
    pub interval: Option<String>,
    /// Deadline of one scan (humantime).
    pub timeout: Option<String>,
    /// First scan behaviour.
    pub first_scan: Option<RawFirstScan>,
    /// Concurrent directory requests per tenant (and as many for the reports bucket).
    pub directory_concurrency: Option<usize>,
    /// Concurrent mailbox requests per tenant.
    pub mailbox_concurrency: Option<usize>,
    /// Requests per 10 s to the identity reports bucket.
    pub reports_per_10s: Option<u32>,
    /// Age after which per-user data is read again (humantime).
    pub per_user_max_age: Option<String>,
    /// Pause before a scan that continues the per-user sweep (humantime).
    pub sweep_pause: Option<String>,
    /// Clean-stop grace (humantime).
    pub shutdown_grace: Option<String>,
}

/// `[state]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawState {
    /// SQLite file.
    pub path: Option<PathBuf>,
    /// Outbox bound per sink.
    pub outbox_max_events: Option<usize>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    /// `ip:port`.
    pub listen: Option<String>,
}

/// `type = "syslog" | "stdout"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawSinkType {
    /// Syslog over udp, tcp, tls or a unix socket.
    Syslog,
    /// One line per event on standard output.
    Stdout,
}

/// `transport = "udp" | "tcp" | "tls" | "unix"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawTransport {
    /// UDP datagrams.
    Udp,
    /// TCP stream.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// Unix datagram socket.
    Unix,
}

/// `format = "rfc5424" | "rfc3164"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawSyslogFormat {
    /// RFC 5424.
    Rfc5424,
    /// RFC 3164.
    Rfc3164,
}

/// `framing = "octet-counting" | "lf"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawFraming {
    /// RFC 6587 octet counting.
    OctetCounting,
    /// Newline-terminated.
    Lf,
}

/// `payload = "cef" | "json"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawPayload {
    /// CEF.
    Cef,
    /// JSON object per event.
    Json,
}

/// One `[[sinks]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSink {
    /// Unique name (default `<type>-<index>`).
    pub name: Option<String>,
    /// Sink type.
    #[serde(rename = "type")]
    pub sink_type: Option<RawSinkType>,
    /// Syslog transport.
    pub transport: Option<RawTransport>,
    /// `host:port` or socket path.
    pub address: Option<String>,
    /// Syslog header format.
    pub format: Option<RawSyslogFormat>,
    /// Stream framing.
    pub framing: Option<RawFraming>,
    /// Payload.
    pub payload: Option<RawPayload>,
    /// Maximum message size.
    pub max_message_bytes: Option<usize>,
    /// `[sinks.tls]`.
    pub tls: Option<RawTls>,
}

/// `[sinks.tls]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawTls {
    /// CA bundle.
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    pub client_certificate_file: Option<PathBuf>,
    /// Client key for mutual TLS.
    pub client_key_file: Option<PathBuf>,
    /// Server name to verify.
    pub server_name: Option<String>,
}

/// One `[[suppressions]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSuppression {
    /// Finding id.
    pub finding: Option<String>,
    /// Tenant name.
    pub tenant: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// Resource name pattern.
    pub resource_name: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Who.
    pub owner: Option<String>,
    /// RFC 3339 expiry.
    pub expires: Option<String>,
}
