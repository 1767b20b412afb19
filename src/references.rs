//! Where each finding's fix is documented: the Microsoft Learn page first, then the CIS
//! Microsoft 365 Foundations Benchmark (v6) or CISA SCuBA control where one maps (by id, from
//! the comparison in findings-spec.md section 7), then an RFC where the rule comes from one.
//!
//! Keyed by the finding id string (not by [`FindingId`]) so that a finding added to the
//! catalogue on another branch can have its row here before it lands; the tests keep every
//! catalogue finding covered. A flat table on purpose.

use crate::findings::FindingId;
use serde::Serialize;

/// Who publishes a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Microsoft Learn (the fix).
    Microsoft,
    /// CIS Microsoft 365 Foundations Benchmark v6 (licensed; the id is the recommendation).
    Cis,
    /// CISA Secure Cloud Business Applications (SCuBA) baselines.
    CisaScuba,
    /// An IETF RFC.
    Rfc,
}

/// One reference of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reference {
    /// Who publishes it.
    pub source: Source,
    /// The control id (`MS.EXO.2.2v3`, `2.1.8`, `RFC 7208`), or the page title for Microsoft.
    pub id: &'static str,
    /// Where to read it.
    pub url: &'static str,
}

impl Reference {
    /// How a reader sees it: the page title, "CIS M365 2.1.8", "CISA SCuBA MS.EXO.2.2v3" or
    /// "RFC 7208".
    pub fn label(&self) -> String {
        match self.source {
            Source::Microsoft | Source::Rfc => self.id.to_owned(),
            Source::Cis => format!("CIS M365 {}", self.id),
            Source::CisaScuba => format!("CISA SCuBA {}", self.id),
        }
    }
}

const CIS_URL: &str = "https://www.cisecurity.org/benchmark/microsoft_365";

const fn ms(id: &'static str, url: &'static str) -> Reference {
    Reference {
        source: Source::Microsoft,
        id,
        url,
    }
}

const fn cis(id: &'static str) -> Reference {
    Reference {
        source: Source::Cis,
        id,
        url: CIS_URL,
    }
}

const fn scuba(id: &'static str, url: &'static str) -> Reference {
    Reference {
        source: Source::CisaScuba,
        id,
        url,
    }
}

const fn rfc(id: &'static str, url: &'static str) -> Reference {
    Reference {
        source: Source::Rfc,
        id,
        url,
    }
}

const SPF: Reference = ms(
    "Set up SPF to identify valid email sources for your Microsoft 365 domain",
    "https://learn.microsoft.com/en-us/defender-office-365/email-authentication-spf-configure",
);
const DMARC: Reference = ms(
    "Set up DMARC to validate the From address domain for senders in Microsoft 365",
    "https://learn.microsoft.com/en-us/defender-office-365/email-authentication-dmarc-configure",
);
const FORWARDING: Reference = ms(
    "Control automatic external email forwarding in Microsoft 365",
    "https://learn.microsoft.com/en-us/defender-office-365/outbound-spam-policies-external-email-forwarding",
);
const APP_PERMISSIONS: Reference = ms(
    "Review permissions granted to enterprise applications",
    "https://learn.microsoft.com/en-us/entra/identity/enterprise-apps/manage-application-permissions",
);
const APP_CERTIFICATION: Reference = ms(
    "Microsoft 365 App Compliance Program overview",
    "https://learn.microsoft.com/en-us/microsoft-365-app-certification/overview",
);
const SYNC_ERRORS: Reference = ms(
    "Troubleshoot errors during synchronization",
    "https://learn.microsoft.com/en-us/entra/identity/hybrid/connect/tshoot-connect-sync-errors",
);
const PASSWORD_POLICIES: Reference = ms(
    "Combined password policy and check for weak passwords in Microsoft Entra ID",
    "https://learn.microsoft.com/en-us/entra/identity/authentication/concept-password-ban-bad-combined-policy",
);
const TAP: Reference = ms(
    "Configure a Temporary Access Pass in Microsoft Entra ID",
    "https://learn.microsoft.com/en-us/entra/identity/authentication/howto-authentication-temporary-access-pass",
);
const CONSENT: Reference = scuba(
    "MS.AAD.5.2v1",
    "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/aad.md#msaad52v1",
);
const FORWARDING_SCUBA: Reference = scuba("MS.EXO.1.1v2", "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/exo.md#msexo11v2");
const SPF_SCUBA: Reference = scuba(
    "MS.EXO.2.2v3",
    "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/exo.md#msexo22v3",
);
const DMARC_SCUBA: Reference = scuba(
    "MS.EXO.4.1v1",
    "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/exo.md#msexo41v1",
);
const DMARC_REJECT_SCUBA: Reference = scuba(
    "MS.EXO.4.2v1",
    "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/exo.md#msexo42v1",
);
const RFC_7208: Reference = rfc("RFC 7208", "https://www.rfc-editor.org/rfc/rfc7208");
const RFC_7489: Reference = rfc("RFC 7489", "https://www.rfc-editor.org/rfc/rfc7489");

