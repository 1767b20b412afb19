//! The Entra ID v2.0 token side: `/{tenant}/oauth2/v2.0/token` (client credentials with a
//! secret in the body or HTTP Basic, or a client assertion; refresh-token grant with
//! rotation; device-code grant), `/{tenant}/oauth2/v2.0/devicecode`, the OpenID discovery
//! document, and bearer validation for Graph.
//!
//! Access tokens are JWTs (HS256 with a per-process key) carrying `roles` (app-only) or `scp`
//! (delegated); the simulator also keeps each issued token in memory, so validation is a
//! lookup and a test can expire or revoke tokens at will.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::{GraphError, Reply};
use crate::state::{lock, Shared};
use crate::tenant::ClientRegistration;

/// What an access token grants.
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    pub client_id: String,
    pub roles: Vec<String>,
    /// Delegated scopes (short names); empty for app-only tokens.
    pub scopes: Vec<String>,
    /// Signed-in user of a delegated token.
    pub user_id: Option<String>,
    pub expires_at: Instant,
}

impl TokenInfo {
    /// True when the app-only `roles` hold one of `permissions`.
    pub fn has_role(&self, permissions: &[&str]) -> bool {
        contains_any(&self.roles, permissions)
    }

    /// True when the delegated scopes hold one of `permissions`.
    pub fn has_scope(&self, permissions: &[&str]) -> bool {
        contains_any(&self.scopes, permissions)
    }
}

fn contains_any(granted: &[String], permissions: &[&str]) -> bool {
    granted
        .iter()
        .any(|g| permissions.iter().any(|p| g.eq_ignore_ascii_case(p)))
}

pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    pub last_used: Instant,
    /// Revoked by an admin ("revoke sessions"): AADSTS50173.
    pub revoked: bool,
}

/// Device-code sign-in state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceState {
    Pending,
    Approved(String),
    Declined,
    Redeemed,
}

pub(crate) struct DeviceGrant {
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Instant,
    pub state: DeviceState,
}

/// Everything the token endpoint remembers.
pub(crate) struct AuthState {
    pub access: HashMap<String, TokenInfo>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub devices: HashMap<String, DeviceGrant>,
    pub used_jtis: HashSet<String>,
    pub token_lifetime: Duration,
    /// A refresh token unused for this long fails with AADSTS700082.
    pub refresh_inactivity: Duration,
    pub device_lifetime: Duration,
    pub device_interval_secs: u64,
    /// Refresh grants fail with AADSTS50076 (MFA required) while set.
    pub require_mfa: bool,
    pub signing_key: Vec<u8>,
}

impl AuthState {
    pub fn new(token_lifetime: Duration) -> AuthState {
        AuthState {
            access: HashMap::new(),
            refresh: HashMap::new(),
            devices: HashMap::new(),
            used_jtis: HashSet::new(),
            token_lifetime,
            refresh_inactivity: Duration::from_secs(90 * 24 * 3600),
            device_lifetime: Duration::from_secs(900),
            device_interval_secs: 5,
            require_mfa: false,
            signing_key: uuid::Uuid::new_v4().as_bytes().to_vec(),
        }
    }
}

/// Validates a bearer token for Graph.
pub(crate) fn authorize(shared: &Shared, bearer: Option<&str>) -> Result<TokenInfo, GraphError> {
    let invalid = |m: &str| GraphError::new(401, "InvalidAuthenticationToken", m.to_string());
    let token = match bearer.map(str::trim) {
        None | Some("") => return Err(invalid("Access token is empty.")),
        Some(t) => t,
    };
    if token.split('.').count() != 3 {
        return Err(invalid("IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or JWE Compact Serialization Format."));
    }
    let auth = lock(&shared.auth);
    let info = auth
        .access
        .get(token)
        .ok_or_else(|| invalid("Access token validation failure. Invalid audience."))?;
    if Instant::now() >= info.expires_at {
        return Err(invalid("Lifetime validation failed, the token is expired."));
    }
    Ok(info.clone())
}

/// An Entra token-endpoint error (`error`, AADSTS code, HTTP status).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuthError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub message: String,
    pub suberror: Option<&'static str>,
}

