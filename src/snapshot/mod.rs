//! `TenantSnapshot`: everything one scan collected about one tenant, before any judgement.
//!
//! Collection fills it; checks read it. Each data section is either available or
//! [`Unavailable`] with a reason, so a check whose input is missing is reported as failed and
//! resolves nothing. Per-user sections keep a result per user, so a 403 on one mailbox fails
//! only that mailbox's instances.

mod methods;
pub mod types;
mod user;

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt;

pub use methods::{AuthMethod, Fido2Method, TapMethod, WindowsHelloMethod};
pub use types::*;
pub use user::{ProvisioningError, SeldomUserProperties, User};

/// Why a data section (or one user's part of it) did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unavailable {
    /// Graph answered 403; names the permission the agent lacks.
    PermissionDenied {
        /// The Graph permission, such as `MailboxSettings.Read`.
        permission: String,
    },
    /// Still throttled after the retry budget.
    Throttled,
    /// Graph answered with this HTTP status after retries.
    GraphError {
        /// HTTP status.
        status: u16,
    },
    /// The answer could not be parsed.
    Malformed {
        /// What was wrong, without secrets.
        detail: String,
    },
    /// Transport failure (connection, timeout).
    Transport {
        /// What failed.
        detail: String,
    },
    /// DNS SERVFAIL, REFUSED or timeout ([`Unavailable::dns_failure`]). Boxed: its two texts
    /// would make every `Unavailable`, and so every per-user entry of the snapshot, 16 bytes
    /// larger (issue 10).
    DnsFailure(Box<DnsFailure>),
    /// Graph answered 404 for one user's data although the user is listed: the data exists
    /// somewhere Graph cannot read it (a mailbox inactive, soft-deleted or on premises), or the
    /// user was deleted during the scan. Not a failure of the source and not evidence either:
    /// the user's instances keep their state and the checks count the user as unevaluated.
    NotReadable {
        /// `mailbox_not_enabled_for_rest_api` or `user_not_found`.
        reason: String,
    },
    /// The data cannot be evaluated in this mode (a skip, not a failure): for example calendar
    /// permissions in delegated mode, where Graph answers a delegate with an empty list.
    NotApplicable {
        /// Why, in words.
        detail: String,
    },
    /// Not collected in this scan (an earlier step failed, or the scan was cut short).
    NotCollected {
        /// Why.
        detail: String,
    },
}

/// How [`Unavailable::NotCollected`] reasons start when displayed (as in `failed_resources`).
pub const NOT_COLLECTED: &str = "not_collected";

/// How the displayed reasons of failures a later scan may not meet again start: not collected
/// (pending in the sweep, a scan cut short), throttled, a Graph error status, a transport
/// error, a DNS failure. The others last until something changes: a permission missing, an
/// answer that does not parse, "cannot be read", "not applicable".
pub const TRANSIENT_REASONS: [&str; 5] = [
    NOT_COLLECTED,
    "throttled",
    "graph_error",
    "transport_error",
    "dns_",
];

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PermissionDenied { permission } => write!(f, "permission_denied: {permission}"),
            Self::Throttled => f.write_str("throttled"),
            Self::GraphError { status } => write!(f, "graph_error {status}"),
            Self::Malformed { detail } => write!(f, "malformed_response: {detail}"),
            Self::Transport { detail } => write!(f, "transport_error: {detail}"),
            Self::DnsFailure(failure) => write!(f, "dns_{}: {}", failure.detail, failure.name),
            Self::NotReadable { reason } => write!(f, "not_readable: {reason}"),
            Self::NotApplicable { detail } => write!(f, "not_applicable: {detail}"),
            Self::NotCollected { detail } => write!(f, "{NOT_COLLECTED}: {detail}"),
        }
    }
}

/// A failed DNS lookup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DnsFailure {
    /// The name that failed.
    pub name: String,
    /// `servfail`, `timeout`, ...
    pub detail: String,
}

impl Unavailable {
    /// The lookup of `name` failed with `detail` (`servfail`, `timeout`, ...).
    pub fn dns_failure(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::DnsFailure(Box::new(DnsFailure {
            name: name.into(),
            detail: detail.into(),
        }))
    }
}

/// A data section: available, or unavailable with a reason.
pub type Section<T> = Result<T, Unavailable>;

