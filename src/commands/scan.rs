//! `m365-posture scan`: one collection and evaluation of the configured tenants, findings to
//! stdout as JSON, a table or CEF. Touches no daemon state and sends no events; the one
//! exception is a delegated tenant's refresh token, read from the state file and its rotated
//! successor saved back (or the stored one would go stale). See `cli_token_store`.

use crate::checks::{evaluate_all, EvalCtx};
use crate::cli::ScanArgs;
use crate::collect::probe::probe_tenant;
use crate::collect::{collect_tenant, CollectContext, CollectError};
use crate::config::{Config, TenantAuth, TenantConfig};
use crate::graph::auth::NoRefreshTokens;
use crate::graph::RefreshTokenStore;
use crate::metrics::{Metrics, MetricsError};
use crate::report::{
    render_cef_lines, render_json, render_table, tenant_scan, ScanDocument, ScanStatus, TenantScan,
};
use crate::state::Store;
use chrono::{DateTime, Utc};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The refresh-token store of `scan` and `check-config --probe` for `tenants`. A delegated
/// tenant reads its refresh token from the state file and saves the rotated one back: that
/// token is the only state these commands touch. Without a delegated tenant, or before
/// `consent` created the state file, no file is opened or created.
fn cli_token_store<'a>(
    config: &Config,
    mut tenants: impl Iterator<Item = &'a TenantConfig>,
) -> Result<Arc<dyn RefreshTokenStore>, ExitCode> {
    let path = &config.state.path;
    if !tenants.any(|t| t.auth == TenantAuth::Delegated) || !path.exists() {
        return Ok(Arc::new(NoRefreshTokens));
    }
    match Store::open(path) {
        Ok(store) => Ok(Arc::new(store)),
        Err(err) => {
            eprintln!(
                "m365-posture: cannot open the state file {} for the refresh tokens of delegated \
                 tenants: {err}",
                path.display()
            );
            Err(ExitCode::from(super::exit::FAILURE))
        }
    }
}

