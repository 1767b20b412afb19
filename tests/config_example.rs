//! `config/example.toml` parses, holds the values as written, documents every key, and needs
//! no credential but the ones the shipped unit's `LoadCredential=` lines provide.
#![cfg(test)]

use m365_posture::checks::options::{ProxyAddressMode, UnknownCertification};
use m365_posture::config::{
    from_toml_str, known_keys, Config, FirstScan, Payload, SinkKind, TenantAuth,
};
use m365_posture::findings::{FindingId, Severity};
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLE: &str = include_str!("../config/example.toml");

fn example() -> Config {
    match from_toml_str(EXAMPLE) {
        Ok(config) => config,
        Err(err) => panic!("config/example.toml does not validate:\n{err}"),
    }
}

#[test]
fn tenants_as_written() {
    let config = example();
    assert_eq!(
        config.tenants.len(),
        1,
        "the second tenant is commented out"
    );
    let contoso = &config.tenants[0];
    assert_eq!(contoso.name, "contoso");
    assert_eq!(contoso.tenant_id, "6babcaad-604b-40ac-a9d7-9fd97c0b779f");
    assert_eq!(contoso.client_id, "4a1aa1d5-c567-49d0-ad0b-cd957a47f842");
    assert_eq!(
        contoso.auth,
        TenantAuth::ClientSecret {
            secret_file: PathBuf::from("/run/credentials/m365-posture.service/client-secret")
        }
    );
    assert_eq!(contoso.authority_url, "https://login.microsoftonline.com");
    assert_eq!(contoso.graph_url, "https://graph.microsoft.com");
    assert_eq!(
        contoso.interval,
        Duration::from_secs(6 * 3600),
        "defaults to [scan] interval"
    );
}

#[test]
fn dns_scan_state_metrics_as_written() {
    let config = example();
    assert!(config.dns.servers.is_empty(), "the system resolver");
    assert_eq!(config.dns.timeout, Duration::from_secs(5));
    assert_eq!(config.scan.interval, Duration::from_secs(6 * 3600));
    assert_eq!(config.scan.timeout, Duration::from_secs(30 * 60));
    assert_eq!(config.scan.first_scan, FirstScan::Emit);
    assert_eq!(config.scan.directory_concurrency, 8);
    assert_eq!(config.scan.mailbox_concurrency, 8);
    assert_eq!(config.scan.shutdown_grace, Duration::from_secs(10));
    assert_eq!(
        config.state.path,
        PathBuf::from("/var/lib/m365-posture/state.db")
    );
    assert_eq!(config.state.outbox_max_events, 100_000);
    assert_eq!(
        config.metrics.listen,
        "127.0.0.1:9365".parse().unwrap(),
        "loopback only, not the code default 0.0.0.0"
    );
}

#[test]
fn sinks_as_written() {
    let config = example();
    assert_eq!(config.sinks.len(), 1, "the syslog sink is commented out");
    let journal = &config.sinks[0];
    assert_eq!(journal.name, "journal");
    assert_eq!(journal.payload, Payload::Json);
    assert_eq!(journal.kind, SinkKind::Stdout);
}

/// Every file the example names under the service's credential directory is a credential the
/// shipped unit loads (`LoadCredential=NAME:...`), so the installed file passes check-config
/// inside the service once the secret is in place.
#[test]
fn credential_files_are_the_units_credentials() {
    let unit = include_str!("../systemd/m365-posture.service");
    let loaded: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("LoadCredential="))
        .filter_map(|value| value.split_once(':').map(|(name, _)| name))
        .collect();
    assert_eq!(loaded, ["client-secret"]);
    let dir = std::path::Path::new("/run/credentials/m365-posture.service");
    let config = example();
    let mut named = Vec::new();
    for tenant in &config.tenants {
        match &tenant.auth {
            TenantAuth::ClientSecret { secret_file } => named.push(secret_file.clone()),
            TenantAuth::Certificate {
                private_key_file, ..
            } => named.push(private_key_file.clone()),
            _ => {}
        }
    }
    for path in &named {
        let name = path.strip_prefix(dir).ok().and_then(|p| p.to_str());
        assert!(
            name.is_some_and(|name| loaded.contains(&name)),
            "{} is not a credential of the unit {loaded:?}",
            path.display()
        );
    }
    assert!(!named.is_empty());
}

#[test]
fn checks_overrides_and_suppressions_as_written() {
    let config = example();
    let checks = &config.checks;
    assert_eq!(checks.extra_internal_domains, ["contoso-partner.com"]);
    assert_eq!(checks.exclude_users, ["breakglass@contoso.com"]);
    assert_eq!(
        checks.first_party_tenant_ids,
        ["00000000-0000-0000-0000-0000000000aa"]
    );
    assert_eq!(checks.password_max_age_days, 90);
    assert_eq!(checks.sync_max_age_days, 7);
    assert_eq!(checks.proxy_addresses_mode, ProxyAddressMode::Aliases);
    assert_eq!(checks.tap_max_lifetime_minutes, 480);
    assert!(checks.tap_usable_only);
    assert_eq!(checks.unknown_certification, UnknownCertification::Flag);
    assert!(checks.dmarc_include_moera);
    assert_eq!(
        config.severity_of(FindingId::RuleForwardsExternal),
        Severity::High
    );
    assert_eq!(config.severity_of(FindingId::TapReusable), Severity::Medium);
    assert_eq!(config.severity_overrides.len(), 2);
    assert_eq!(config.suppressions.len(), 1);
    let accepted = &config.suppressions[0];
    assert_eq!(accepted.finding, FindingId::PasswordExpirationDisabled);
    assert_eq!(accepted.tenant.as_deref(), Some("contoso"));
    assert_eq!(accepted.resource_id, None);
    assert_eq!(accepted.resource_name.as_deref(), Some("svc-*@contoso.com"));
    assert_eq!(accepted.owner, "secops@contoso.com");
    assert!(accepted.reason.starts_with("service accounts"));
    assert_eq!(
        accepted.expires.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-12-31T00:00:00+00:00")
    );
}

#[test]
fn check_options_left_at_their_defaults_are_the_defaults() {
    let defaults = m365_posture::checks::CheckOptions::default();
    let mut written = example().checks;
    written.extra_internal_domains.clear();
    written.exclude_users.clear();
    written.first_party_tenant_ids.clear();
    assert_eq!(
        written, defaults,
        "the example documents defaults for [checks]"
    );
}

/// Every key the config accepts appears in the example, set or commented out.
#[test]
fn every_key_is_documented() {
    let lines: Vec<&str> = EXAMPLE.lines().map(str::trim).collect();
    let mut missing = Vec::new();
    for key in known_keys() {
        let (section, leaf) = key.rsplit_once('.').unwrap_or(("", &key));
        let header = [format!("[{key}]"), format!("[[{key}]]")];
        let documented = lines.iter().any(|line| {
            let line = line.trim_start_matches('#').trim_start();
            header.iter().any(|h| line == h)
                || line
                    .strip_prefix(leaf)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        let section_present = section.is_empty()
            || lines.iter().any(|line| {
                line.trim_start_matches('#')
                    .trim_start()
                    .trim_matches(['[', ']'])
                    == section
            });
        if !documented || !section_present {
            missing.push(key);
        }
    }
    assert!(
        missing.is_empty(),
        "not in config/example.toml: {missing:?}"
    );
}
