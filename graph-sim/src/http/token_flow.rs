//! The token endpoint's grants: client credentials, refresh token (with rotation) and device
//! code (its flow lives in [`super::device_flow`]), plus OpenID discovery. Errors carry Entra's
//! `error`, AADSTS code and HTTP status (graph-client.md sections 1.6 and 6).

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::device_flow::device;
pub(crate) use super::device_flow::{decide_device_code, device_code};
use super::token::{
    auth_json, authenticate_client, issue_access, missing, sign, AuthError, RefreshGrant,
    TokenInfo, TokenRequest,
};
use super::Reply;
use crate::state::{lock, Shared};
use crate::tenant::ClientRegistration;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const IDENTITY_SCOPES: &[&str] = &["offline_access", "openid", "profile", "email"];
const GRAPH_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "00000003-0000-0000-c000-000000000000",
];

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn token(
    shared: &Arc<Shared>,
    tenant: &str,
    body: &[u8],
    authorization: Option<&str>,
) -> Reply {
    match token_inner(shared, tenant, &TokenRequest::parse(body, authorization)) {
        Ok(body) => auth_json(200, body),
        Err(error) => error.reply(&shared.base_url),
    }
}

/// Resolves the tenant segment and the client registration.
pub(super) fn tenant_and_client(
    shared: &Shared,
    tenant: &str,
    client_id: Option<&str>,
    app_only: bool,
) -> Result<(String, ClientRegistration, Vec<String>), AuthError> {
    let data = shared.read();
    let tenant_id = data.file.tenant_id.clone();
    let generic = ["common", "organizations", "consumers"]
        .iter()
        .any(|g| g.eq_ignore_ascii_case(tenant));
    if generic && app_only {
        return Err(AuthError::new(400, "invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."));
    }
    if !generic && !tenant.eq_ignore_ascii_case(&tenant_id) && !data.has_domain(tenant) {
        return Err(AuthError::new(400, "invalid_request", 90002, format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.")));
    }
    let client_id = client_id.ok_or_else(|| missing("client_id"))?;
    let client = data.client(client_id).cloned().ok_or_else(|| {
        AuthError::new(400, "unauthorized_client", 700016, format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."))
    })?;
    let mut roles = client.roles.clone();
    roles.retain(|r| {
        !data
            .file
            .faults
            .forbidden_roles
            .iter()
            .any(|f| f.eq_ignore_ascii_case(r))
    });
    Ok((tenant_id, client, roles))
}

fn token_inner(
    shared: &Arc<Shared>,
    tenant: &str,
    request: &TokenRequest,
) -> Result<Value, AuthError> {
    let grant = request
        .get("grant_type")
        .ok_or_else(|| missing("grant_type"))?;
    let app_only = grant == "client_credentials";
    let (tenant_id, client, roles) =
        tenant_and_client(shared, tenant, request.client_id(), app_only)?;
    let base = &shared.base_url;
    let audiences: Vec<String> = [tenant, tenant_id.as_str()]
        .iter()
        .flat_map(|t| {
            [
                format!("{base}/{t}/oauth2/v2.0/token"),
                format!("https://login.microsoftonline.com/{t}/oauth2/v2.0/token"),
            ]
        })
        .collect();
    match grant {
        "client_credentials" => {
            authenticate_client(shared, request, &client, &audiences)?;
            check_app_scope(request.get("scope"), base, tenant)?;
            let info = TokenInfo {
                client_id: client.client_id.clone(),
                roles,
                scopes: Vec::new(),
                user_id: None,
                expires_at: Instant::now(),
            };
            let (access_token, expires_in) = issue_access(shared, info, &tenant_id);
            Ok(
                json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": access_token}),
            )
        }
        "refresh_token" => refresh(shared, request, &client, &audiences, &tenant_id, &roles),
        DEVICE_GRANT => device(shared, request, &client, &tenant_id, &roles),
        other => Err(AuthError::new(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn resource_of(scope: &str) -> Option<&str> {
    scope.rsplit_once('/').map(|(resource, _)| resource)
}

fn is_graph_resource(resource: &str, base: &str) -> bool {
    let resource = resource.trim_end_matches('/');
    GRAPH_RESOURCES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(resource))
        || resource.eq_ignore_ascii_case(base)
}

fn check_app_scope(scope: Option<&str>, base: &str, tenant: &str) -> Result<(), AuthError> {
    let scope = scope.ok_or_else(|| missing("scope"))?;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if let Some(bad) = scopes.iter().find(|s| !s.ends_with("/.default")) {
        return Err(AuthError::new(400, "invalid_scope", 1002012, format!("The provided value for scope {bad} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")));
    }
    let resources: Vec<&str> = scopes.iter().filter_map(|s| resource_of(s)).collect();
    if resources.len() != 1 {
        return Err(AuthError::new(400, "invalid_scope", 70011, format!("The provided value for the input parameter 'scope' isn't valid. The scope {scope} isn't valid. Only one resource may be requested.")));
    }
    match resources.first() {
        Some(resource) if is_graph_resource(resource, base) => Ok(()),
        _ => Err(AuthError::new(400, "invalid_resource", 500011, format!("The resource principal named {} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", resources.join(" ")))),
    }
}

/// Delegated permission names from requested scopes (`.default` means the consented roles).
pub(super) fn delegated_scopes(scope: &str, roles: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split_whitespace() {
        let name = s.rsplit('/').next().unwrap_or(s);
        if name == ".default" {
            out.extend(roles.iter().cloned());
        } else if !IDENTITY_SCOPES.contains(&name) {
            out.push(name.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

pub(super) fn issue_delegated(
    shared: &Shared,
    client: &ClientRegistration,
    user_id: &str,
    scopes: Vec<String>,
    offline: bool,
    tenant_id: &str,
) -> Value {
    let info = TokenInfo {
        client_id: client.client_id.clone(),
        roles: Vec::new(),
        scopes: scopes.clone(),
        user_id: Some(user_id.to_string()),
        expires_at: Instant::now(),
    };
    let (access_token, expires_in) = issue_access(shared, info, tenant_id);
    let (upn, name) = {
        let data = shared.read();
        let user = data.user(user_id);
        let text = |k: &str| {
            user.and_then(|u| u.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (text("userPrincipalName"), text("displayName"))
    };
    let mut auth = lock(&shared.auth);
    let now = crate::clock::now_utc().timestamp();
    let id_token = sign(
        &json!({"aud": client.client_id, "iss": format!("https://login.microsoftonline.com/{tenant_id}/v2.0"), "iat": now, "nbf": now, "exp": now + 3600, "oid": user_id, "sub": user_id, "tid": tenant_id, "preferred_username": upn, "name": name, "ver": "2.0"}),
        &auth.signing_key,
    );
    let mut scope_text = scopes.join(" ");
    scope_text.push_str(" profile openid email");
    let mut body = json!({"token_type": "Bearer", "scope": scope_text.trim(), "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": access_token, "id_token": id_token});
    if offline {
        let refresh_token = format!("0.A{}", uuid::Uuid::new_v4().simple())
            + &uuid::Uuid::new_v4().simple().to_string();
        auth.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                client_id: client.client_id.clone(),
                user_id: user_id.to_string(),
                scopes,
                last_used: Instant::now(),
                revoked: false,
            },
        );
        if let Some(map) = body.as_object_mut() {
            map.insert("refresh_token".into(), json!(refresh_token));
        }
    }
    body
}

fn refresh(
    shared: &Arc<Shared>,
    request: &TokenRequest,
    client: &ClientRegistration,
    audiences: &[String],
    tenant_id: &str,
    roles: &[String],
) -> Result<Value, AuthError> {
    let presented = request
        .get("refresh_token")
        .ok_or_else(|| missing("refresh_token"))?;
    if request.get("client_secret").is_some()
        || request.get("client_assertion").is_some()
        || request.basic.is_some()
    {
        authenticate_client(shared, request, client, audiences)?;
    }
    let (user_id, granted) = {
        let mut auth = lock(&shared.auth);
        let inactivity = auth.refresh_inactivity;
        let require_mfa = auth.require_mfa;
        let grant = auth.refresh.get_mut(presented).ok_or_else(|| {
            AuthError::new(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            )
        })?;
        if grant.revoked {
            return Err(AuthError::new(400, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password."));
        }
        if !grant.client_id.eq_ignore_ascii_case(&client.client_id) {
            return Err(AuthError::new(
                400,
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed.",
            ));
        }
        if grant.last_used.elapsed() >= inactivity {
            return Err(AuthError::new(400, "invalid_grant", 700082, format!("The refresh token has expired due to inactivity. The token was inactive for {} seconds.", inactivity.as_secs())));
        }
        if require_mfa {
            let mut e = AuthError::new(400, "invalid_grant", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000003-0000-0000-c000-000000000000'.");
            e.suberror = Some("basic_action");
            return Err(e);
        }
        grant.last_used = Instant::now();
        (grant.user_id.clone(), grant.scopes.clone())
    };
    let scopes = match request.get("scope") {
        Some(scope) => delegated_scopes(scope, roles),
        None => granted,
    };
    Ok(issue_delegated(
        shared, client, &user_id, scopes, true, tenant_id,
    ))
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn openid_configuration(shared: &Shared, tenant: &str) -> Reply {
    let base = &shared.base_url;
    let host = base.split("://").nth(1).unwrap_or(base);
    auth_json(
        200,
        json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tenant}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": host,
            "rbac_url": "https://pas.windows.net",
        }),
    )
}