/// Runs `scan` from the command line: prints the output on stdout, errors on stderr.
pub fn run(args: &ScanArgs) -> ExitCode {
    let config = match super::load_config(&args.config.path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let selected = config
        .tenants
        .iter()
        .filter(|t| args.tenant.as_ref().map_or(true, |name| &t.name == name));
    let tokens = match cli_token_store(&config, selected) {
        Ok(tokens) => tokens,
        Err(code) => return code,
    };
    let result = runtime.block_on(scan(&config, args.tenant.as_deref(), args.format, tokens));
    match result {
        Ok(result) => super::write_stdout(&result.output, result.exit_code),
        Err(err) => {
            eprintln!("m365-posture: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// `check-config --probe`: a token and one request per permission for every tenant; prints
/// one line per check and exits 1 when a token or a permission is missing.
pub fn probe(config: &Config) -> ExitCode {
    let tokens = match cli_token_store(config, config.tenants.iter()) {
        Ok(tokens) => tokens,
        Err(code) => return code,
    };
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let (all_ok, output) = runtime.block_on(async {
        let metrics = match Metrics::new() {
            Ok(m) => m,
            Err(err) => {
                eprintln!("m365-posture: {err}");
                return (false, String::new());
            }
        };
        let ctx = match CollectContext::new(Arc::new(config.clone()), metrics, tokens) {
            Ok(ctx) => ctx,
            Err(err) => {
                eprintln!("m365-posture: {err}");
                return (false, String::new());
            }
        };
        let cancel = CancellationToken::new();
        let mut ok = true;
        let mut output = String::new();
        for tenant in &config.tenants {
            let report = probe_tenant(&ctx, tenant, &cancel).await;
            output.push_str(&report.render());
            ok &= report.ok();
        }
        (ok, output)
    });
    super::write_stdout(
        &output,
        if all_ok {
            super::exit::OK
        } else {
            super::exit::FAILURE
        },
    )
}

/// Output format of `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScanFormat {
    /// The JSON document of CONTRACT section 5 (default).
    #[default]
    Json,
    /// A table for humans.
    Table,
    /// One CEF line per finding, as a `new` event.
    Cef,
}

/// Why `scan` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// `--tenant` names no configured tenant.
    #[error("no tenant named {0:?} in the config")]
    UnknownTenant(String),
    /// The config lists no tenant.
    #[error("the config lists no tenants")]
    NoTenants,
    /// Collection could not be set up.
    #[error(transparent)]
    Collect(#[from] CollectError),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

impl ScanError {
    /// The process exit code: 64 for a usage error, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownTenant(_) => 64,
            _ => 1,
        }
    }
}

/// What `scan` produced.
#[derive(Debug, Clone)]
pub struct ScanResult {
    /// The rendered output for stdout.
    pub output: String,
    /// The structured result.
    pub document: ScanDocument,
    /// 0 when every tenant's scan ran (findings or not), 1 when one failed.
    pub exit_code: u8,
}

/// Scans the configured tenants (or only `tenant`) once, concurrently, and renders the result.
pub async fn scan(
    config: &Config,
    tenant: Option<&str>,
    format: ScanFormat,
    tokens: Arc<dyn RefreshTokenStore>,
) -> Result<ScanResult, ScanError> {
    let selected = select_tenants(config, tenant)?;
    let ctx = CollectContext::new(Arc::new(config.clone()), Metrics::new()?, tokens)?;
    let scans = futures::future::join_all(selected.iter().map(|t| scan_tenant(&ctx, t)));
    let scans = super::scan_progress::with_progress(&ctx, &selected, scans).await;
    let failed = scans.iter().any(|s| s.status == ScanStatus::Failed);
    let document = ScanDocument { tenants: scans };
    let output = match format {
        ScanFormat::Table => render_table(&document),
        ScanFormat::Json => render_json(&document),
        ScanFormat::Cef => render_cef_lines(&document),
    };
    Ok(ScanResult {
        output,
        document,
        exit_code: u8::from(failed),
    })
}

fn select_tenants<'a>(
    config: &'a Config,
    tenant: Option<&str>,
) -> Result<Vec<&'a TenantConfig>, ScanError> {
    let selected: Vec<&TenantConfig> = match tenant {
        Some(name) => vec![config
            .tenants
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ScanError::UnknownTenant(name.to_owned()))?],
        None => config.tenants.iter().collect(),
    };
    if selected.is_empty() {
        return Err(ScanError::NoTenants);
    }
    Ok(selected)
}

/// Collects and evaluates one tenant within the configured scan timeout.
pub async fn scan_tenant(ctx: &CollectContext, tenant: &TenantConfig) -> TenantScan {
    let started_at = wall_clock();
    let cancel = CancellationToken::new();
    let config = ctx.config();
    let deadline = config.scan.timeout;
    let collected = tokio::select! {
        report = collect_tenant(ctx, tenant, &cancel) => report,
        () = tokio::time::sleep(deadline) => {
            cancel.cancel();
            collect_tenant_timed_out(tenant, deadline)
        }
    };
    let eval = EvalCtx {
        now: started_at,
        options: &config.checks,
    };
    let outcomes = evaluate_all(&collected.snapshot, &eval);
    tenant_scan(
        &config,
        tenant,
        &collected,
        outcomes,
        started_at,
        wall_clock(),
    )
}

fn collect_tenant_timed_out(
    tenant: &TenantConfig,
    deadline: std::time::Duration,
) -> crate::collect::CollectReport {
    let err = format!(
        "scan did not finish within {}",
        humantime::format_duration(deadline)
    );
    crate::collect::CollectReport {
        snapshot: crate::snapshot::TenantSnapshot::empty(&tenant.tenant_id, &err),
        error: Some(err),
    }
}

#[allow(clippy::disallowed_methods)] // the scan command is where the clock is read
fn wall_clock() -> DateTime<Utc> {
    Utc::now()
}
