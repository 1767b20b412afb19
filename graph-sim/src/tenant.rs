//! The tenant file of CONTRACT section 6: one JSON object holding a whole simulated tenant.
//!
//! Every Graph object inside is kept as `serde_json::Value` in Graph's own v1.0 shape with all
//! properties present; the HTTP layer applies `$select`, paging and filtering on the way out.
//! Invariants checked on load: a non-empty `tenant_id`, a string `id` on every user,
//! application, service principal and domain, no duplicate ids, and per-user maps that only
//! name existing users.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::Faults;
use crate::SimError;

/// A whole simulated tenant (CONTRACT section 6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// Directory (tenant) id, a GUID.
    pub tenant_id: String,
    /// The `organization` object (Graph v1.0 shape).
    #[serde(default)]
    pub organization: Value,
    /// `domain` objects.
    #[serde(default)]
    pub domains: Vec<Value>,
    /// `user` objects with every property present.
    #[serde(default)]
    pub users: Vec<Value>,
    /// Authentication methods by user id; each has its `@odata.type`.
    #[serde(default)]
    pub authentication_methods: BTreeMap<String, Vec<Value>>,
    /// `calendarPermission` objects of the primary calendar, by user id.
    #[serde(default)]
    pub calendar_permissions: BTreeMap<String, Vec<Value>>,
    /// Inbox `messageRule` objects by user id.
    #[serde(default)]
    pub message_rules: BTreeMap<String, Vec<Value>>,
    /// Ids of users that have an Exchange Online mailbox; others get 404
    /// `MailboxNotEnabledForRESTAPI` on mailbox paths.
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// `application` objects (the tenant's own registrations).
    #[serde(default)]
    pub applications: Vec<Value>,
    /// `servicePrincipal` objects.
    #[serde(default)]
    pub service_principals: Vec<Value>,
    /// `userRegistrationDetails` report rows; derived from `authentication_methods` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_registration_details: Option<Vec<Value>>,
    /// Extension: how the derived registration report labels methods, and rows that lag.
    #[serde(default, skip_serializing_if = "RegistrationReport::is_default")]
    pub registration_report: RegistrationReport,
    /// Extension: `mailboxSettings` objects by user id; a mailbox without one gets defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mailbox_settings: BTreeMap<String, Value>,
    /// TXT strings by DNS name; any other name answers NXDOMAIN.
    #[serde(default)]
    pub dns: BTreeMap<String, Vec<String>>,
    /// Extension: A, AAAA and MX records by DNS name (what SPF `a`, `mx` and `exists` ask for).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dns_hosts: BTreeMap<String, HostRecords>,
    /// Fault injection and throttling settings.
    #[serde(default)]
    pub faults: Faults,
    /// Agent registrations the token endpoint accepts; `None` accepts the default client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<ClientRegistration>>,
}

/// The address and mail-exchanger records of one DNS name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecords {
    /// A records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub a: Vec<std::net::Ipv4Addr>,
    /// AAAA records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aaaa: Vec<std::net::Ipv6Addr>,
    /// MX records as `[preference, exchange]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mx: Vec<(u16, String)>,
}

/// How the derived userRegistrationDetails report names methods (`methodsRegistered`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodLabels {
    /// Microsoft's labels since 2023 (userRegistrationDetails, beta and v1.0; the
    /// usageAuthMethod enum): `passKeyDeviceBound`, `passKeyDeviceBoundAuthenticator` (a passkey
    /// in Microsoft Authenticator), `passKeySynced`, `windowsHelloForBusiness`,
    /// `macOsSecureEnclaveKey`, ...
    #[default]
    Current,
    /// Before the 2023 rename every FIDO2 key or passkey was `fido2`.
    Fido2,
}

/// Settings of the derived registration report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationReport {
    /// The label vocabulary.
    #[serde(default)]
    pub labels: MethodLabels,
    /// Rows that lag behind the methods (the report is refreshed asynchronously): these users'
    /// rows show these labels whatever their methods are now.
    #[serde(default)]
    pub lagging: BTreeMap<String, Vec<String>>,
}

impl RegistrationReport {
    /// True for the defaults (left out of serialized tenants).
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }
}

/// One app registration the token endpoint accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// Client secret, if secret authentication is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// PEM certificate whose key signs client assertions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    /// Application permissions admin-consented for Graph (the token's `roles`).
    #[serde(default)]
    pub roles: Vec<String>,
}

impl TenantFile {
    /// Parses and validates a tenant file.
    pub fn from_json(text: &str) -> Result<TenantFile, SimError> {
        let tenant: TenantFile = serde_json::from_str(text)?;
        tenant.validate()?;
        Ok(tenant)
    }

