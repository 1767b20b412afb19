//! The probabilities the generator draws with. Every finding's expected share follows from
//! these; the README table lists the resulting shares and a test checks them.

/// Users that are B2B guests.
pub const GUEST: f64 = 0.08;
/// Guests whose account is disabled.
pub const GUEST_DISABLED: f64 = 0.03;
/// Members synced from on-premises AD (`onPremisesSyncEnabled == true`).
pub const SYNCED: f64 = 0.40;
/// Members formerly synced (`onPremisesSyncEnabled == false`).
pub const FORMERLY_SYNCED: f64 = 0.02;
/// Synced members whose last sync is 8 to 60 days old.
pub const SYNC_STALE: f64 = 0.05;
/// Synced or formerly synced members with a provisioning error.
pub const PROVISIONING_ERROR: f64 = 0.02;
/// Synced or formerly synced members stamped `DisablePasswordExpiration` (Entra Connect PHS).
pub const SYNCED_NEVER_EXPIRES: f64 = 0.80;
/// Cloud members with `DisablePasswordExpiration`.
pub const CLOUD_NEVER_EXPIRES: f64 = 0.06;
/// Cloud members with `DisableStrongPassword`.
pub const CLOUD_WEAK_PASSWORD: f64 = 0.01;
/// Members whose account is disabled.
pub const MEMBER_DISABLED: f64 = 0.06;
/// Members whose password is older than 90 days.
pub const PASSWORD_OLD: f64 = 0.35;
/// Members that are minors.
pub const MINOR: f64 = 0.005;
/// Members with a secondary SMTP address on a non-onmicrosoft domain.
pub const PROXY_ALIAS: f64 = 0.10;
/// Members with an Exchange Online mailbox.
pub const MAILBOX: f64 = 0.90;
/// Members with a Microsoft Authenticator registration.
pub const AUTHENTICATOR: f64 = 0.60;
/// Members with a phone method.
pub const PHONE: f64 = 0.30;
/// Members with a FIDO2 key or passkey.
pub const FIDO2: f64 = 0.08;
/// FIDO2 methods that are not attested.
pub const FIDO2_UNATTESTED: f64 = 0.30;
/// Members with Windows Hello for Business.
pub const WHFB: f64 = 0.15;
/// WHfB keys of weak strength.
pub const WHFB_WEAK: f64 = 0.10;
/// Members with a Temporary Access Pass.
pub const TAP: f64 = 0.02;
/// TAPs usable more than once.
pub const TAP_REUSABLE: f64 = 0.50;
/// TAPs living longer than 480 minutes.
pub const TAP_LONG: f64 = 0.50;
/// Mailboxes whose calendar is shared with an external address.
pub const CALENDAR_EXTERNAL: f64 = 0.03;
/// Mailboxes whose calendar is shared with a colleague.
pub const CALENDAR_INTERNAL: f64 = 0.10;
/// Mailboxes with ordinary (non-forwarding) inbox rules.
pub const BENIGN_RULES: f64 = 0.30;
/// Mailboxes with an enabled rule forwarding externally.
pub const FORWARD_EXTERNAL: f64 = 0.015;
/// Mailboxes with an enabled rule forwarding externally as attachment.
pub const FORWARD_ATTACHMENT: f64 = 0.005;
/// Mailboxes with an enabled rule redirecting externally.
pub const REDIRECT_EXTERNAL: f64 = 0.005;
/// Mailboxes with a disabled external forwarding rule (never a finding).
pub const FORWARD_DISABLED: f64 = 0.005;
/// Mailboxes with a rule forwarding to a colleague (never a finding).
pub const FORWARD_INTERNAL: f64 = 0.01;
