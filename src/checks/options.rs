//! Thresholds and switches of the checks (`[checks]` in the config), with the defaults pinned
//! by CONTRACT section 4 and `findings-spec.md` section 3.

use serde::{Deserialize, Serialize};

/// How `user.proxy_addresses_configured` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyAddressMode {
    /// A secondary `smtp:` address outside `*.onmicrosoft.com`, or a primary other than `mail`.
    #[default]
    Aliases,
    /// Any non-empty `proxyAddresses`.
    Strict,
    /// Any address other than the primary `SMTP:` one.
    AnyNonPrimary,
}

/// What to do with third-party apps whose certification cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownCertification {
    /// Count unknown as not certified / not attested (parity).
    #[default]
    Flag,
    /// Do not report apps whose certification is unknown.
    Skip,
}

/// Check options. Every field has a default; unknown keys are config errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckOptions {
    /// Domains treated as internal besides the tenant's verified domains.
    pub extra_internal_domains: Vec<String>,
    /// Users (UPN or id, exact, case-insensitive) excluded from every user finding.
    pub exclude_users: Vec<String>,
    /// `app.*`: tenant ids whose apps are first-party besides Microsoft's (GUIDs).
    pub first_party_tenant_ids: Vec<String>,
    /// `user.password_not_changed`: maximum password age.
    pub password_max_age_days: u32,
    /// `user.password_not_changed`: also check guests.
    pub password_age_include_guests: bool,
    /// `user.password_not_changed`: also check disabled users.
    pub password_age_include_disabled: bool,
    /// `user.password_expiration_disabled`: skip synced users (Entra Connect stamps the flag).
    pub password_expiration_exclude_synced: bool,
    /// `user.onprem_sync_stale`: maximum age of the last sync.
    pub sync_max_age_days: u32,
    /// `user.onprem_sync_stale`: fire only when the tenant-wide sync is stale too.
    pub sync_require_tenant_stale: bool,
    /// `user.proxy_addresses_configured` mode.
    pub proxy_addresses_mode: ProxyAddressMode,
    /// `user.fido2_unattested`: skip synced passkeys (they cannot be attested).
    pub fido2_exclude_synced_passkeys: bool,
    /// `user.whfb_weak_key`: also flag `unknown` key strength.
    pub whfb_flag_unknown: bool,
    /// `user.tap_long_lived`: maximum lifetime in minutes.
    pub tap_max_lifetime_minutes: u32,
    /// `user.tap_*`: only passes that are still usable.
    pub tap_usable_only: bool,
    /// `app.not_*`: what to do when certification is unknown.
    pub unknown_certification: UnknownCertification,
    /// `app.certification_expiring`: days ahead.
    pub certification_expiry_days: u32,
    /// `domain.spf_allows_any`: `?all` (and no `all`) counts as allowing any IP.
    pub spf_neutral_counts: bool,
    /// SPF/DMARC: only domains whose supportedServices include `Email`.
    pub only_email_domains: bool,
    /// `domain.dmarc_missing`: check the initial `*.onmicrosoft.com` domain too.
    pub dmarc_include_moera: bool,
    /// `domain.dmarc_partial`: `p=quarantine` counts as partial.
    pub dmarc_quarantine_is_partial: bool,
    /// `domain.dmarc_partial`: DMARCbis `t=y` counts as partial.
    pub dmarc_t_flag_counts: bool,
    /// `mail.*` and `calendar.*`: subdomains of verified domains are internal.
    pub subdomains_internal: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            extra_internal_domains: Vec::new(),
            exclude_users: Vec::new(),
            first_party_tenant_ids: Vec::new(),
            password_max_age_days: 90,
            password_age_include_guests: false,
            password_age_include_disabled: false,
            password_expiration_exclude_synced: false,
            sync_max_age_days: 7,
            sync_require_tenant_stale: false,
            proxy_addresses_mode: ProxyAddressMode::Aliases,
            fido2_exclude_synced_passkeys: false,
            whfb_flag_unknown: false,
            tap_max_lifetime_minutes: 480,
            tap_usable_only: true,
            unknown_certification: UnknownCertification::Flag,
            certification_expiry_days: 90,
            spf_neutral_counts: true,
            only_email_domains: false,
            dmarc_include_moera: true,
            dmarc_quarantine_is_partial: false,
            dmarc_t_flag_counts: true,
            subdomains_internal: false,
        }
    }
}
