//! The exporter-toolkit web config format: what is accepted, and every refusal by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// A bcrypt hash (cost 4) of "secret", as `htpasswd -nbBC 4 "" secret` writes it (with `$2y$`).
const HASH: &str = "$2b$04$J8yo0EHcxBJO69NURdV7u.T2KIgLBvYgI4bd6a5X43JQOKHb2kzeG";

fn parse(text: &str) -> Result<WebConfig, WebConfigError> {
    WebConfig::parse(text, Path::new("/nonexistent/web.yml"))
}

fn message(text: &str) -> String {
    parse(text).map(|_| ()).unwrap_err().to_string()
}

#[test]
fn the_sample_hash_is_bcrypt_of_secret() {
    assert!(bcrypt::verify("secret", HASH).unwrap());
}

#[test]
fn an_empty_file_means_plain_http_without_authentication() {
    let web = parse("").unwrap();
    assert!(web.tls.is_none() && web.basic_auth_users.is_empty());
    assert!(parse("basic_auth_users: {}\n").unwrap().tls.is_none());
}

#[test]
fn basic_auth_users_hold_bcrypt_hashes_only() {
    let web = parse(&format!("basic_auth_users:\n  prometheus: '{HASH}'\n")).unwrap();
    assert_eq!(web.basic_auth_users.len(), 1);
    let plain = message("basic_auth_users:\n  prometheus: secret\n");
    assert!(
        plain.contains("basic_auth_users.prometheus: not a bcrypt hash"),
        "{plain}"
    );
    let colon = message(&format!("basic_auth_users:\n  'a:b': '{HASH}'\n"));
    assert!(colon.contains("cannot hold ':'"), "{colon}");
}

#[test]
fn unknown_keys_are_refused_like_exporter_toolkit() {
    let top = message("basic_auth_user: {}\n");
    assert!(top.contains("unknown field `basic_auth_user`"), "{top}");
    let nested = message("tls_server_config:\n  certfile: a.pem\n");
    assert!(nested.contains("unknown field `certfile`"), "{nested}");
}

#[test]
fn security_settings_this_agent_does_not_implement_are_refused_by_name() {
    for (text, key) in [
        ("rate_limit:\n  burst: 20\n", "rate_limit"),
        ("http_server_config:\n  http2: false\n", "http_server_config"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "tls_server_config.cipher_suites",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_allowed_sans: [x]\n",
            "tls_server_config.client_allowed_sans",
        ),
        ("tls_server_config:\n  cert: x\n  key: y\n", "tls_server_config.cert"),
    ] {
        let got = message(text);
        assert!(
            got.contains(&format!("{key} is not supported by m365-posture")),
            "{text}: {got}"
        );
    }
}

#[test]
fn tls_settings_are_checked_before_any_file_is_read() {
    for (text, expected) in [
        ("tls_server_config:\n  cert_file: a.pem\n", "needs both cert_file and key_file"),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
            "client_auth_type \"RequireAnyClientCert\"",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
            "needs client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
            "min_version is above max_version",
        ),
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n",
            "tls version \"TLS10\"",
        ),
    ] {
        let got = message(text);
        assert!(got.contains(expected), "{text}: {got}");
    }
}

#[test]
fn certificate_files_are_relative_to_the_web_config() {
    let got = message("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n");
    assert!(got.contains("cannot read /nonexistent/server.pem"), "{got}");
}

#[test]
fn debug_output_shows_user_names_but_never_hashes() {
    let web = parse(&format!("basic_auth_users:\n  prometheus: '{HASH}'\n")).unwrap();
    let shown = format!("{web:?}");
    assert!(
        shown.contains("prometheus") && !shown.contains("$2b$"),
        "{shown}"
    );
}
