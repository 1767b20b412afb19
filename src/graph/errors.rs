//! The error model of Graph access: token-endpoint failures named in words with their AADSTS
//! code ([`AuthError`]), and Graph request failures ([`GraphError`]) that collection turns into
//! [`Unavailable`] reasons for the checks.
//!
//! Nothing here carries a token, secret or assertion: bodies are parsed into codes and
//! Microsoft's own messages, never echoed raw.

use crate::snapshot::Unavailable;
use serde::Deserialize;

/// A token request that failed, or a credential that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The token endpoint refused the request: `cause` in words, with the AADSTS code.
    #[error("{cause}{}", code_suffix(*.code))]
    Refused {
        /// The OAuth `error` value (`invalid_client`, `invalid_grant`, ...).
        error: String,
        /// What went wrong, in words.
        cause: String,
        /// The first AADSTS code, when the endpoint sent one.
        code: Option<u32>,
    },
    /// The credential files could not be read or used.
    #[error("credential unusable: {0}")]
    Credential(String),
    /// Delegated mode without a stored refresh token.
    #[error("no refresh token stored for tenant {0}; run `m365-posture consent --tenant {0}`")]
    NoRefreshToken(String),
    /// The rotated refresh token could not be persisted.
    #[error("could not store the rotated refresh token: {0}")]
    StoreFailed(String),
    /// The token endpoint could not be reached or answered garbage.
    #[error("token endpoint unreachable: {0}")]
    Transport(String),
    /// The token endpoint answered with an unexpected status and no OAuth error body.
    #[error("token endpoint answered http {0}")]
    Http(u16),
    /// The device-code sign-in ended without a token.
    #[error("device code sign-in failed: {0}")]
    DeviceCode(String),
    /// The scan was cancelled while waiting for a token.
    #[error("cancelled")]
    Cancelled,
}

fn code_suffix(code: Option<u32>) -> String {
    code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default()
}

/// The OAuth error body of the token endpoint (`error_codes` kept, unlike the `oauth2` crate).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OAuthErrorBody {
    /// `invalid_client`, `invalid_grant`, `authorization_pending`, ...
    pub error: String,
    /// Microsoft's description, starting with `AADSTSnnnn:`.
    pub error_description: Option<String>,
    /// AADSTS codes as numbers.
    pub error_codes: Vec<u32>,
    /// `basic_action`, `bad_token`, ...
    pub suberror: Option<String>,
}

impl OAuthErrorBody {
    /// The first AADSTS code, from `error_codes` or the description.
    pub fn code(&self) -> Option<u32> {
        self.error_codes.first().copied().or_else(|| {
            let text = self.error_description.as_deref()?;
            let rest = text.strip_prefix("AADSTS")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    /// Converts to an [`AuthError`] with the cause in words.
    pub fn into_auth_error(self) -> AuthError {
        let code = self.code();
        let error = safe_code(&self.error);
        let cause = code
            .and_then(aadsts_cause)
            .map(str::to_owned)
            .unwrap_or_else(|| match self.suberror.as_deref().map(safe_code) {
                Some(sub) => format!("token request refused: {error} ({sub})"),
                None => format!("token request refused: {error}"),
            });
        AuthError::Refused { error, cause, code }
    }
}

/// The cause in words of the AADSTS codes the agent can meet (graph-client.md section 1.6).
pub fn aadsts_cause(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "invalid client secret (the secret value is wrong; the secret id is not the value)"
        }
        7000222 => "client secret expired",
        700027 => "client assertion refused (certificate not registered on the app or wrong key)",
        700024 | 500133 => "client assertion outside its valid time range (check the clock)",
        700016 => {
            "application not found in the tenant (wrong client id, tenant or missing consent)"
        }
        90002 => "tenant not found (wrong tenant id or cloud)",
        9001023 => "grant type not supported on the common or consumers endpoint",
        50076 | 50079 => "multi-factor authentication required; run consent again",
        700082 => "refresh token expired by inactivity; run consent again",
        50173 | 70043 | 70008 => "refresh token revoked or expired; run consent again",
        65001 => "admin consent missing for the requested permissions",
        70011 | 700022 => "invalid scope",
        53003 => "blocked by conditional access",
        7000218 => "public client flows are not allowed on the app registration",
        50196 => "token request loop detected",
        90024 => "token endpoint busy",
        70016 => "authorization pending",
        70018 => "invalid device code",
        70019 => "device code expired; start consent again",
        _ => return None,
    })
}

