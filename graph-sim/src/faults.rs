//! Fault injection and throttling settings: the `faults` object of the tenant file.
//!
//! Every random decision is derived from `seed`, the request (method, path and query) and how
//! many times that exact request was seen before, so a failing test reproduces even when
//! requests interleave differently. Keys of `paths` are path templates as reported by
//! `GET /_sim/stats` (`/v1.0/users/{id}/mailFolders/inbox/messageRules`, `/v1.0/$batch`,
//! `/{tenant}/oauth2/v2.0/token`); the key `*` applies to every path without its own entry.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Fault and throttling configuration (`faults` in the tenant file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Seed of every random decision (faults, fractional `Retry-After`, `$batch` order).
    pub seed: u64,
    /// Faults by path template (`*` = every other path).
    pub paths: BTreeMap<String, PathFault>,
    /// DNS names (lower case, no trailing dot) answered with SERVFAIL.
    pub dns_servfail: Vec<String>,
    /// DNS names never answered (the client times out).
    pub dns_timeout: Vec<String>,
    /// DNS answer delay, uniform in `[min, max]` milliseconds.
    pub dns_latency_ms: Option<[u64; 2]>,
    /// Roles removed from every token issued from now on (permission drift).
    pub forbidden_roles: Vec<String>,
    /// User ids whose mailboxes an application access policy excludes: mailbox paths answer
    /// 403 `ErrorAccessDenied` "Access to OData is disabled.".
    pub denied_mailboxes: Vec<String>,
    /// The tenant lacks Entra ID P1/P2: the registration report answers 403
    /// `Authentication_RequestFromNonPremiumTenantOrB2CTenant`.
    pub non_premium: bool,
    /// Throttling model.
    pub throttle: ThrottleSettings,
    /// Graph-shaped latency by kind of request ([`crate::latency`]); off when absent.
    pub graph_latency: Option<crate::latency::GraphLatency>,
}

/// Faults for one path template. Rates are probabilities in `[0, 1]`, drawn independently in
/// this order: reset, status, then (for a 200) truncated, malformed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathFault {
    /// Status injected at `rate` (default 503); 429 and 503 carry `Retry-After`.
    pub status: Option<u16>,
    /// Probability of answering `status` instead of the real answer.
    pub rate: f64,
    /// `Retry-After` seconds on injected 429/503 (default 1).
    pub retry_after_secs: Option<f64>,
    /// Probability of a 200 whose body is not JSON at all.
    pub malformed_rate: f64,
    /// Probability of a 200 whose JSON body is cut in the middle.
    pub truncated_rate: f64,
    /// Probability of closing the connection without an answer.
    pub reset_rate: f64,
    /// Added latency, uniform in `[min, max]` milliseconds.
    pub latency_ms: Option<[u64; 2]>,
    /// Only requests whose raw query contains this text get the fault (`$skiptoken`: every
    /// page of a collection but the first).
    pub query_contains: Option<String>,
}

/// Throttling model (graph-client.md section 2.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    /// Master switch.
    pub enabled: bool,
    /// Identity token bucket per app+tenant in resource units per 10 s; default by tenant size
    /// (under 50 users 3,500, up to 500 users 5,000, above 8,000).
    pub identity_ru_per_10s: Option<u32>,
    /// Requests per 10 s per app to `/reports/...` (the identity reports bucket).
    pub reports_per_10s: u32,
    /// Also count `/users/{id}/authentication/...` in the reports bucket; on by default, as
    /// Microsoft documents it: the "Identity and access reports service limits" of
    /// <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits>
    /// (5 requests per 10 s per app and tenant) list `authenticationMethod` among the
    /// resources they apply to, and every `$batch` sub-request counts. Tests that need speed
    /// turn it off explicitly.
    pub auth_methods_use_reports_bucket: bool,
    /// Concurrent requests per app+mailbox (Outlook).
    pub mailbox_concurrency: u32,
    /// Requests per 10 minutes per app+mailbox (Outlook).
    pub mailbox_per_10_min: u32,
    /// Extra seconds of penalty when a client retries before `Retry-After` elapsed.
    pub early_retry_penalty_secs: f64,
    /// Sometimes send a fractional `Retry-After` such as `2.128`.
    pub fractional_retry_after: bool,
    /// Send `x-ms-throttle-limit-percentage` on identity answers once more than 0.8 of the
    /// resource-unit budget is used, as Microsoft documents it
    /// (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>).
    /// Off models a Graph that does not send it (it is not promised on every workload).
    pub limit_percentage_header: bool,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: true,
            identity_ru_per_10s: None,
            reports_per_10s: 5,
            auth_methods_use_reports_bucket: true,
            mailbox_concurrency: 4,
            mailbox_per_10_min: 10_000,
            early_retry_penalty_secs: 2.0,
            fractional_retry_after: true,
            limit_percentage_header: true,
        }
    }
}

impl Faults {
    /// The fault entry for a path template (its own, else `*`).
    pub fn for_template(&self, template: &str) -> Option<&PathFault> {
        self.paths.get(template).or_else(|| self.paths.get("*"))
    }

    /// True when a DNS name (any case, trailing dot or not) is listed in `list`.
    pub(crate) fn dns_listed(list: &[String], name: &str) -> bool {
        let name = name.trim_end_matches('.');
        list.iter()
            .any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(name))
    }
}

/// A reproducible random stream for one decision: `seed`, a key and the occurrence number.
pub(crate) fn decision_rng(seed: u64, key: &str, occurrence: u64) -> ChaCha8Rng {
    let mut hasher = Sha256::new();
    hasher.update(seed.to_le_bytes());
    hasher.update(occurrence.to_le_bytes());
    hasher.update(key.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    ChaCha8Rng::from_seed(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn parses_the_documented_example() {
        let f: Faults = serde_json::from_str(
            r#"{"seed": 7, "paths": {"/v1.0/users/{id}/mailFolders/inbox/messageRules":
               {"status": 503, "rate": 0.5, "malformed_rate": 0, "latency_ms": [0, 20], "reset_rate": 0}},
               "dns_servfail": ["bad.example"], "forbidden_roles": ["MailboxSettings.Read"]}"#,
        )
        .unwrap();
        assert_eq!(f.seed, 7);
        assert!(f.throttle.enabled);
        let p = f
            .for_template("/v1.0/users/{id}/mailFolders/inbox/messageRules")
            .unwrap();
        assert_eq!(p.status, Some(503));
        assert!(f.for_template("/v1.0/users").is_none());
    }

    #[test]
    fn decisions_are_reproducible_and_vary_by_occurrence() {
        let a: f64 = decision_rng(1, "GET /v1.0/users", 0).gen();
        let b: f64 = decision_rng(1, "GET /v1.0/users", 0).gen();
        let c: f64 = decision_rng(1, "GET /v1.0/users", 1).gen();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn dns_names_match_case_and_dot_insensitively() {
        assert!(Faults::dns_listed(&["Bad.Example".into()], "bad.example."));
        assert!(!Faults::dns_listed(
            &["bad.example".into()],
            "x.bad.example"
        ));
    }
}