    /// Reads, parses and validates a tenant file.
    pub fn load(path: &Path) -> Result<TenantFile, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Serializes the tenant as pretty JSON (the same format [`TenantFile::from_json`] reads).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks the invariants listed in the module documentation.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.tenant_id.trim().is_empty() {
            return Err(SimError::Invalid("tenant_id is empty".into()));
        }
        let users = unique_ids("users", &self.users)?;
        unique_ids("applications", &self.applications)?;
        unique_ids("service_principals", &self.service_principals)?;
        unique_ids("domains", &self.domains)?;
        let per_user: [(&str, Vec<&String>); 5] = [
            (
                "authentication_methods",
                self.authentication_methods.keys().collect(),
            ),
            (
                "calendar_permissions",
                self.calendar_permissions.keys().collect(),
            ),
            ("message_rules", self.message_rules.keys().collect()),
            ("mailbox_settings", self.mailbox_settings.keys().collect()),
            (
                "registration_report.lagging",
                self.registration_report.lagging.keys().collect(),
            ),
        ];
        for (section, keys) in per_user {
            for key in keys {
                if !users.contains(key.as_str()) {
                    return Err(SimError::Invalid(format!(
                        "{section} names unknown user {key}"
                    )));
                }
            }
        }
        if let Some(id) = self
            .mailboxes
            .iter()
            .find(|id| !users.contains(id.as_str()))
        {
            return Err(SimError::Invalid(format!(
                "mailboxes names unknown user {id}"
            )));
        }
        Ok(())
    }

    /// The client registrations in force: `clients`, or the default client with every role.
    pub fn effective_clients(&self) -> Vec<ClientRegistration> {
        match &self.clients {
            Some(clients) => clients.clone(),
            None => vec![ClientRegistration {
                client_id: crate::DEFAULT_CLIENT_ID.to_string(),
                client_secret: Some(crate::DEFAULT_CLIENT_SECRET.to_string()),
                certificate_pem: None,
                roles: crate::ALL_ROLES.iter().map(|r| r.to_string()).collect(),
            }],
        }
    }

    /// The user object with this id, if any.
    pub fn user(&self, id: &str) -> Option<&Value> {
        self.users.iter().find(|u| object_id(u) == Some(id))
    }

    /// The user object with this id, mutable, if any.
    pub fn user_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.users.iter_mut().find(|u| object_id(u) == Some(id))
    }

    /// Removes a user and everything hanging off it (methods, rules, calendar, mailbox).
    pub fn remove_user(&mut self, id: &str) -> bool {
        let before = self.users.len();
        self.users.retain(|u| object_id(u) != Some(id));
        self.authentication_methods.remove(id);
        self.calendar_permissions.remove(id);
        self.message_rules.remove(id);
        self.mailbox_settings.remove(id);
        self.registration_report.lagging.remove(id);
        self.mailboxes.retain(|m| m != id);
        if let Some(rows) = self.user_registration_details.as_mut() {
            rows.retain(|r| object_id(r) != Some(id));
        }
        before != self.users.len()
    }
}

/// The `id` string of a Graph object.
pub(crate) fn object_id(object: &Value) -> Option<&str> {
    object.get("id").and_then(Value::as_str)
}

fn unique_ids<'a>(section: &str, objects: &'a [Value]) -> Result<HashSet<&'a str>, SimError> {
    let mut seen = HashSet::with_capacity(objects.len());
    for (position, object) in objects.iter().enumerate() {
        let id = object_id(object)
            .ok_or_else(|| SimError::Invalid(format!("{section}[{position}] has no string id")))?;
        if !seen.insert(id) {
            return Err(SimError::Invalid(format!(
                "{section} has duplicate id {id}"
            )));
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_parses_with_defaults() {
        let t = TenantFile::from_json(r#"{"tenant_id":"t1"}"#).unwrap();
        assert!(t.users.is_empty());
        assert_eq!(t.effective_clients()[0].client_id, crate::DEFAULT_CLIENT_ID);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = TenantFile::from_json(r#"{"tenant_id":"t1","userz":[]}"#).unwrap_err();
        assert!(err.to_string().contains("userz"), "{err}");
    }

    #[test]
    fn duplicate_user_id_is_rejected() {
        let err = TenantFile::from_json(r#"{"tenant_id":"t1","users":[{"id":"a"},{"id":"a"}]}"#)
            .unwrap_err();
        assert!(err.to_string().contains("duplicate id a"), "{err}");
    }

    #[test]
    fn dangling_mailbox_is_rejected() {
        let err = TenantFile::from_json(r#"{"tenant_id":"t1","mailboxes":["x"]}"#).unwrap_err();
        assert!(err.to_string().contains("unknown user x"), "{err}");
    }

    #[test]
    fn remove_user_removes_dependents() {
        let mut t = TenantFile::from_json(
            r#"{"tenant_id":"t1","users":[{"id":"a"}],"mailboxes":["a"],"message_rules":{"a":[]}}"#,
        )
        .unwrap();
        assert!(t.remove_user("a"));
        assert!(t.mailboxes.is_empty() && t.message_rules.is_empty());
    }
}
