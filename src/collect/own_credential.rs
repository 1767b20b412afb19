//! When the agent's own client secret expires: the agent's application registration (the one
//! whose `appId` is the tenant's `client_id`) is among the `/applications` the scan lists with
//! `Application.Read.All`, and its `passwordCredentials` carry each secret's `endDateTime` and
//! `hint`, the secret's first three characters
//! (learn.microsoft.com/graph/api/resources/passwordcredential). That end date goes to
//! `m365_posture_credential_expiry_timestamp_seconds`, as the certificate's does, so
//! `M365PostureCredentialExpiring` fires for secrets too.
//!
//! Silence is not evidence: when the registration is not in the list (an app registered in
//! another tenant) or no secret matches, the metric keeps what it had.

use crate::snapshot::Application;
use chrono::{DateTime, Utc};

/// The end date of the secret in use: among the agent's application's secrets whose hint is
/// the secret's first three characters, the earliest end (two secrets with the same hint
/// cannot be told apart, so the sooner one counts).
pub fn secret_expiry(
    applications: &[Application],
    client_id: &str,
    hint: &str,
) -> Option<DateTime<Utc>> {
    applications
        .iter()
        .filter(|app| {
            app.app_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(client_id))
        })
        .flat_map(|app| &app.password_credentials)
        .filter(|secret| secret.hint.as_deref() == Some(hint))
        .filter_map(|secret| secret.end_date_time)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::PasswordCredential;

    fn at(text: &str) -> Option<DateTime<Utc>> {
        text.parse().ok()
    }

    fn app(app_id: &str, secrets: &[(&str, &str)]) -> Application {
        Application {
            app_id: Some(app_id.to_owned()),
            password_credentials: secrets
                .iter()
                .map(|(hint, end)| PasswordCredential {
                    key_id: None,
                    hint: Some((*hint).to_owned()),
                    end_date_time: at(end),
                })
                .collect(),
            ..Application::default()
        }
    }

    const AGENT: &str = "4a1aa1d5-c567-49d0-ad0b-cd957a47f842";

    #[test]
    fn the_secret_with_our_hint_on_our_app_counts() {
        let apps = [
            app("other", &[("abc", "2026-01-01T00:00:00Z")]),
            app(
                AGENT,
                &[
                    ("xyz", "2026-02-01T00:00:00Z"),
                    ("abc", "2027-03-01T00:00:00Z"),
                ],
            ),
        ];
        assert_eq!(
            secret_expiry(&apps, &AGENT.to_uppercase(), "abc"),
            at("2027-03-01T00:00:00Z")
        );
    }

    #[test]
    fn two_secrets_with_one_hint_give_the_sooner_end() {
        let apps = [app(
            AGENT,
            &[
                ("abc", "2027-03-01T00:00:00Z"),
                ("abc", "2026-12-20T00:00:00Z"),
            ],
        )];
        assert_eq!(
            secret_expiry(&apps, AGENT, "abc"),
            at("2026-12-20T00:00:00Z")
        );
    }

    #[test]
    fn no_registration_or_no_matching_hint_is_unknown() {
        assert_eq!(secret_expiry(&[], AGENT, "abc"), None);
        let apps = [app(AGENT, &[("xyz", "2027-03-01T00:00:00Z")])];
        assert_eq!(secret_expiry(&apps, AGENT, "abc"), None);
    }
}