/// A failed Graph request after retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Graph answered this status; `code` is Graph's error code (may be empty).
    #[error("graph answered http {status} {code}")]
    Http {
        /// HTTP status.
        status: u16,
        /// `error.code` of the body (`Authorization_RequestDenied`, `ErrorAccessDenied`, ...).
        code: String,
    },
    /// Still throttled (429, or 503 with Retry-After) when retries or the budget ran out.
    #[error("throttled")]
    Throttled,
    /// Connection, TLS or timeout failure after retries.
    #[error("transport error: {0}")]
    Transport(String),
    /// A 2xx answer whose body is not the expected JSON.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// No token.
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    /// A nextLink pointed outside the configured Graph root; not followed.
    #[error("refused to follow a link outside the graph root")]
    ForeignLink,
    /// The scan was cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl GraphError {
    /// The HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for 403.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// True for a 404 ("no mailbox here", "object gone"): the caller decides what it means.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// The reason a check shows when its data failed with this error; `permission` names what
    /// a 403 means for this data source.
    pub fn to_unavailable(&self, permission: &str) -> Unavailable {
        match self {
            Self::Http { status: 403, .. } => Unavailable::PermissionDenied {
                permission: permission.to_owned(),
            },
            Self::Http { status: 429, .. } | Self::Throttled => Unavailable::Throttled,
            Self::Http { status, .. } => Unavailable::GraphError { status: *status },
            Self::Transport(detail) => Unavailable::Transport {
                detail: detail.clone(),
            },
            Self::Malformed(detail) => Unavailable::Malformed {
                detail: detail.clone(),
            },
            Self::Auth(err) => Unavailable::NotCollected {
                detail: err.to_string(),
            },
            Self::ForeignLink => Unavailable::Malformed {
                detail: "nextLink outside the graph root".to_owned(),
            },
            Self::Cancelled => Unavailable::NotCollected {
                detail: "scan cancelled".to_owned(),
            },
        }
    }
}

/// Graph's error body `{"error":{"code","message"}}`; only the code is kept.
pub fn graph_error_code(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Outer {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
    }
    serde_json::from_slice::<Outer>(body)
        .map(|o| safe_code(&o.error.code))
        .unwrap_or_default()
}

/// Graph's error code as it may be logged and stored: Microsoft's codes are identifiers
/// (`Authorization_RequestDenied`, `ErrorAccessDenied`), so anything else a hostile answer puts
/// there (line breaks that would forge log lines, separators, megabytes) is dropped or cut.
pub fn safe_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(MAX_CODE_CHARS)
        .collect()
}

/// Longest error code kept.
const MAX_CODE_CHARS: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_error_codes_cannot_forge_log_lines() {
        let body = serde_json::json!({"error": {"code": format!(
            "Denied\n2026-01-01T00:00:00Z  INFO forged line | x=1 {}", "A".repeat(10_000)
        )}});
        let code = graph_error_code(body.to_string().as_bytes());
        assert!(
            code.starts_with("Denied2026-01-01T000000ZINFOforgedlinex1"),
            "{code}"
        );
        assert_eq!(code.len(), MAX_CODE_CHARS);
        assert_eq!(
            safe_code("Authorization_RequestDenied"),
            "Authorization_RequestDenied"
        );
    }

    #[test]
    fn auth_error_names_cause_and_code() {
        let body: OAuthErrorBody = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app '1' are expired.","error_codes":[7000222]}"#,
        )
        .unwrap();
        assert_eq!(
            body.into_auth_error().to_string(),
            "client secret expired (AADSTS7000222)"
        );
    }

    #[test]
    fn aadsts_code_read_from_description_when_codes_missing() {
        let body: OAuthErrorBody = serde_json::from_str(
            r#"{"error":"invalid_grant","error_description":"AADSTS999999: Something new."}"#,
        )
        .unwrap();
        assert_eq!(
            body.into_auth_error().to_string(),
            "token request refused: invalid_grant (AADSTS999999)"
        );
    }

    #[test]
    fn forbidden_maps_to_permission_and_others_to_status() {
        let denied = GraphError::Http {
            status: 403,
            code: "ErrorAccessDenied".into(),
        };
        assert_eq!(
            denied.to_unavailable("MailboxSettings.Read").to_string(),
            "permission_denied: MailboxSettings.Read"
        );
        let busy = GraphError::Http {
            status: 503,
            code: String::new(),
        };
        assert_eq!(busy.to_unavailable("x").to_string(), "graph_error 503");
        assert_eq!(
            GraphError::Throttled.to_unavailable("x").to_string(),
            "throttled"
        );
    }

    #[test]
    fn graph_error_code_tolerates_empty_and_garbage() {
        assert_eq!(
            graph_error_code(br#"{"error":{"code":"Request_ResourceNotFound","message":"m"}}"#),
            "Request_ResourceNotFound"
        );
        assert_eq!(graph_error_code(br#"{"error":{"code":""}}"#), "");
        assert_eq!(graph_error_code(b"<html>"), "");
    }
}
