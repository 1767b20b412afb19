//! The finding catalogue and the finding model.
//!
//! Owns the 29 stable finding ids of CONTRACT section 4 with their titles, categories, default
//! severities and remediation text, and the [`Finding`] value a check produces. Ids are never
//! reused; a change in meaning gets a new id. The catalogue is a flat table on purpose.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Severity of a finding. `critical` is reserved and not used by any default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational or scheduled review.
    Low,
    /// Act this month.
    Medium,
    /// Act this week.
    High,
    /// Act today (reserved).
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The label value used in metrics, JSON and CEF `cs5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// The CEF header severity (0-10).
    pub fn cef_level(self) -> u8 {
        match self {
            Self::Low => 3,
            Self::Medium => 5,
            Self::High => 8,
            Self::Critical => 10,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// Category of a finding, as metric label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// User account settings.
    UserAccountSettings,
    /// External calendar sharing (Cloudflare files it under file sharing).
    FileSharing,
    /// Third-party apps.
    ThirdPartyApps,
    /// Email administrator settings (domains, SPF, DMARC, app certification).
    EmailAdminSettings,
    /// External mail forwarding by inbox rules.
    EmailForwarding,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 5] = [
        Self::UserAccountSettings,
        Self::FileSharing,
        Self::ThirdPartyApps,
        Self::EmailAdminSettings,
        Self::EmailForwarding,
    ];

    /// The label value used in metrics, JSON and CEF `cat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserAccountSettings => "user_account_settings",
            Self::FileSharing => "file_sharing",
            Self::ThirdPartyApps => "third_party_apps",
            Self::EmailAdminSettings => "email_admin_settings",
            Self::EmailForwarding => "email_forwarding",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

/// Static facts about one finding.
#[derive(Debug, Clone, Copy)]
pub struct FindingMeta {
    /// The stable id (`user.account_disabled`).
    pub id: &'static str,
    /// Title in the seed's wording.
    pub title: &'static str,
    /// Category.
    pub category: Category,
    /// Default severity (configurable per finding).
    pub severity: Severity,
    /// Cloudflare's FindingTypeID, for cross-reference.
    pub type_id: &'static str,
    /// What the finding means and how to fix it, one or two sentences (CEF `msg`).
    pub remediation: &'static str,
}

macro_rules! catalogue {
    ($( $variant:ident => ($id:literal, $title:literal, $cat:ident, $sev:ident, $type_id:literal, $rem:literal) ),* $(,)?) => {
        /// One of the 29 findings. The string form is the stable id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum FindingId { $( #[doc = $title] $variant, )* }

        impl FindingId {
            /// Every finding, in catalogue order.
            pub const ALL: &'static [FindingId] = &[ $( FindingId::$variant, )* ];

            /// Static facts about this finding.
            pub fn meta(self) -> &'static FindingMeta {
                match self {
                    $( FindingId::$variant => &FindingMeta {
                        id: $id, title: $title, category: Category::$cat,
                        severity: Severity::$sev, type_id: $type_id, remediation: $rem,
                    }, )*
                }
            }
        }
    };
}