/// Per-user data from per-user endpoints, keyed by user id.
///
/// A user present with `Ok` was read. A user present with `Err` failed, or answered 404
/// ([`Unavailable::NotReadable`]: no evidence either way). A user absent was not asked for
/// (users without `mail` have no mailbox; for authentication methods: the registration report
/// showed no relevant method), so their instances keep their state.
pub type PerUser<T> = BTreeMap<UserId, Result<Vec<T>, Unavailable>>;

/// TXT answers by lower-case DNS name (no trailing dot).
///
/// `Ok(records)` holds one string per TXT record, character-strings already concatenated;
/// `Ok(vec![])` is NXDOMAIN or no TXT records. `Err` is a failed lookup (not "no record").
/// A name absent from the map was not looked up.
pub type DnsAnswers = BTreeMap<String, Result<Vec<String>, Unavailable>>;

/// A, AAAA and MX answers for the names that SPF `a`, `mx` and `exists` terms reach, keyed like
/// [`DnsAnswers`]. `Ok(vec![])` is NXDOMAIN or no records of that type; `Err` is a failed
/// lookup; a name absent from a map was not looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostAnswers {
    /// A and AAAA addresses of a name.
    pub addresses: BTreeMap<String, Result<Vec<std::net::IpAddr>, Unavailable>>,
    /// MX exchange names of a name, normalized like the keys.
    pub mx: BTreeMap<String, Result<Vec<String>, Unavailable>>,
}

/// Everything collected about one tenant in one scan.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TenantSnapshot {
    /// The tenant id from config.
    pub tenant_id: String,
    /// `/organization`.
    pub organization: Section<Organization>,
    /// `/domains`.
    pub domains: Section<Vec<Domain>>,
    /// `/users` with the full `$select`.
    pub users: Section<Vec<User>>,
    /// `/reports/authenticationMethods/userRegistrationDetails`, pre-filtered or not; shared
    /// (the daemon reuses it while its per-user sweep continues).
    pub registration_details: Section<std::sync::Arc<Vec<UserRegistrationDetails>>>,
    /// Authentication methods for the users that were asked (see [`PerUser`]); users absent
    /// had no FIDO2, passkey, Windows Hello or TAP label (nor an unknown one) in the
    /// registration report: not read, so their stored instances keep their state.
    pub auth_methods: Section<PerUser<AuthMethod>>,
    /// Primary calendar permissions per mailbox user.
    pub calendar_permissions: Section<PerUser<CalendarPermission>>,
    /// Inbox rules per mailbox user.
    pub message_rules: Section<PerUser<MessageRule>>,
    /// `/applications`.
    pub applications: Section<Vec<Application>>,
    /// `/servicePrincipals`.
    pub service_principals: Section<Vec<ServicePrincipal>>,
    /// TXT answers for every checked domain, `_dmarc.` names, include and redirect targets and
    /// organizational-domain fallbacks.
    pub dns: DnsAnswers,
    /// A, AAAA and MX answers for SPF `a`, `mx` and `exists` terms.
    #[serde(default)]
    pub dns_hosts: HostAnswers,
    /// When the data of each section that arrived was read: the scan's start for what this
    /// scan read, and for a swept per-user section the oldest stored read it holds. A section
    /// absent was not read.
    #[serde(default)]
    pub read_at: BTreeMap<SectionName, DateTime<Utc>>,
}

/// The snapshot's data sections, as [`TenantSnapshot::read_at`] and the checks' inputs name
/// them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SectionName {
    /// `/organization`.
    Organization,
    /// `/domains`.
    Domains,
    /// `/users`.
    Users,
    /// The registration report.
    RegistrationDetails,
    /// Per-user authentication methods.
    AuthMethods,
    /// Per-user calendar permissions.
    CalendarPermissions,
    /// Per-user inbox rules.
    MessageRules,
    /// `/applications`.
    Applications,
    /// `/servicePrincipals`.
    ServicePrincipals,
    /// DNS answers.
    Dns,
}

