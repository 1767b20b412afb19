//! `User`: one directory user as the checks read it, compact in memory and in Graph's JSON
//! shape on the wire.
//!
//! A 100,000-user tenant holds 100,000 of these through a scan's merge and evaluation, the
//! largest item at the daemon's peak (issue 10, BENCHMARKS.md). So the properties few users
//! have set (the age group trio, `creationType`, provisioning errors) sit in one box that most
//! users do not allocate, and lists are boxed slices. The JSON form, read from Graph and the
//! state file's stored Graph objects, and written where a whole snapshot is (the benchmarks'
//! snapshot files), is unchanged: [`UserWire`] reads it and [`UserWireRef`] writes it.

use super::types::{null_as_empty_list, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// One entry of `user.onPremisesProvisioningErrors`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProvisioningError {
    /// Currently only `PropertyConflict`.
    pub category: Option<Box<str>>,
    /// When it happened.
    pub occurred_date_time: Option<DateTime<Utc>>,
    /// `UserPrincipalName` or `ProxyAddress`.
    pub property_causing_error: Option<Box<str>>,
    /// The conflicting value.
    pub value: Option<Box<str>>,
}

/// `GET /users?$select=...` (the properties of `findings-spec.md` section 2.2).
///
/// Text fields are `Box<str>` (16 bytes, not a `String`'s 24); the seldom-set properties are
/// in [`User::seldom`], read through accessors.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "UserWire")]
pub struct User {
    /// Object id, shared with the per-user sections' keys and the sweep's reads
    /// ([`UserId`]).
    pub id: UserId,
    /// UPN.
    pub user_principal_name: Option<Box<str>>,
    /// Display name.
    pub display_name: Option<Box<str>>,
    /// Primary SMTP address; null when the user has no mailbox.
    pub mail: Option<Box<str>>,
    /// `Member` or `Guest`.
    pub user_type: Option<Box<str>>,
    /// Sign-in allowed.
    pub account_enabled: Option<bool>,
    /// Comma list: `DisablePasswordExpiration`, `DisableStrongPassword`.
    pub password_policies: Option<Box<str>>,
    /// Last password change or creation.
    pub last_password_change_date_time: Option<DateTime<Utc>>,
    /// true synced, false formerly synced, null cloud-only.
    pub on_premises_sync_enabled: Option<bool>,
    /// Last sync of this object.
    pub on_premises_last_sync_date_time: Option<DateTime<Utc>>,
    /// Source anchor.
    pub on_premises_immutable_id: Option<Box<str>>,
    /// `SMTP:primary`, `smtp:alias`, `SIP:...`.
    pub proxy_addresses: Box<[Box<str>]>,
    /// Creation time.
    pub created_date_time: Option<DateTime<Utc>>,
    /// The properties few users have set; `None` when none is, so that two users with the
    /// same properties are equal: set it through [`User::set_seldom`].
    pub seldom: Option<Box<SeldomUserProperties>>,
}

/// The properties of a [`User`] that most users leave null or empty: 8 bytes for a user
/// without any, not 88.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeldomUserProperties {
    /// `Invitation` for B2B guests.
    pub creation_type: Option<Box<str>>,
    /// Sync provisioning errors.
    pub on_premises_provisioning_errors: Box<[ProvisioningError]>,
    /// `minor`, `notAdult`, `adult`.
    pub age_group: Option<Box<str>>,
    /// `granted`, `denied`, `notRequired`.
    pub consent_provided_for_minor: Option<Box<str>>,
    /// Computed legal age group.
    pub legal_age_group_classification: Option<Box<str>>,
}

impl SeldomUserProperties {
    /// `Some` when any property is set.
    fn boxed_if_set(self) -> Option<Box<Self>> {
        (self != Self::default()).then(|| Box::new(self))
    }
}

impl User {
    /// The best human name: UPN, else display name, else id.
    pub fn name(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .or(self.display_name.as_deref())
            .unwrap_or(&self.id)
    }

    /// True for `userType == Guest` (case-insensitive).
    pub fn is_guest(&self) -> bool {
        self.user_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("guest"))
    }

    /// Sets the seldom-set properties, boxed only when one of them is set.
    pub fn set_seldom(&mut self, seldom: SeldomUserProperties) {
        self.seldom = seldom.boxed_if_set();
    }

    /// `creationType`.
    pub fn creation_type(&self) -> Option<&str> {
        self.seldom.as_ref()?.creation_type.as_deref()
    }

    /// `onPremisesProvisioningErrors`.
    pub fn on_premises_provisioning_errors(&self) -> &[ProvisioningError] {
        self.seldom
            .as_ref()
            .map_or(&[], |s| &s.on_premises_provisioning_errors)
    }

    /// `ageGroup`.
    pub fn age_group(&self) -> Option<&str> {
        self.seldom.as_ref()?.age_group.as_deref()
    }

    /// `consentProvidedForMinor`.
    pub fn consent_provided_for_minor(&self) -> Option<&str> {
        self.seldom.as_ref()?.consent_provided_for_minor.as_deref()
    }

    /// `legalAgeGroupClassification`.
    pub fn legal_age_group_classification(&self) -> Option<&str> {
        self.seldom
            .as_ref()?
            .legal_age_group_classification
            .as_deref()
    }
}

