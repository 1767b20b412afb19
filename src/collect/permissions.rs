//! The Microsoft Graph application permissions the checks need, as Microsoft names them, with
//! the permissions that also grant each read and the checks each one disables; and the
//! decoding of an access token's `roles` claim to find the missing ones before any request.
//!
//! Names and alternatives follow the "Application" row of each page's permissions table on
//! learn.microsoft.com/graph/api/ (organization-get, domain-list, user-list,
//! serviceprincipal-list, authenticationmethodsroot-list-userregistrationdetails,
//! authentication-list-methods, calendar-list-calendarpermissions, mailfolder-list-messagerules)
//! and the permissions reference (learn.microsoft.com/graph/permissions-reference), where the
//! application form of `Calendars.ReadBasic` is `Calendars.ReadBasic.All`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// One permission the agent asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The least privileged application permission, the one to grant.
    pub permission: &'static str,
    /// Higher privileged permissions that grant the same reads.
    pub also_granted_by: &'static [&'static str],
    /// The checks that cannot run without it, in words.
    pub disables: &'static str,
}

/// `User.Read.All`.
pub const USERS: &str = "User.Read.All";
/// `Calendars.ReadBasic.All`.
pub const CALENDARS: &str = "Calendars.ReadBasic.All";
/// `MailboxSettings.Read`.
pub const MAILBOX_SETTINGS: &str = "MailboxSettings.Read";
/// `UserAuthenticationMethod.Read.All`.
pub const AUTH_METHODS: &str = "UserAuthenticationMethod.Read.All";
/// `AuditLog.Read.All`.
pub const REGISTRATION_REPORT: &str = "AuditLog.Read.All";

/// Every permission, in the order `--probe` prints them.
pub const REQUIRED: &[Requirement] = &[
    Requirement {
        permission: USERS,
        also_granted_by: &["Directory.Read.All", "User.ReadWrite.All", "Directory.ReadWrite.All"],
        disables: "every user.*, calendar.* and mail.* check",
    },
    Requirement {
        permission: "Organization.Read.All",
        also_granted_by: &[
            "Directory.Read.All",
            "Organization.ReadWrite.All",
            "Directory.ReadWrite.All",
        ],
        disables: "user.onprem_sync_stale with sync_require_tenant_stale",
    },
    Requirement {
        permission: "Domain.Read.All",
        also_granted_by: &["Directory.Read.All", "Domain.ReadWrite.All", "Directory.ReadWrite.All"],
        disables: "every domain.*, calendar.* and mail.* check",
    },
    Requirement {
        permission: "Application.Read.All",
        also_granted_by: &[
            "Application.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        disables: "every app.* check",
    },
    Requirement {
        permission: REGISTRATION_REPORT,
        also_granted_by: &[AUTH_METHODS],
        disables: "no check (every user's methods are read instead, at more requests)",
    },
    Requirement {
        permission: AUTH_METHODS,
        also_granted_by: &["UserAuthenticationMethod.ReadWrite.All"],
        disables: "user.fido2_unattested, user.whfb_weak_key, user.tap_reusable, user.tap_long_lived",
    },
    Requirement {
        permission: CALENDARS,
        also_granted_by: &["Calendars.Read", "Calendars.ReadWrite"],
        disables: "calendar.shared_externally",
    },
    Requirement {
        permission: MAILBOX_SETTINGS,
        also_granted_by: &["MailboxSettings.ReadWrite"],
        disables: "mail.rule_forwards_external_attachment, mail.rule_forwards_external, mail.rule_redirects_external",
    },
];

impl Requirement {
    /// True when `roles` hold this permission or one that also grants it.
    pub fn is_met_by(&self, roles: &[String]) -> bool {
        std::iter::once(&self.permission)
            .chain(self.also_granted_by)
            .any(|p| roles.iter().any(|r| r.eq_ignore_ascii_case(p)))
    }
}

/// The `roles` claim of an app-only access token (a JWT), decoded without verifying the
/// signature (the token is ours, straight from the token endpoint). `None` when the token is
/// not a JWT or has no `roles` claim (delegated tokens carry `scp` instead).
pub fn token_roles(token: &str) -> Option<Vec<String>> {
    let claims = token_claims(token)?;
    let roles = claims.get("roles")?.as_array()?;
    Some(
        roles
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect(),
    )
}

/// The object id of the signed-in user of a delegated token (`oid` when `scp` is present).
pub fn signed_in_user(token: &str) -> Option<String> {
    let claims = token_claims(token)?;
    claims.get("scp")?;
    claims.get("oid")?.as_str().map(str::to_owned)
}

fn token_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("eyJhbGciOiJub25lIn0.{payload}.sig")
    }

    #[test]
    fn roles_are_read_from_the_payload_and_higher_permissions_count() {
        let token = jwt(serde_json::json!({"roles": ["Directory.Read.All", "Calendars.Read"]}));
        let roles = token_roles(&token).unwrap();
        let missing: Vec<&str> = REQUIRED
            .iter()
            .filter(|r| !r.is_met_by(&roles))
            .map(|r| r.permission)
            .collect();
        assert_eq!(
            missing,
            [REGISTRATION_REPORT, AUTH_METHODS, MAILBOX_SETTINGS]
        );
    }

    #[test]
    fn delegated_and_opaque_tokens_have_no_roles() {
        let delegated = jwt(serde_json::json!({"scp": "User.Read.All", "oid": "u1"}));
        assert_eq!(token_roles(&delegated), None);
        assert_eq!(signed_in_user(&delegated).as_deref(), Some("u1"));
        assert_eq!(token_roles("opaque"), None);
        assert_eq!(
            signed_in_user(&jwt(serde_json::json!({"oid": "app"}))),
            None
        );
    }
}
