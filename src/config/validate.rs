//! Pure validation: [`RawConfig`] to [`Config`], collecting every problem with its key path.
//!
//! No I/O here (credential files are checked in `files`), so the example config with its
//! `/run/credentials/...` paths validates anywhere. Defaults are applied here and documented
//! in `config/example.toml`.

use super::error::{ConfigProblem, Problems};
use super::fields::{
    base_url, duration, file_path, guid, name, paired_file, positive_duration, report_duplicates,
    required,
};
use super::raw::{
    RawAuth, RawConfig, RawDns, RawFirstScan, RawMetrics, RawScan, RawState, RawTenant,
};
use super::{
    overrides, sinks, Config, DnsConfig, FirstScan, MetricsConfig, ScanConfig, StateConfig,
    TenantAuth, TenantConfig,
};
use crate::checks::CheckOptions;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Default token authority.
pub const DEFAULT_AUTHORITY_URL: &str = "https://login.microsoftonline.com";
/// Default Graph base.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// Default state file.
pub const DEFAULT_STATE_PATH: &str = "/var/lib/m365-posture/state.db";
/// Default `/metrics` listen address.
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9365";
const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_secs(6 * 3600);
const DEFAULT_SCAN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_CONCURRENCY: usize = 8;
/// Graph's identity reports bucket: 5 requests per 10 s per app and tenant
/// (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits>).
const DEFAULT_REPORTS_PER_10S: u32 = 5;
const MAX_REPORTS_PER_10S: u32 = 1_000;
const DEFAULT_PER_USER_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_SWEEP_PAUSE: Duration = Duration::from_secs(60);
const MAX_CONCURRENCY: usize = 64;
const DEFAULT_OUTBOX_MAX_EVENTS: usize = 100_000;

/// Validates a raw config; `Err` holds every problem found.
pub fn validate(raw: &RawConfig) -> Result<Config, Vec<ConfigProblem>> {
    let mut problems = Problems::default();
    let mut scan_problems = Problems::default();
    let scan = scan(&raw.scan, &mut scan_problems);
    let tenants = tenants(&raw.tenants, scan.interval, &mut problems);
    let dns = dns(&raw.dns, &mut problems);
    problems.extend(scan_problems);
    let state = state(&raw.state, &mut problems);
    let metrics = metrics(&raw.metrics, &mut problems);
    let sinks = sinks::sinks(&raw.sinks, &mut problems);
    let checks = checks(&raw.checks, &mut problems);
    let severity_overrides = overrides::severity_overrides(&raw.severity_overrides, &mut problems);
    let suppressions = overrides::suppressions(&raw.suppressions, &raw.tenants, &mut problems);
    if problems.len() > 0 {
        return Err(problems.into_vec());
    }
    Ok(Config {
        tenants,
        dns,
        scan,
        state,
        metrics,
        sinks,
        checks,
        severity_overrides,
        suppressions,
    })
}

fn tenants(raw: &[RawTenant], default_interval: Duration, p: &mut Problems) -> Vec<TenantConfig> {
    if raw.is_empty() {
        p.push("tenants", "no tenants configured: add a [[tenants]] table");
    }
    let tenants = raw
        .iter()
        .enumerate()
        .filter_map(|(index, tenant)| tenant_config(index, tenant, default_interval, p))
        .collect();
    let names: Vec<Option<&str>> = raw.iter().map(|t| t.name.as_deref()).collect();
    report_duplicates("tenants", "tenant", &names, p);
    tenants
}

fn tenant_config(
    index: usize,
    raw: &RawTenant,
    default_interval: Duration,
    p: &mut Problems,
) -> Option<TenantConfig> {
    let path = format!("tenants[{index}]");
    let at = |key: &str| format!("{path}.{key}");
    let name = required(&at("name"), raw.name.as_deref(), p).and_then(|n| name(&at("name"), n, p));
    let tenant_id = required(&at("tenant_id"), raw.tenant_id.as_deref(), p)
        .and_then(|id| guid(&at("tenant_id"), id, p));
    let client_id = required(&at("client_id"), raw.client_id.as_deref(), p)
        .and_then(|id| guid(&at("client_id"), id, p));
    let auth = tenant_auth(&path, raw, p);
    let authority = raw
        .authority_url
        .as_deref()
        .unwrap_or(DEFAULT_AUTHORITY_URL);
    let authority_url = base_url(&at("authority_url"), authority, p);
    let graph = raw.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH_URL);
    let graph_url = base_url(&at("graph_url"), graph, p);
    let interval = match raw.interval.as_deref() {
        Some(text) => positive_duration(&at("interval"), text, p),
        None => Some(default_interval),
    };
    Some(TenantConfig {
        name: name?,
        tenant_id: tenant_id?,
        client_id: client_id?,
        auth: auth?,
        authority_url: authority_url?,
        graph_url: graph_url?,
        interval: interval?,
    })
}

