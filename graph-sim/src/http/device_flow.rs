//! The device-code flow of the simulated token endpoint: starting it
//! (`POST /{tenant}/oauth2/v2.0/devicecode`), a test deciding it in place of the user, and
//! redeeming the code at the token endpoint, with Entra's errors for each state
//! (graph-client.md sections 1.6 and 6).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::token::{auth_json, missing, AuthError, DeviceGrant, DeviceState, TokenRequest};
use super::token_flow::{delegated_scopes, issue_delegated, tenant_and_client};
use super::Reply;
use crate::state::{lock, Shared};
use crate::tenant::ClientRegistration;

/// Redeems a device code at the token endpoint: pending, declined, expired, already redeemed
/// or approved (then a delegated token for the approving user).
pub(super) fn device(
    shared: &Arc<Shared>,
    request: &TokenRequest,
    client: &ClientRegistration,
    tenant_id: &str,
    roles: &[String],
) -> Result<Value, AuthError> {
    let code = request
        .get("device_code")
        .ok_or_else(|| missing("device_code"))?;
    let (user_id, scopes) = {
        let mut auth = lock(&shared.auth);
        let grant = auth.devices.get_mut(code).ok_or_else(|| {
            AuthError::new(
                400,
                "bad_verification_code",
                70018,
                "Invalid verification code.",
            )
        })?;
        if !grant.client_id.eq_ignore_ascii_case(&client.client_id) {
            return Err(AuthError::new(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed.",
            ));
        }
        if Instant::now() >= grant.expires_at && !matches!(grant.state, DeviceState::Approved(_)) {
            return Err(AuthError::new(
                400,
                "expired_token",
                70019,
                "Verification code expired.",
            ));
        }
        match grant.state.clone() {
            DeviceState::Pending => return Err(AuthError::new(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is pending. Continue polling.")),
            DeviceState::Declined => return Err(AuthError::new(400, "authorization_declined", 70020, "The user declined the authorization request.")),
            DeviceState::Redeemed => return Err(AuthError::new(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")),
            DeviceState::Approved(user) => {
                grant.state = DeviceState::Redeemed;
                (user, grant.scopes.clone())
            }
        }
    };
    let offline = scopes.iter().any(|s| s == "offline_access");
    let permissions = delegated_scopes(&scopes.join(" "), roles);
    Ok(issue_delegated(
        shared,
        client,
        &user_id,
        permissions,
        offline,
        tenant_id,
    ))
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
pub(crate) fn device_code(shared: &Arc<Shared>, tenant: &str, body: &[u8]) -> Reply {
    let request = TokenRequest::parse(body, None);
    let started =
        tenant_and_client(shared, tenant, request.client_id(), false).and_then(|(_, client, _)| {
            let scope = request.get("scope").ok_or_else(|| missing("scope"))?;
            Ok((client, scope.to_string()))
        });
    let (client, scope) = match started {
        Ok(v) => v,
        Err(e) => return e.reply(&shared.base_url),
    };
    let device_code = format!("DAQABAAEAAA{}", uuid::Uuid::new_v4().simple());
    let user_code: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .to_uppercase()
        .chars()
        .take(9)
        .collect();
    let mut auth = lock(&shared.auth);
    let expires_in = auth.device_lifetime.as_secs();
    let interval = auth.device_interval_secs;
    let expires_at = Instant::now() + auth.device_lifetime;
    auth.devices.insert(
        device_code.clone(),
        DeviceGrant {
            user_code: user_code.clone(),
            client_id: client.client_id,
            scopes: scope.split_whitespace().map(str::to_string).collect(),
            expires_at,
            state: DeviceState::Pending,
        },
    );
    let verification_uri = "https://microsoft.com/devicelogin";
    auth_json(
        200,
        json!({
            "user_code": user_code, "device_code": device_code, "verification_uri": verification_uri,
            "expires_in": expires_in, "interval": interval,
            "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
        }),
    )
}

/// Approves (or declines) a pending device code; `user` defaults to the first enabled member.
pub(crate) fn decide_device_code(
    shared: &Shared,
    user_code: &str,
    approve: bool,
    user: Option<&str>,
) -> bool {
    let default_user = || {
        let data = shared.read();
        data.file
            .users
            .iter()
            .find(|u| {
                u.get("userType").and_then(Value::as_str) != Some("Guest")
                    && u.get("accountEnabled") != Some(&Value::Bool(false))
            })
            .and_then(|u| u.get("id").and_then(Value::as_str).map(str::to_string))
    };
    let user_id = match user {
        Some(u) => Some(u.to_string()),
        None => default_user(),
    };
    let mut auth = lock(&shared.auth);
    let now = Instant::now();
    let Some(grant) = auth.devices.values_mut().find(|g| {
        g.user_code.eq_ignore_ascii_case(user_code)
            && g.state == DeviceState::Pending
            && g.expires_at > now
    }) else {
        return false;
    };
    grant.state = match (approve, user_id) {
        (true, Some(id)) => DeviceState::Approved(id),
        (true, None) => return false,
        (false, _) => DeviceState::Declined,
    };
    true
}
