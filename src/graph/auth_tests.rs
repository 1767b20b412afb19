//! Tests of token acquisition, caching and the token answer's parsing.

use super::*;

#[test]
fn expires_in_accepts_number_and_string() {
    let a: TokenResponse =
        serde_json::from_str(r#"{"access_token":"x","expires_in":3599}"#).unwrap();
    let b: TokenResponse =
        serde_json::from_str(r#"{"access_token":"x","expires_in":"3599"}"#).unwrap();
    assert_eq!(a.expires_in, b.expires_in);
}

#[test]
fn endpoint_builds_cloud_urls_and_scopes() {
    let tenant = TenantConfig {
        name: "gov".into(),
        tenant_id: "t-1".into(),
        client_id: "c-1".into(),
        auth: TenantAuth::Delegated,
        authority_url: "https://login.microsoftonline.us".into(),
        graph_url: "https://graph.microsoft.us".into(),
        interval: Duration::from_secs(60),
    };
    let ep = TokenEndpoint::for_tenant(&tenant);
    assert_eq!(
        ep.token_url,
        "https://login.microsoftonline.us/t-1/oauth2/v2.0/token"
    );
    assert_eq!(
        ep.scope,
        "offline_access https://graph.microsoft.us/.default"
    );
}

#[test]
fn access_token_debug_hides_value() {
    let t = AccessToken {
        value: Secret::new("eyJsecret".into()),
        refresh_at: Instant::now(),
        generation: 3,
    };
    assert!(!format!("{t:?}").contains("eyJ"));
}