/// A user as Graph writes it: every property of `$select`, null or absent alike.
///
/// Named `User` for serde, so that a parse error names the Graph type, not this one.
#[derive(Default, Deserialize)]
#[serde(rename = "User", rename_all = "camelCase", default)]
struct UserWire {
    id: UserId,
    user_principal_name: Option<Box<str>>,
    display_name: Option<Box<str>>,
    mail: Option<Box<str>>,
    user_type: Option<Box<str>>,
    creation_type: Option<Box<str>>,
    account_enabled: Option<bool>,
    password_policies: Option<Box<str>>,
    last_password_change_date_time: Option<DateTime<Utc>>,
    on_premises_sync_enabled: Option<bool>,
    on_premises_last_sync_date_time: Option<DateTime<Utc>>,
    on_premises_immutable_id: Option<Box<str>>,
    #[serde(deserialize_with = "null_as_empty_list")]
    on_premises_provisioning_errors: Vec<ProvisioningError>,
    age_group: Option<Box<str>>,
    consent_provided_for_minor: Option<Box<str>>,
    legal_age_group_classification: Option<Box<str>>,
    #[serde(deserialize_with = "null_as_empty_list")]
    proxy_addresses: Vec<Box<str>>,
    created_date_time: Option<DateTime<Utc>>,
}

impl From<UserWire> for User {
    fn from(wire: UserWire) -> Self {
        let seldom = SeldomUserProperties {
            creation_type: wire.creation_type,
            on_premises_provisioning_errors: wire.on_premises_provisioning_errors.into(),
            age_group: wire.age_group,
            consent_provided_for_minor: wire.consent_provided_for_minor,
            legal_age_group_classification: wire.legal_age_group_classification,
        };
        let mut user = Self {
            id: wire.id,
            user_principal_name: wire.user_principal_name,
            display_name: wire.display_name,
            mail: wire.mail,
            user_type: wire.user_type,
            account_enabled: wire.account_enabled,
            password_policies: wire.password_policies,
            last_password_change_date_time: wire.last_password_change_date_time,
            on_premises_sync_enabled: wire.on_premises_sync_enabled,
            on_premises_last_sync_date_time: wire.on_premises_last_sync_date_time,
            on_premises_immutable_id: wire.on_premises_immutable_id,
            proxy_addresses: wire.proxy_addresses.into(),
            created_date_time: wire.created_date_time,
            seldom: None,
        };
        user.set_seldom(seldom);
        user
    }
}