impl TenantSnapshot {
    /// A snapshot where every section is unavailable with `detail`; collection starts here.
    pub fn empty(tenant_id: &str, detail: &str) -> Self {
        let missing = || Unavailable::NotCollected {
            detail: detail.to_owned(),
        };
        Self {
            tenant_id: tenant_id.to_owned(),
            organization: Err(missing()),
            domains: Err(missing()),
            users: Err(missing()),
            registration_details: Err(missing()),
            auth_methods: Err(missing()),
            calendar_permissions: Err(missing()),
            message_rules: Err(missing()),
            applications: Err(missing()),
            service_principals: Err(missing()),
            dns: DnsAnswers::new(),
            dns_hosts: HostAnswers::default(),
            read_at: BTreeMap::new(),
        }
    }

    /// The sections that arrived (available, or for DNS: any answer).
    pub fn arrived(&self) -> Vec<SectionName> {
        use SectionName::*;
        let sections = [
            (Organization, self.organization.is_ok()),
            (Domains, self.domains.is_ok()),
            (Users, self.users.is_ok()),
            (RegistrationDetails, self.registration_details.is_ok()),
            (AuthMethods, self.auth_methods.is_ok()),
            (CalendarPermissions, self.calendar_permissions.is_ok()),
            (MessageRules, self.message_rules.is_ok()),
            (Applications, self.applications.is_ok()),
            (ServicePrincipals, self.service_principals.is_ok()),
            (Dns, !self.dns.is_empty()),
        ];
        sections
            .into_iter()
            .filter_map(|(name, arrived)| arrived.then_some(name))
            .collect()
    }

    /// Frees the data of `section`, which then reads as not collected (`released`). Only for a
    /// section no check will read again ([`crate::checks::evaluate_releasing`]).
    pub fn release(&mut self, section: SectionName) {
        let released = || Unavailable::NotCollected {
            detail: "released".to_owned(),
        };
        match section {
            SectionName::Organization => self.organization = Err(released()),
            SectionName::Domains => self.domains = Err(released()),
            SectionName::Users => self.users = Err(released()),
            SectionName::RegistrationDetails => self.registration_details = Err(released()),
            SectionName::AuthMethods => self.auth_methods = Err(released()),
            SectionName::CalendarPermissions => self.calendar_permissions = Err(released()),
            SectionName::MessageRules => self.message_rules = Err(released()),
            SectionName::Applications => self.applications = Err(released()),
            SectionName::ServicePrincipals => self.service_principals = Err(released()),
            SectionName::Dns => {
                self.dns = DnsAnswers::new();
                self.dns_hosts = HostAnswers::default();
            }
        }
    }

    /// When the oldest data of `sections` that arrived was read.
    pub fn oldest_read(&self, sections: &[SectionName]) -> Option<DateTime<Utc>> {
        sections
            .iter()
            .filter_map(|s| self.read_at.get(s))
            .min()
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dns_failure_keeps_its_json_shape_and_every_reason_stays_small() {
        let failure = Unavailable::dns_failure("_dmarc.contoso.com", "servfail");
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "dns_failure", "name": "_dmarc.contoso.com", "detail": "servfail"})
        );
        assert_eq!(
            serde_json::from_value::<Unavailable>(json).unwrap(),
            failure
        );
        assert_eq!(failure.to_string(), "dns_servfail: _dmarc.contoso.com");
        // One per-user entry of a 100,000-user snapshot holds one of these (issue 10).
        assert!(std::mem::size_of::<Unavailable>() <= 32);
    }

    #[test]
    fn transient_reasons_name_exactly_the_failures_a_later_scan_may_not_meet() {
        let detail = || "x".to_owned();
        let transient = [
            Unavailable::NotCollected { detail: detail() },
            Unavailable::Throttled,
            Unavailable::GraphError { status: 503 },
            Unavailable::Transport { detail: detail() },
            Unavailable::dns_failure("contoso.com", "timeout"),
        ];
        let lasting = [
            Unavailable::PermissionDenied {
                permission: "MailboxSettings.Read".into(),
            },
            Unavailable::Malformed { detail: detail() },
            Unavailable::NotReadable { reason: detail() },
            Unavailable::NotApplicable { detail: detail() },
        ];
        let is_transient = |u: &Unavailable| {
            TRANSIENT_REASONS
                .iter()
                .any(|p| u.to_string().starts_with(p))
        };
        assert!(transient.iter().all(is_transient));
        assert!(!lasting.iter().any(is_transient));
    }
}
