//! `check-config`: validates the config (file, environment overrides, credential files) and
//! prints every problem at once (exit 78), or a summary of the effective settings (exit 0).
//!
//! `--probe` also gets a token for each tenant and sends one cheap request per Graph
//! permission the checks need, naming each missing permission (exit 1 when one is missing).

use super::load_config;
use crate::cli::CheckConfigArgs;
use crate::config::{
    Config, FirstScan, Payload, SinkConfig, SinkKind, TenantAuth, TenantConfig, Transport,
};
use std::process::ExitCode;

/// Runs `check-config`.
pub fn run(args: &CheckConfigArgs) -> ExitCode {
    match load_config(&args.config.path) {
        Ok(config) => {
            let text = format!(
                "config ok: {}\n{}",
                args.config.path.display(),
                summary(&config)
            );
            let printed = super::write_stdout(&text, super::exit::OK);
            if args.probe && printed == ExitCode::SUCCESS {
                return super::scan::probe(&config);
            }
            printed
        }
        Err(code) => code,
    }
}

/// The effective settings, one line per tenant and sink (no secrets: files are not read).
pub fn summary(config: &Config) -> String {
    let mut lines: Vec<String> = config.tenants.iter().map(tenant_line).collect();
    lines.extend(config.sinks.iter().map(sink_line));
    let scan = &config.scan;
    let first_scan = match scan.first_scan {
        FirstScan::Emit => "emit",
        FirstScan::Baseline => "baseline",
    };
    lines.push(format!(
        "scan: interval {}, timeout {}, first scan {first_scan}",
        humantime::format_duration(scan.interval),
        humantime::format_duration(scan.timeout),
    ));
    lines.push(format!("state: {}", config.state.path.display()));
    lines.push(format!("metrics: http://{}/metrics", config.metrics.listen));
    lines.push(format!(
        "{} severity overrides, {} suppressions",
        config.severity_overrides.len(),
        config.suppressions.len()
    ));
    lines.iter().map(|line| format!("{line}\n")).collect()
}

fn tenant_line(tenant: &TenantConfig) -> String {
    let auth = match tenant.auth {
        TenantAuth::ClientSecret { .. } => "client secret",
        TenantAuth::Certificate { .. } => "certificate",
        TenantAuth::Delegated => "delegated",
    };
    format!(
        "tenant {}: {} ({auth}), every {}, graph {}",
        tenant.name,
        tenant.tenant_id,
        humantime::format_duration(tenant.interval),
        tenant.graph_url
    )
}

fn sink_line(sink: &SinkConfig) -> String {
    let target = match &sink.kind {
        SinkKind::Stdout => "stdout".to_owned(),
        SinkKind::Syslog(syslog) => {
            let transport = match syslog.transport {
                Transport::Udp => "udp",
                Transport::Tcp => "tcp",
                Transport::Tls => "tls",
                Transport::Unix => "unix",
            };
            format!("syslog {transport} {}", syslog.address)
        }
    };
    let payload = match sink.payload {
        Payload::Cef => "cef",
        Payload::Json => "json",
    };
    format!("sink {}: {target}, {payload}", sink.name)
}