catalogue! {
    Fido2Unattested => ("user.fido2_unattested", "FIDO2 authentication method unattested", UserAccountSettings, Low, "5a9fd288-c04f-4f7a-8976-bfd5464c6cf1",
        "A FIDO2 security key or passkey registered by this user has no attestation, so its make and model are unproven. Enforce attestation in the FIDO2 authentication method policy and have the user re-register an attested key."),
    OnpremProvisioningError => ("user.onprem_provisioning_error", "Provisioning error for on-prem user", UserAccountSettings, Low, "3123d99e-a83c-4d9d-9a10-80da5af6dee5",
        "Directory synchronization reports a provisioning error (such as a duplicate UPN or proxy address) for this user. Fix the conflicting attribute on-premises and let the next sync cycle clear it."),
    PasswordExpirationDisabled => ("user.password_expiration_disabled", "Password expiration disabled for user", UserAccountSettings, Low, "ce8cc363-7cbb-445e-8385-79ae7348e430",
        "The user's passwordPolicies contain DisablePasswordExpiration, so the tenant password expiry policy does not apply. Confirm this is intended or clear the flag with Update-MgUser."),
    PasswordNotChanged => ("user.password_not_changed", "Password not changed in last 90 days", UserAccountSettings, Low, "93be1fd1-b6c6-4b98-a04c-121d5ea66745",
        "This enabled member has not changed the password within the configured age. Review whether the account is still used and protected by MFA, or require a password change."),
    StrongPasswordDisabled => ("user.strong_password_disabled", "Strong password disabled for user", UserAccountSettings, Low, "aecfdcb2-ec1f-4571-be3c-4ae46c93125e",
        "The user's passwordPolicies contain DisableStrongPassword, so weak passwords are accepted. Remove the flag so the tenant password complexity rules apply."),
    OnpremSyncDisabled => ("user.onprem_sync_disabled", "Cloud sync disabled for on-prem user", UserAccountSettings, Low, "8370628b-73f1-41a5-bbff-4d5adee7bf33",
        "This user was synchronized from on-premises Active Directory but is no longer synced, so on-premises changes such as disabling the account no longer reach Entra ID. Re-enable sync or convert the account deliberately."),
    WhfbWeakKey => ("user.whfb_weak_key", "Weak Windows Hello for Business key strength", UserAccountSettings, Low, "6fae390f-07a3-4577-9821-034a7b29e18e",
        "A Windows Hello for Business key of this user is reported as weak. Remove the method and have the user re-provision Windows Hello on a device with a TPM."),
    OnpremSyncStale => ("user.onprem_sync_stale", "On-prem user not synced in 7 days", UserAccountSettings, Low, "1eefc5a1-e665-431a-b939-cfbb76a309f5",
        "This synchronized user has not been synced from on-premises within the configured age. Check Entra Connect health and the object's sync scope."),
    NotLegalAdult => ("user.not_legal_adult", "User is not a legal adult", UserAccountSettings, Low, "329030a3-db43-4959-9d92-2616a42f1731",
        "The user's age group marks a minor or non-adult. Confirm parental consent and that the account's access matches your policy for minors."),
    ProxyAddressesConfigured => ("user.proxy_addresses_configured", "User configured proxy addresses", UserAccountSettings, Low, "61406f68-feea-43c5-bda8-b7c4ef9b83cf",
        "The user receives mail at additional addresses beyond the primary one. Review that every alias is expected, since aliases can be used to receive mail unnoticed."),
    AccountDisabled => ("user.account_disabled", "User account disabled", UserAccountSettings, Low, "0a8bd094-9138-4e7f-8ce8-bebdf5c27c4e",
        "The account is disabled but still exists with its licences, group memberships and data. Remove it when it is no longer needed, or document why it is kept."),
    TapReusable => ("user.tap_reusable", "Reusable temporary access pass", UserAccountSettings, Low, "98571e6b-c323-48bc-8c60-f0425c7f9342",
        "A temporary access pass of this user can be used more than once. Issue one-time passes and delete reusable ones once onboarding is done."),
    TapLongLived => ("user.tap_long_lived", "Long-lived temporary access pass", UserAccountSettings, Low, "45cdbd9c-1594-488b-973e-7c62c6e7234e",
        "A usable temporary access pass of this user lives longer than the configured limit. Delete it and issue shorter passes."),
    CalendarSharedExternally => ("calendar.shared_externally", "Calendar Shared Externally", FileSharing, Low, "7d2d9b00-3871-4abf-9e65-f29cf00c428b",
        "The user's calendar is shared with someone outside the organization. Remove the permission unless the external sharing is intended."),
    AppNotMicrosoftCertified => ("app.not_microsoft_certified", "App Not Certified By Microsoft", ThirdPartyApps, Low, "3f049bb1-3709-4d8f-8591-59dd034cf396",
        "A third-party application with a service principal in the tenant is not Microsoft 365 certified (or its certification cannot be read). Review its permissions and whether it is still needed."),
    AppNotPublisherAttested => ("app.not_publisher_attested", "App Not Attested By Publisher", ThirdPartyApps, Low, "d7390d6b-f466-4293-8528-6218e29b1179",
        "A third-party application has no publisher attestation (or it cannot be read). Review its permissions and its publisher before keeping it."),
    AppDisabledByMicrosoft => ("app.disabled_by_microsoft", "App Disabled By Microsoft", ThirdPartyApps, Low, "b5156b76-caaa-4ca8-bdb7-ea282da62356",
        "Microsoft disabled this application, usually for a violation of its services agreement. Investigate what the app did in the tenant and remove it."),
    SpfAllowsAny => ("domain.spf_allows_any", "Microsoft Domain SPF Record Allows Any IP Address", EmailAdminSettings, High, "27893e48-663e-43f9-83d4-c158c50259d0",
        "The domain's SPF policy lets any IP address send mail as the domain. End the record with -all or ~all and list only your real senders."),
    SpfMissing => ("domain.spf_missing", "Microsoft Domain SPF Record Not Present", EmailAdminSettings, Medium, "009093d9-43df-45a2-bdc6-2f35fc3a0c71",
        "The domain has no usable SPF record (none, or several). Publish exactly one v=spf1 TXT record."),
    SpfInvalid => ("domain.spf_invalid", "Microsoft Domain SPF Record Invalid (PermError)", EmailAdminSettings, Medium, "a4074b60-6eda-4b94-bb71-238ae171faf3",
        "Receivers treat the domain's SPF record as a permerror (syntax error, more than 10 DNS-querying terms, more than two void lookups, an include loop, or an include/redirect target without SPF), so SPF protects nothing. Fix the term named in the details."),
    DmarcMissing => ("domain.dmarc_missing", "Microsoft Domain DMARC Record Not Present", EmailAdminSettings, Medium, "bb3d3760-2c4e-4161-9164-cff92e809f9c",
        "Neither the domain nor its organizational domain publishes a valid DMARC record. Publish a v=DMARC1 record at _dmarc with a reporting address."),
    DmarcNotEnforced => ("domain.dmarc_not_enforced", "Microsoft Domain DMARC Not Enforced", EmailAdminSettings, Medium, "a020d87d-332b-49d1-acc3-16c19d72fba4",
        "The DMARC policy that applies to the domain is p=none, so spoofed mail is delivered. Move to p=quarantine or p=reject once reports are clean."),
    DmarcSubdomainsNotEnforced => ("domain.dmarc_subdomains_not_enforced", "Microsoft Domain DMARC Not Enforced for Subdomains", EmailAdminSettings, Medium, "1837a549-4d4e-4101-917c-e9a4036e0c08",
        "The DMARC subdomain policy (sp, or p when sp is absent) is none, so subdomains can be spoofed. Set sp=quarantine or sp=reject."),
    DmarcPartial => ("domain.dmarc_partial", "Microsoft Domain DMARC Only Partially Enforced", EmailAdminSettings, Medium, "943414ed-7c79-4d17-a253-8d73f34dcc1d",
        "The DMARC policy is enforced for only a percentage of failing mail (pct below 100). Raise pct to 100."),
    DomainNotVerified => ("domain.not_verified", "Microsoft Domain Not Verified", EmailAdminSettings, Medium, "dd1e9aba-57ee-4cf1-a895-dd2f1fc166a7",
        "The domain is added to the tenant but not verified. Verify it with the DNS record Microsoft gives, or remove it."),
    AppCertificationExpiring => ("app.certification_expiring", "App Certification Expires in 90 Days or Sooner", EmailAdminSettings, Low, "d5ede282-0339-4983-88f3-849ac59ba840",
        "The application's Microsoft 365 certification expires soon or has expired. Ask the publisher to renew it or review the app."),
    RuleForwardsExternalAttachment => ("mail.rule_forwards_external_attachment", "Active Message Rule Forwards Externally As Attachment", EmailForwarding, Low, "9efca21a-aba2-452f-bb17-e66d34b58765",
        "An enabled inbox rule forwards mail as attachments to an external address, a common sign of a compromised mailbox. Confirm with the user and remove the rule if unexpected."),
    RuleForwardsExternal => ("mail.rule_forwards_external", "Active Message Rule Forwards Externally", EmailForwarding, Low, "42fa3fe6-da72-4bf0-9bc9-5faa4a118ec4",
        "An enabled inbox rule forwards mail to an external address, a common sign of a compromised mailbox. Confirm with the user and remove the rule if unexpected."),
    RuleRedirectsExternal => ("mail.rule_redirects_external", "Active Message Rule Redirects Externally", EmailForwarding, Low, "b75ba81e-c98d-4b78-b5a1-47a2f54499e8",
        "An enabled inbox rule redirects mail to an external address, a common sign of a compromised mailbox. Confirm with the user and remove the rule if unexpected."),
}

