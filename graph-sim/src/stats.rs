//! Request counters: what `GET /_sim/stats` and [`crate::SimHandle::stats`] return.
//!
//! Counts are by path template (`/v1.0/users/{id}/authentication/methods`), never by concrete
//! path, so the map stays small for any tenant size. Requests inside a `$batch` are counted
//! once as `/v1.0/$batch` in `by_template` and each inner request in `batch_by_template`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counters since the simulator started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// HTTP requests received (token, Graph, `$batch`, `/_sim`), not counting batch members.
    pub total_requests: u64,
    /// Requests by path template, then by status code (as a string, JSON-style).
    pub by_template: BTreeMap<String, BTreeMap<String, u64>>,
    /// Requests inside `$batch` bodies.
    pub batch_requests: u64,
    /// Requests inside `$batch` bodies by path template and inner status.
    pub batch_by_template: BTreeMap<String, BTreeMap<String, u64>>,
    /// Answers with status 429, outer and inner.
    pub throttled: u64,
    /// Injected faults (status, malformed, truncated, reset).
    pub faults_injected: u64,
    /// Connections closed on purpose by a `reset_rate` fault.
    pub connection_resets: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    /// Request body bytes received.
    pub bytes_received: u64,
    /// Milliseconds of Graph-shaped latency added ([`crate::latency`]), summed over requests
    /// and batch members (members overlap, so this exceeds the wall time).
    #[serde(default)]
    pub latency_added_ms: u64,
    /// DNS queries answered or dropped, by response code name (`NoError`, `NXDomain`, ...).
    pub dns_by_rcode: BTreeMap<String, u64>,
}

impl Stats {
    /// Requests to a template with a status (outer requests only).
    pub fn count(&self, template: &str, status: u16) -> u64 {
        lookup(&self.by_template, template, status)
    }

    /// Requests to a template with any status (outer requests only).
    pub fn requests_to(&self, template: &str) -> u64 {
        self.by_template
            .get(template)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Batch members to a template with a status.
    pub fn batch_count(&self, template: &str, status: u16) -> u64 {
        lookup(&self.batch_by_template, template, status)
    }

    /// Requests to a template, outer plus inside batches, with any status.
    pub fn total_to(&self, template: &str) -> u64 {
        let inner: u64 = self
            .batch_by_template
            .get(template)
            .map(|m| m.values().sum())
            .unwrap_or(0);
        self.requests_to(template) + inner
    }

    pub(crate) fn record(&mut self, template: &str, status: u16, sent: u64, received: u64) {
        self.total_requests += 1;
        self.bytes_sent += sent;
        self.bytes_received += received;
        bump(&mut self.by_template, template, status);
        if status == 429 {
            self.throttled += 1;
        }
    }

    pub(crate) fn record_inner(&mut self, template: &str, status: u16) {
        self.batch_requests += 1;
        bump(&mut self.batch_by_template, template, status);
        if status == 429 {
            self.throttled += 1;
        }
    }
}

fn lookup(map: &BTreeMap<String, BTreeMap<String, u64>>, template: &str, status: u16) -> u64 {
    map.get(template)
        .and_then(|m| m.get(&status.to_string()))
        .copied()
        .unwrap_or(0)
}

fn bump(map: &mut BTreeMap<String, BTreeMap<String, u64>>, template: &str, status: u16) {
    *map.entry(template.to_string())
        .or_default()
        .entry(status.to_string())
        .or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_template_and_status() {
        let mut s = Stats::default();
        s.record("/v1.0/users", 200, 10, 0);
        s.record("/v1.0/users", 429, 5, 0);
        s.record_inner("/v1.0/users/{id}/authentication/methods", 429);
        assert_eq!(s.count("/v1.0/users", 200), 1);
        assert_eq!(s.requests_to("/v1.0/users"), 2);
        assert_eq!(s.throttled, 2);
        assert_eq!(s.bytes_sent, 15);
        assert_eq!(s.total_to("/v1.0/users/{id}/authentication/methods"), 1);
    }
}
