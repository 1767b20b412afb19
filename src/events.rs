//! `FindingEvent`: one `new` or `resolved` transition of one finding instance, as reconcile
//! writes it to the outbox and the sinks render it (CEF, JSON). Also the instance fingerprint.
//!
//! An event is immutable once written: its `event_id` is the SIEM's dedupe key, so redelivery
//! after a crash sends the same id again.

use crate::findings::{Category, FindingId, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventAction {
    /// First seen, seen again after it resolved, or a suppression expired.
    New,
    /// A scan whose data for it succeeded no longer sees it.
    Resolved,
}

impl EventAction {
    /// `new` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Resolved => "resolved",
        }
    }
}

/// One transition, with everything a SIEM analyst needs and no secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingEvent {
    /// Unique per event (UUID v4); CEF `cs6`, the dedupe key.
    pub event_id: String,
    /// `new` or `resolved`; CEF `act`.
    pub action: EventAction,
    /// When the transition was detected (scan start); CEF `rt`.
    pub detected_at: DateTime<Utc>,
    /// Tenant name from config; CEF `cs1`.
    pub tenant: String,
    /// Which finding; CEF `cs2` and the signature id.
    pub finding: FindingId,
    /// Catalogue title; CEF name.
    pub title: String,
    /// Category; CEF `cat`.
    pub category: Category,
    /// Effective severity (after overrides); CEF `cs5` and header severity.
    pub severity: Severity,
    /// Instance key; CEF `cs3`.
    pub resource_id: String,
    /// UPN, app or domain name.
    pub resource_name: String,
    /// UPN where a user is concerned; CEF `duser`.
    pub user_principal_name: Option<String>,
    /// Stable instance fingerprint; CEF `externalId`.
    pub fingerprint: String,
    /// First seen (of this open period); CEF `start`.
    pub first_seen: DateTime<Utc>,
    /// Last seen, or resolved at; CEF `end`.
    pub last_seen: DateTime<Utc>,
    /// The finding's evidence.
    pub details: crate::details::Details,
}

/// Stable fingerprint of an instance: hash of tenant id, finding id and resource id only
/// (no names, no evidence), hex, 32 characters.
pub fn fingerprint(tenant_id: &str, finding: FindingId, resource_id: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [tenant_id, finding.as_str(), resource_id] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    let digest = hasher.finalize();
    hex::encode(digest.get(..16).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_separates_parts() {
        let a = fingerprint("t", FindingId::AccountDisabled, "u1");
        assert_eq!(a, fingerprint("t", FindingId::AccountDisabled, "u1"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, fingerprint("t", FindingId::AccountDisabled, "u2"));
        assert_ne!(a, fingerprint("t", FindingId::PasswordNotChanged, "u1"));
    }
}