impl FindingId {
    /// The stable id string.
    pub fn as_str(self) -> &'static str {
        self.meta().id
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FindingId {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|id| id.as_str() == s)
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

impl Serialize for FindingId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FindingId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One instance of a finding, as a check produces it.
///
/// Severity is not here: it comes from the catalogue and the config's overrides when the finding
/// is reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Which finding.
    pub finding: FindingId,
    /// The instance key (CONTRACT section 4, last column): object ids or a domain name.
    pub resource_id: String,
    /// A human name for the resource: UPN, app display name or domain name.
    pub resource_name: String,
    /// Evidence a SIEM analyst needs (recipients, the SPF term, DMARC tags, ...).
    pub details: crate::details::Details,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_29_unique_ids_that_round_trip() {
        assert_eq!(FindingId::ALL.len(), 29);
        let mut seen = std::collections::BTreeSet::new();
        for id in FindingId::ALL {
            assert!(seen.insert(id.as_str()), "duplicate {id}");
            assert_eq!(id.as_str().parse::<FindingId>(), Ok(*id));
        }
        assert!("user.nope".parse::<FindingId>().is_err());
    }

    #[test]
    fn severities_match_the_contract() {
        let high: Vec<_> = FindingId::ALL
            .iter()
            .filter(|id| id.meta().severity == Severity::High)
            .collect();
        assert_eq!(high, vec![&FindingId::SpfAllowsAny]);
        assert_eq!(
            FindingId::DomainNotVerified.meta().severity,
            Severity::Medium
        );
        assert_eq!(
            FindingId::AppCertificationExpiring.meta().category,
            Category::EmailAdminSettings
        );
        assert_eq!(Severity::High.cef_level(), 8);
    }
}
