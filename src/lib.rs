//! m365-posture: watches Microsoft 365 tenants for security posture problems.
//!
//! One pipeline: `collect` (Graph, DNS) builds a [`snapshot::TenantSnapshot`]; `checks` are pure
//! functions from the snapshot and a given `now` to findings; `state` reconciles them against
//! stored state and writes state and outbox in one SQLite transaction; `sinks` deliver events
//! and `/metrics` reads committed state.
#![forbid(unsafe_code)]

pub mod build_info;
pub mod checks;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod details;
pub mod dns;
pub mod events;
pub mod findings;
pub mod graph;
pub mod metrics;
pub mod posture_report;
pub mod references;
pub mod report;
pub mod scan;
pub mod sinks;
pub mod snapshot;
pub mod state;
pub mod suppress;
pub mod telemetry;
