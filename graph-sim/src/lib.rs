//! graph-sim: a simulator of Microsoft Graph v1.0, the Entra ID v2.0 token endpoint and an
//! authoritative DNS server, for m365-posture tests, benchmarks and the demo.
//!
//! Module map:
//! - [`tenant`]: the tenant file (CONTRACT section 6) and its validation.
//! - [`faults`]: fault and throttling settings (`faults` in the tenant file).
//! - [`stats`]: request counters served at `GET /_sim/stats`.
//! - [`latency`]: Graph-shaped response latency by kind of request (off by default).
//! - [`generate`]: the deterministic tenant generator behind `--users N --seed S`.
//! - `handle`: [`start`] and [`SimHandle`], the in-process server.
//! - `http`: the HTTP front (hyper), token endpoint, Graph routes, OData, `$batch`.
//! - `dns`: the UDP and TCP DNS server.
//!
//! Everything Graph returns is built from the tenant file under a read lock, page by page,
//! so a 100,000-user tenant is never copied per request.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

mod changes;
mod clock;
pub mod dns;
pub mod faults;
pub mod generate;
mod handle;
mod http;
pub mod latency;
pub mod mutation;
mod schema_props;
mod state;
pub mod stats;
pub mod tenant;

pub use faults::{Faults, PathFault, ThrottleSettings};
pub use generate::{generate, generate_at};
pub use handle::{start, SimHandle, SimOptions};
pub use latency::GraphLatency;
pub use mutation::{CollectionName, Mutation, UserSection};
pub use stats::Stats;
pub use tenant::{ClientRegistration, HostRecords, MethodLabels, RegistrationReport, TenantFile};

/// Client id the simulator accepts when the tenant file has no `clients` list.
pub const DEFAULT_CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";

/// Client secret of [`DEFAULT_CLIENT_ID`].
pub const DEFAULT_CLIENT_SECRET: &str = "sim-secret";

/// Every application permission the agent needs; the default client is granted all of them.
pub const ALL_ROLES: &[&str] = &[
    "User.Read.All",
    "Organization.Read.All",
    "Domain.Read.All",
    "Application.Read.All",
    "UserAuthenticationMethod.Read.All",
    "AuditLog.Read.All",
    "Calendars.ReadBasic.All",
    "MailboxSettings.Read",
];

/// Errors of the simulator's public API.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The tenant file could not be read.
    #[error("cannot read tenant file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tenant file is not valid JSON of the expected shape.
    #[error("invalid tenant file: {0}")]
    Parse(#[from] serde_json::Error),
    /// The tenant file parsed but breaks a rule (missing id, duplicate id, dangling reference).
    #[error("invalid tenant file: {0}")]
    Invalid(String),
    /// A listener could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// `http`, `dns udp` or `dns tcp`.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}
