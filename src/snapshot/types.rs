//! Typed Microsoft Graph v1.0 shapes the checks read, besides the user (`user.rs`) and the
//! authentication methods (`methods.rs`).
//!
//! Tolerant by design: unknown fields are ignored (no `deny_unknown_fields`), every optional
//! property accepts both null and absent, and `redirectTo` is accepted as one recipient or a
//! list. Property names are Graph's own.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;

/// A user's object id, shared (not copied) where the agent holds it more than once: the user
/// list's id is the key of the user's mailbox sections and of their reads in the sweep; a
/// registration-report row's id is the key of that user's method read. A 100,000-user tenant
/// holds each id in up to five places (issue 10, "strings shared").
pub type UserId = Arc<str>;

/// `GET /organization` (one element of the collection).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Organization {
    /// Tenant id.
    pub id: String,
    /// Tenant display name.
    pub display_name: Option<String>,
    /// True when directory sync is on for the tenant.
    pub on_premises_sync_enabled: Option<bool>,
    /// Last tenant-wide directory sync.
    pub on_premises_last_sync_date_time: Option<DateTime<Utc>>,
}

/// `GET /domains`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Domain {
    /// Fully qualified domain name.
    pub id: String,
    /// Verified by DNS.
    pub is_verified: Option<bool>,
    /// The default domain.
    pub is_default: Option<bool>,
    /// The initial `*.onmicrosoft.com` domain.
    pub is_initial: Option<bool>,
    /// `Managed` or `Federated`.
    pub authentication_type: Option<String>,
    /// `Email`, `OfficeCommunicationsOnline`, ...
    #[serde(deserialize_with = "null_as_empty_list")]
    pub supported_services: Vec<String>,
}

/// `emailAddress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmailAddress {
    /// Display name.
    pub name: Option<Box<str>>,
    /// SMTP address (may be legacyExchangeDN or null).
    pub address: Option<Box<str>>,
}

/// `recipient`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Recipient {
    /// The address.
    #[serde(deserialize_with = "null_as_default")]
    pub email_address: EmailAddress,
}

/// `calendarPermission`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CalendarPermission {
    /// Permission id.
    pub id: Box<str>,
    /// The sharee; `address` is null for "My Organization".
    pub email_address: Option<EmailAddress>,
    /// Sharee inside the organization.
    pub is_inside_organization: Option<bool>,
    /// Can be removed.
    pub is_removable: Option<bool>,
    /// `calendarRoleType`.
    pub role: Option<Box<str>>,
}

/// `messageRuleActions` (only the fields the checks read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageRuleActions {
    /// Forward to.
    #[serde(deserialize_with = "one_or_many")]
    pub forward_to: Vec<Recipient>,
    /// Forward as attachment to.
    #[serde(deserialize_with = "one_or_many")]
    pub forward_as_attachment_to: Vec<Recipient>,
    /// Redirect to (a list in the CSDL, a single recipient in an old doc page).
    #[serde(deserialize_with = "one_or_many")]
    pub redirect_to: Vec<Recipient>,
}

/// `messageRule` of the inbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageRule {
    /// Rule id.
    pub id: Box<str>,
    /// Rule name (attacker-controlled text).
    pub display_name: Option<Box<str>>,
    /// Order.
    pub sequence: Option<i64>,
    /// Enabled.
    pub is_enabled: Option<bool>,
    /// Rule is in error.
    pub has_error: Option<bool>,
    /// Actions; absent means none.
    pub actions: Option<MessageRuleActions>,
}

/// `certification` of an application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Certification {
    /// Details page.
    pub certification_details_url: Option<String>,
    /// Expiry.
    pub certification_expiration_date_time: Option<DateTime<Utc>>,
    /// Microsoft 365 certified.
    pub is_certified_by_microsoft: Option<bool>,
    /// Publisher attestation done.
    pub is_publisher_attested: Option<bool>,
    /// Last certification.
    pub last_certification_date_time: Option<DateTime<Utc>>,
}

/// `verifiedPublisher`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VerifiedPublisher {
    /// Publisher name.
    pub display_name: Option<String>,
    /// Partner Center id.
    pub verified_publisher_id: Option<String>,
}