/// The auth methods a tenant entry sets, as the user wrote them.
fn auth_methods(raw: &RawTenant) -> Vec<&'static str> {
    [
        (raw.client_secret_file.is_some(), "client_secret_file"),
        (
            raw.certificate_file.is_some() || raw.private_key_file.is_some(),
            "certificate_file/private_key_file",
        ),
        (raw.auth == Some(RawAuth::Delegated), "auth = \"delegated\""),
    ]
    .into_iter()
    .filter_map(|(set, method)| set.then_some(method))
    .collect()
}

fn tenant_auth(path: &str, raw: &RawTenant, p: &mut Problems) -> Option<TenantAuth> {
    let certificate = raw.certificate_file.is_some() || raw.private_key_file.is_some();
    let methods = auth_methods(raw);
    if methods.is_empty() {
        p.push(path, "no auth method: set client_secret_file, certificate_file and private_key_file, or auth = \"delegated\"");
        return None;
    }
    if methods.len() > 1 {
        let list = methods.join(", ");
        p.push(
            path,
            format!("more than one auth method ({list}): set exactly one"),
        );
        return None;
    }
    if let Some(secret_file) = &raw.client_secret_file {
        let secret_file = file_path(&format!("{path}.client_secret_file"), secret_file, p)?;
        return Some(TenantAuth::ClientSecret { secret_file });
    }
    if certificate {
        let certificate_file = raw.certificate_file.as_ref();
        let private_key_file = raw.private_key_file.as_ref();
        let certificate_file = paired_file(
            path,
            "certificate_file",
            certificate_file,
            "private_key_file",
            p,
        );
        let private_key_file = paired_file(
            path,
            "private_key_file",
            private_key_file,
            "certificate_file",
            p,
        );
        return Some(TenantAuth::Certificate {
            certificate_file: certificate_file?,
            private_key_file: private_key_file?,
        });
    }
    Some(TenantAuth::Delegated)
}

fn dns(raw: &RawDns, p: &mut Problems) -> DnsConfig {
    let servers = raw.servers.as_deref().unwrap_or_default();
    let servers = servers
        .iter()
        .enumerate()
        .filter_map(|(index, text)| dns_server(&format!("dns.servers[{index}]"), text, p))
        .collect();
    let timeout = raw
        .timeout
        .as_deref()
        .map_or(Some(DEFAULT_DNS_TIMEOUT), |text| {
            positive_duration("dns.timeout", text, p)
        });
    DnsConfig {
        servers,
        timeout: timeout.unwrap_or(DEFAULT_DNS_TIMEOUT),
    }
}

fn dns_server(path: &str, text: &str, p: &mut Problems) -> Option<SocketAddr> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Some(address);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    p.push(
        path,
        format!("must be an IP address with an optional port, like \"127.0.0.1:53\", got {text:?}"),
    );
    None
}