/// The references of a finding id, the Microsoft page first; empty for an unknown id.
pub fn references(finding: &str) -> &'static [Reference] {
    match finding {
        "user.fido2_unattested" => {
            const {
                &[ms("Enable passkeys (FIDO2) for your organization", "https://learn.microsoft.com/en-us/entra/identity/authentication/how-to-enable-passkey-fido2")]
            }
        }
        "user.onprem_provisioning_error" => const { &[SYNC_ERRORS] },
        "user.password_expiration_disabled" => {
            const {
                &[ms("Set the password expiration policy for your organization", "https://learn.microsoft.com/en-us/microsoft-365/admin/manage/set-password-expiration-policy")]
            }
        }
        "user.password_not_changed" => {
            const {
                &[ms("Set the password expiration policy for your organization", "https://learn.microsoft.com/en-us/microsoft-365/admin/manage/set-password-expiration-policy")]
            }
        }
        "user.strong_password_disabled" => const { &[PASSWORD_POLICIES] },
        "user.onprem_sync_disabled" => {
            const {
                &[ms("Microsoft Entra Connect Sync: understand and customize synchronization", "https://learn.microsoft.com/en-us/entra/identity/hybrid/connect/how-to-connect-sync-whatis")]
            }
        }
        "user.whfb_weak_key" => {
            const {
                &[ms("Windows Hello for Business", "https://learn.microsoft.com/en-us/windows/security/identity-protection/hello-for-business/")]
            }
        }
        "user.onprem_sync_stale" => {
            const {
                &[ms("Monitor Microsoft Entra Connect Sync with Microsoft Entra Connect Health", "https://learn.microsoft.com/en-us/entra/identity/hybrid/connect/how-to-connect-health-sync")]
            }
        }
        "user.not_legal_adult" => {
            const {
                &[ms(
                    "user resource type: ageGroup and consentProvidedForMinor",
                    "https://learn.microsoft.com/en-us/graph/api/resources/user",
                )]
            }
        }
        "user.proxy_addresses_configured" => {
            const {
                &[ms("Add or remove email addresses for a mailbox in Exchange Online", "https://learn.microsoft.com/en-us/exchange/recipients-in-exchange-online/manage-user-mailboxes/add-or-remove-email-addresses")]
            }
        }
        "user.account_disabled" => {
            const {
                &[ms(
                    "Delete a user from your organization",
                    "https://learn.microsoft.com/en-us/microsoft-365/admin/add-users/delete-a-user",
                )]
            }
        }
        "user.tap_reusable" | "user.tap_long_lived" => const { &[TAP] },
        "calendar.shared_externally" => {
            const {
                &[
            ms("Share calendars with external users", "https://learn.microsoft.com/en-us/microsoft-365/admin/manage/share-calendars-with-external-users"),
            cis("1.3.3"),
            scuba("MS.EXO.6.2v1", "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/exo.md#msexo62v1"),
        ]
            }
        }
        "app.not_microsoft_certified"
        | "app.not_publisher_attested"
        | "app.certification_expiring" => {
            const { &[APP_CERTIFICATION, APP_PERMISSIONS, cis("5.1.5.1"), CONSENT] }
        }
        "app.disabled_by_microsoft" => {
            const {
                &[
                    ms(
                        "application resource type: disabledByMicrosoftStatus",
                        "https://learn.microsoft.com/en-us/graph/api/resources/application",
                    ),
                    APP_PERMISSIONS,
                ]
            }
        }
        "domain.spf_allows_any" | "domain.spf_missing" => {
            const { &[SPF, cis("2.1.8"), SPF_SCUBA, RFC_7208] }
        }
        "domain.spf_invalid" => const { &[SPF, RFC_7208, cis("2.1.8"), SPF_SCUBA] },
        "domain.dmarc_missing" => const { &[DMARC, cis("2.1.10"), DMARC_SCUBA, RFC_7489] },
        "domain.dmarc_not_enforced"
        | "domain.dmarc_subdomains_not_enforced"
        | "domain.dmarc_partial" => const { &[DMARC, cis("2.1.10"), DMARC_REJECT_SCUBA, RFC_7489] },
        "domain.not_verified" => {
            const {
                &[ms(
                    "Add a domain to Microsoft 365",
                    "https://learn.microsoft.com/en-us/microsoft-365/admin/setup/add-domain",
                )]
            }
        }
        "mail.rule_forwards_external_attachment"
        | "mail.rule_forwards_external"
        | "mail.rule_redirects_external" => const { &[FORWARDING, cis("6.2.1"), FORWARDING_SCUBA] },
        _ => &[],
    }
}

/// The Microsoft Learn page of a finding (its first reference).
pub fn primary_url(finding: FindingId) -> Option<&'static str> {
    references(finding.as_str()).first().map(|r| r.url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXO_BASELINE: &str =
        "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/exo.md";

    #[test]
    fn every_finding_starts_with_a_microsoft_learn_page() {
        for id in FindingId::ALL {
            let refs = references(id.as_str());
            let first = refs
                .first()
                .unwrap_or_else(|| panic!("{id} has no reference"));
            assert_eq!(first.source, Source::Microsoft, "{id}");
            assert!(
                first.url.starts_with("https://learn.microsoft.com/en-us/"),
                "{id}"
            );
        }
    }

    #[test]
    fn control_ids_are_well_formed() {
        let scuba_id = regex::Regex::new(r"^MS\.(AAD|EXO)\.\d+\.\d+v\d+$").unwrap();
        let cis_id = regex::Regex::new(r"^\d+(\.\d+)+$").unwrap();
        for id in FindingId::ALL {
            for r in references(id.as_str()) {
                match r.source {
                    Source::CisaScuba => {
                        assert!(scuba_id.is_match(r.id), "{id}: {}", r.id);
                        let anchor = r.id.to_lowercase().replace('.', "");
                        assert!(r.url.ends_with(&format!("#{anchor}")), "{id}: {}", r.url);
                        assert!(r.url.starts_with(EXO_BASELINE) || r.url.contains("/aad.md#"));
                    }
                    Source::Cis => assert!(cis_id.is_match(r.id), "{id}: {}", r.id),
                    Source::Rfc => assert!(r.url.ends_with(&r.id[4..]), "{id}"),
                    Source::Microsoft => assert!(r.url.starts_with("https://learn.microsoft.com/")),
                }
            }
        }
    }

    #[test]
    fn unknown_ids_have_none() {
        assert!(references("user.nope").is_empty());
    }
}