/// `GET /applications` (registrations owned by the tenant).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Application {
    /// Object id.
    pub id: String,
    /// Client id.
    pub app_id: Option<String>,
    /// Name.
    pub display_name: Option<String>,
    /// Publisher domain.
    pub publisher_domain: Option<String>,
    /// Certification (readable only for the tenant's own apps).
    pub certification: Option<Certification>,
    /// `NotDisabled`, `DisabledDueToViolationOfServicesAgreement`, or null.
    pub disabled_by_microsoft_status: Option<String>,
    /// Verified publisher.
    pub verified_publisher: Option<VerifiedPublisher>,
    /// Client secrets (metadata only: Graph never returns the secret text on a list).
    pub password_credentials: Vec<PasswordCredential>,
    /// Certificates (metadata; `key` is null on a list).
    pub key_credentials: Vec<KeyCredential>,
}

/// `passwordCredential`: a client secret of an application
/// (learn.microsoft.com/graph/api/resources/passwordcredential).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PasswordCredential {
    /// Id of the secret.
    pub key_id: Option<String>,
    /// The first three characters of the secret.
    pub hint: Option<String>,
    /// When it expires.
    pub end_date_time: Option<DateTime<Utc>>,
}

/// `keyCredential`: a certificate of an application
/// (learn.microsoft.com/graph/api/resources/keycredential).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyCredential {
    /// Id of the key.
    pub key_id: Option<String>,
    /// The certificate thumbprint (base64), for certificates.
    pub custom_key_identifier: Option<String>,
    /// When it expires.
    pub end_date_time: Option<DateTime<Utc>>,
}

/// `GET /servicePrincipals`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServicePrincipal {
    /// Object id.
    pub id: String,
    /// Client id of the application.
    pub app_id: Option<String>,
    /// Name.
    pub display_name: Option<String>,
    /// Name of the application.
    pub app_display_name: Option<String>,
    /// `Application`, `ManagedIdentity`, `Legacy`, ...
    pub service_principal_type: Option<String>,
    /// Tenant that owns the application.
    pub app_owner_organization_id: Option<String>,
    /// Sign-in enabled.
    pub account_enabled: Option<bool>,
    /// Verified publisher.
    pub verified_publisher: Option<VerifiedPublisher>,
    /// `NotDisabled`, `DisabledDueToViolationOfServicesAgreement`, or null.
    pub disabled_by_microsoft_status: Option<String>,
}

/// `GET /reports/authenticationMethods/userRegistrationDetails`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UserRegistrationDetails {
    /// User object id; the report's reads of this user share it ([`UserId`]).
    pub id: UserId,
    /// UPN.
    pub user_principal_name: Option<Box<str>>,
    /// Registered method labels (`fido2`, `windowsHelloForBusiness`, `temporaryAccessPass`, ...).
    #[serde(deserialize_with = "null_as_empty_list")]
    pub methods_registered: Vec<Box<str>>,
    /// When the report's row was last updated (RFC 3339 as Graph sends it); with
    /// `methodsRegistered` it tells the daemon whether the user's methods may have changed.
    pub last_updated_date_time: Option<Box<str>>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A list that Graph may send as null, held without spare capacity: serde grows a list as it
/// reads it (four slots for one element), and a large tenant holds hundreds of thousands.
pub(super) fn null_as_empty_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut list = Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default();
    list.shrink_to_fit();
    Ok(list)
}

fn one_or_many<'de, D>(deserializer: D) -> Result<Vec<Recipient>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Recipient>),
        One(Recipient),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::Many(mut list)) => {
            list.shrink_to_fit();
            list
        }
        Some(OneOrMany::One(one)) => vec![one],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redirect_to_accepts_object_or_array_and_null() {
        let one: MessageRuleActions = serde_json::from_value(json!({
            "redirectTo": {"emailAddress": {"address": "a@x.example"}}
        }))
        .unwrap();
        assert_eq!(one.redirect_to.len(), 1);
        let many: MessageRuleActions = serde_json::from_value(json!({
            "redirectTo": [{"emailAddress": {"address": "a@x.example"}}, {"emailAddress": {"address": "b@x.example"}}],
            "forwardTo": null
        }))
        .unwrap();
        assert_eq!(many.redirect_to.len(), 2);
        assert!(many.forward_to.is_empty());
    }

    #[test]
    fn null_collections_and_null_recipient_address_parse_as_empty() {
        let domain: Domain =
            serde_json::from_value(json!({"id": "a.example", "supportedServices": null})).unwrap();
        assert!(domain.supported_services.is_empty());
        let actions: MessageRuleActions =
            serde_json::from_value(json!({"forwardTo": [{"emailAddress": null}]})).unwrap();
        assert_eq!(actions.forward_to[0].email_address.address, None);
    }
}