fn scan(raw: &RawScan, p: &mut Problems) -> ScanConfig {
    let duration_or = |key: &str, text: Option<&str>, default: Duration, p: &mut Problems| {
        text.map_or(Some(default), |text| {
            positive_duration(&format!("scan.{key}"), text, p)
        })
        .unwrap_or(default)
    };
    ScanConfig {
        interval: duration_or(
            "interval",
            raw.interval.as_deref(),
            DEFAULT_SCAN_INTERVAL,
            p,
        ),
        timeout: duration_or("timeout", raw.timeout.as_deref(), DEFAULT_SCAN_TIMEOUT, p),
        first_scan: match raw.first_scan {
            Some(RawFirstScan::Baseline) => FirstScan::Baseline,
            Some(RawFirstScan::Emit) | None => FirstScan::Emit,
        },
        directory_concurrency: concurrency(
            "scan.directory_concurrency",
            raw.directory_concurrency,
            p,
        ),
        mailbox_concurrency: concurrency("scan.mailbox_concurrency", raw.mailbox_concurrency, p),
        reports_per_10s: reports_rate(raw.reports_per_10s, p),
        per_user_max_age: duration_or(
            "per_user_max_age",
            raw.per_user_max_age.as_deref(),
            DEFAULT_PER_USER_MAX_AGE,
            p,
        ),
        sweep_pause: duration_or(
            "sweep_pause",
            raw.sweep_pause.as_deref(),
            DEFAULT_SWEEP_PAUSE,
            p,
        ),
        shutdown_grace: raw
            .shutdown_grace
            .as_deref()
            .map_or(DEFAULT_SHUTDOWN_GRACE, |text| {
                duration("scan.shutdown_grace", text, p).unwrap_or(DEFAULT_SHUTDOWN_GRACE)
            }),
    }
}

fn reports_rate(value: Option<u32>, p: &mut Problems) -> u32 {
    let value = value.unwrap_or(DEFAULT_REPORTS_PER_10S);
    if !(1..=MAX_REPORTS_PER_10S).contains(&value) {
        p.push(
            "scan.reports_per_10s",
            format!("must be between 1 and {MAX_REPORTS_PER_10S}, got {value}"),
        );
    }
    value
}

fn concurrency(path: &str, value: Option<usize>, p: &mut Problems) -> usize {
    let value = value.unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=MAX_CONCURRENCY).contains(&value) {
        p.push(
            path,
            format!("must be between 1 and {MAX_CONCURRENCY}, got {value}"),
        );
    }
    value
}

fn state(raw: &RawState, p: &mut Problems) -> StateConfig {
    let path = raw
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_PATH));
    if path.as_os_str().is_empty() {
        p.push("state.path", "must not be empty");
    }
    let outbox_max_events = raw.outbox_max_events.unwrap_or(DEFAULT_OUTBOX_MAX_EVENTS);
    if outbox_max_events == 0 {
        p.push("state.outbox_max_events", "must be greater than 0");
    }
    StateConfig {
        path,
        outbox_max_events,
    }
}

fn metrics(raw: &RawMetrics, p: &mut Problems) -> MetricsConfig {
    let text = raw.listen.as_deref().unwrap_or(DEFAULT_METRICS_LISTEN);
    let listen = text.parse::<SocketAddr>().unwrap_or_else(|_| {
        p.push(
            "metrics.listen",
            format!("must be ip:port like \"{DEFAULT_METRICS_LISTEN}\", got {text:?}"),
        );
        SocketAddr::from(([0, 0, 0, 0], 9365))
    });
    MetricsConfig { listen }
}

fn checks(raw: &CheckOptions, p: &mut Problems) -> CheckOptions {
    let mut checks = raw.clone();
    for (key, value) in [
        ("password_max_age_days", checks.password_max_age_days),
        ("sync_max_age_days", checks.sync_max_age_days),
        ("tap_max_lifetime_minutes", checks.tap_max_lifetime_minutes),
    ] {
        if value == 0 {
            p.push(format!("checks.{key}"), "must be greater than 0");
        }
    }
    checks.extra_internal_domains = raw
        .extra_internal_domains
        .iter()
        .enumerate()
        .filter_map(|(index, text)| {
            internal_domain(&format!("checks.extra_internal_domains[{index}]"), text, p)
        })
        .collect();
    checks.first_party_tenant_ids = raw
        .first_party_tenant_ids
        .iter()
        .enumerate()
        .filter_map(|(index, text)| {
            guid(&format!("checks.first_party_tenant_ids[{index}]"), text, p)
        })
        .collect();
    for (index, user) in raw.exclude_users.iter().enumerate() {
        if user.trim().is_empty() {
            p.push(
                format!("checks.exclude_users[{index}]"),
                "must not be empty",
            );
        }
    }
    checks
}

/// A domain name, lower-cased without a trailing dot (CONTRACT section 4).
fn internal_domain(path: &str, text: &str, p: &mut Problems) -> Option<String> {
    let domain = text.trim_end_matches('.').to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if !valid {
        p.push(
            path,
            format!("must be a domain name like \"contoso.com\", got {text:?}"),
        );
        return None;
    }
    Some(domain)
}
