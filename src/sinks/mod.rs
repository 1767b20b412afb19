//! Outputs: the Prometheus endpoint over committed state, and the event sinks.

pub mod metrics;