impl AuthError {
    pub fn new(
        status: u16,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> AuthError {
        AuthError {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
        }
    }

    /// Renders Entra's error body.
    pub fn reply(&self, authority: &str) -> Reply {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = crate::clock::now_utc()
            .format("%Y-%m-%d %H:%M:%SZ")
            .to_string();
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.message
        );
        let mut body = json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{authority}/error?code={}", self.code),
        });
        if let (Some(sub), Some(map)) = (self.suberror, body.as_object_mut()) {
            map.insert("suberror".into(), json!(sub));
        }
        auth_json(self.status, body).header("x-ms-request-id", trace_id)
    }
}

/// A JSON answer with the token endpoint's headers.
pub(crate) fn auth_json(status: u16, body: Value) -> Reply {
    let mut reply = Reply::json(status, body)
        .header("Cache-Control", "no-store, no-cache")
        .header("Pragma", "no-cache");
    reply.headers.push((
        "Content-Type".into(),
        "application/json; charset=utf-8".into(),
    ));
    reply
}

/// Parsed form body plus the HTTP Basic credentials, if any.
pub(crate) struct TokenRequest {
    pub form: HashMap<String, String>,
    pub basic: Option<(String, String)>,
}

impl TokenRequest {
    pub fn parse(body: &[u8], authorization: Option<&str>) -> TokenRequest {
        let form = form_urlencoded::parse(body).into_owned().collect();
        let basic = authorization.and_then(parse_basic);
        TokenRequest { form, basic }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.form
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn client_id(&self) -> Option<&str> {
        self.get("client_id")
            .or(self.basic.as_ref().map(|(id, _)| id.as_str()))
    }
}

/// RFC 6749 section 2.3.1: id and secret each form-urlencoded, then base64.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

pub(crate) fn missing(parameter: &str) -> AuthError {
    AuthError::new(
        400,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

/// Authenticates a confidential client by secret or assertion.
pub(crate) fn authenticate_client(
    shared: &Arc<Shared>,
    request: &TokenRequest,
    client: &ClientRegistration,
    audiences: &[String],
) -> Result<(), AuthError> {
    let secret = request
        .get("client_secret")
        .or(request.basic.as_ref().map(|(_, s)| s.as_str()));
    if let Some(secret) = secret {
        return match &client.client_secret {
            Some(expected) if expected == secret => Ok(()),
            _ => Err(AuthError::new(
                401,
                "invalid_client",
                7000215,
                format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", client.client_id),
            )),
        };
    }
    if let Some(assertion) = request.get("client_assertion") {
        if request.get("client_assertion_type")
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(AuthError::new(400, "invalid_request", 70002, "The client_assertion_type is not supported; use urn:ietf:params:oauth:client-assertion-type:jwt-bearer."));
        }
        let mut auth = lock(&shared.auth);
        return super::assertion::verify(assertion, client, audiences, &mut auth.used_jtis);
    }
    Err(AuthError::new(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    ))
}

/// Issues and records an access token.
pub(crate) fn issue_access(shared: &Shared, info: TokenInfo, tenant_id: &str) -> (String, u64) {
    let mut auth = lock(&shared.auth);
    let lifetime = auth.token_lifetime;
    let now = crate::clock::now_utc().timestamp();
    let secs = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 4);
    let mut claims = json!({
        "aud": "https://graph.microsoft.com",
        "iss": format!("https://sts.windows.net/{tenant_id}/"),
        "iat": now, "nbf": now, "exp": now.saturating_add(secs),
        "appid": info.client_id, "appidacr": "1",
        "idtyp": if info.user_id.is_some() { "user" } else { "app" },
        "oid": info.user_id.clone().unwrap_or_else(|| info.client_id.clone()),
        "sub": info.user_id.clone().unwrap_or_else(|| info.client_id.clone()),
        "tid": tenant_id, "uti": uuid::Uuid::new_v4().simple().to_string(), "ver": "1.0",
    });
    if let Some(map) = claims.as_object_mut() {
        if info.user_id.is_some() {
            map.insert("scp".into(), json!(info.scopes.join(" ")));
        } else {
            map.insert("roles".into(), json!(info.roles));
        }
    }
    let token = sign(&claims, &auth.signing_key);
    let info = TokenInfo {
        expires_at: Instant::now() + lifetime,
        ..info
    };
    let now_instant = Instant::now();
    auth.access.retain(|_, t| t.expires_at > now_instant);
    auth.access.insert(token.clone(), info);
    drop(auth);
    lock(&shared.stats).tokens_issued += 1;
    (token, lifetime.as_secs_f64().ceil() as u64)
}

/// An HS256 JWT of `claims`.
pub(crate) fn sign(claims: &Value, key: &[u8]) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("graph-sim".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap_or_default()
}
