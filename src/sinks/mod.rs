//! Event sinks: deliver outbox events to a SIEM or stdout; and [`metrics`], the Prometheus
//! endpoint over committed state, served by [`listener`] (TLS and basic auth from a
//! [`web_config`] file).
//!
//! Layers, each in its own module: [`cef`] and [`json`] render one event (payload);
//! [`syslog_header`] adds the RFC 5424 / RFC 3164 header and the stream framing; [`transport`]
//! (with [`tls`]) owns the sockets; [`delivery`] runs one worker per sink over the outbox
//! (`crate::state::outbox`) with at-least-once semantics: `reader` reads and encodes (with
//! `encoder`) ahead of the writer, and `window` holds the batches awaiting acknowledgement. The
//! `syslog` crate is not used: it is blocking, has no TLS and sends no TCP framing
//! (`docs/siem.md`).

pub mod cef;
pub mod delivery;
mod encoder;
mod frames;
pub mod json;
pub mod listener;
pub mod metrics;
mod reader;
pub mod syslog_header;
pub mod tls;
pub mod transport;
pub mod web_config;
mod window;

pub use cef::render_cef;
pub use delivery::{run_sink, run_sink_tuned, DeliveryTuning};
pub use json::render_json;