/// A user written in Graph's shape, borrowed from a [`User`]: the fields and their order of
/// `$select`, with null for what is not set.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserWireRef<'a> {
    id: &'a str,
    user_principal_name: Option<&'a str>,
    display_name: Option<&'a str>,
    mail: Option<&'a str>,
    user_type: Option<&'a str>,
    creation_type: Option<&'a str>,
    account_enabled: Option<bool>,
    password_policies: Option<&'a str>,
    last_password_change_date_time: Option<DateTime<Utc>>,
    on_premises_sync_enabled: Option<bool>,
    on_premises_last_sync_date_time: Option<DateTime<Utc>>,
    on_premises_immutable_id: Option<&'a str>,
    on_premises_provisioning_errors: &'a [ProvisioningError],
    age_group: Option<&'a str>,
    consent_provided_for_minor: Option<&'a str>,
    legal_age_group_classification: Option<&'a str>,
    proxy_addresses: &'a [Box<str>],
    created_date_time: Option<DateTime<Utc>>,
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        UserWireRef {
            id: &self.id,
            user_principal_name: self.user_principal_name.as_deref(),
            display_name: self.display_name.as_deref(),
            mail: self.mail.as_deref(),
            user_type: self.user_type.as_deref(),
            creation_type: self.creation_type(),
            account_enabled: self.account_enabled,
            password_policies: self.password_policies.as_deref(),
            last_password_change_date_time: self.last_password_change_date_time,
            on_premises_sync_enabled: self.on_premises_sync_enabled,
            on_premises_last_sync_date_time: self.on_premises_last_sync_date_time,
            on_premises_immutable_id: self.on_premises_immutable_id.as_deref(),
            on_premises_provisioning_errors: self.on_premises_provisioning_errors(),
            age_group: self.age_group(),
            consent_provided_for_minor: self.consent_provided_for_minor(),
            legal_age_group_classification: self.legal_age_group_classification(),
            proxy_addresses: &self.proxy_addresses,
            created_date_time: self.created_date_time,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full_user() -> serde_json::Value {
        json!({
            "id": "u-1", "userPrincipalName": "ann@contoso.com", "displayName": "Ann",
            "mail": "ann@contoso.com", "userType": "Guest", "creationType": "Invitation",
            "accountEnabled": false, "passwordPolicies": "DisablePasswordExpiration",
            "lastPasswordChangeDateTime": "2026-01-02T03:04:05Z", "onPremisesSyncEnabled": true,
            "onPremisesLastSyncDateTime": "2026-02-03T04:05:06Z", "onPremisesImmutableId": "abc=",
            "onPremisesProvisioningErrors": [{"category": "PropertyConflict",
                "occurredDateTime": "2026-03-04T05:06:07Z",
                "propertyCausingError": "UserPrincipalName", "value": "ann@contoso.com"}],
            "ageGroup": "minor", "consentProvidedForMinor": "denied",
            "legalAgeGroupClassification": "MinorWithoutParentalConsent",
            "proxyAddresses": ["SMTP:ann@contoso.com", "smtp:a@contoso.com"],
            "createdDateTime": "2025-01-01T00:00:00Z"
        })
    }

    #[test]
    fn every_property_survives_a_round_trip_in_graphs_shape() {
        let user: User = serde_json::from_value(full_user()).unwrap();
        assert_eq!(user.creation_type(), Some("Invitation"));
        assert_eq!(user.on_premises_provisioning_errors().len(), 1);
        assert_eq!(user.age_group(), Some("minor"));
        assert_eq!(user.consent_provided_for_minor(), Some("denied"));
        assert_eq!(
            user.legal_age_group_classification(),
            Some("MinorWithoutParentalConsent")
        );
        let written = serde_json::to_value(&user).unwrap();
        let mut expected = full_user();
        for key in [
            "lastPasswordChangeDateTime",
            "onPremisesLastSyncDateTime",
            "createdDateTime",
        ] {
            // chrono writes UTC as `+00:00`; the instant is the same.
            let instant: DateTime<Utc> = serde_json::from_value(expected[key].clone()).unwrap();
            expected[key] = json!(instant);
        }
        let errors = &mut expected["onPremisesProvisioningErrors"][0]["occurredDateTime"];
        let instant: DateTime<Utc> = serde_json::from_value(errors.clone()).unwrap();
        *errors = json!(instant);
        assert_eq!(written, expected);
        assert_eq!(serde_json::from_value::<User>(written).unwrap(), user);
    }

    #[test]
    fn a_user_without_seldom_properties_allocates_no_box() {
        let user: User = serde_json::from_value(json!({
            "id": "u-2", "creationType": null, "ageGroup": null,
            "onPremisesProvisioningErrors": null, "proxyAddresses": null,
            "consentProvidedForMinor": null, "legalAgeGroupClassification": null
        }))
        .unwrap();
        assert_eq!(user.seldom, None);
        assert!(user.on_premises_provisioning_errors().is_empty());
        assert!(user.proxy_addresses.is_empty());
        let written = serde_json::to_value(&user).unwrap();
        assert_eq!(written["ageGroup"], serde_json::Value::Null);
        assert_eq!(written["onPremisesProvisioningErrors"], json!([]));
        assert_eq!(written["proxyAddresses"], json!([]));
    }

    #[test]
    fn a_parse_error_names_the_graph_type() {
        let error = serde_json::from_value::<User>(json!("not a user")).unwrap_err();
        assert!(error.to_string().contains("struct User"), "{error}");
    }

    #[test]
    fn seldom_properties_set_empty_are_no_box() {
        let mut user = User::default();
        user.set_seldom(SeldomUserProperties::default());
        assert_eq!(user, User::default());
        user.set_seldom(SeldomUserProperties {
            age_group: Some("minor".into()),
            ..SeldomUserProperties::default()
        });
        assert_eq!(user.age_group(), Some("minor"));
    }

    #[test]
    fn a_user_is_at_most_176_bytes() {
        // What a 100,000-user tenant holds inline per user (issue 10): 264 bytes before the
        // seldom properties were boxed.
        assert!(
            std::mem::size_of::<User>() <= 176,
            "{}",
            std::mem::size_of::<User>()
        );
    }
}
