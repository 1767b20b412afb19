//! `m365-posture report`: the posture of the configured tenants from the state file, for
//! people — HTML (one self-contained page), CSV or JSON on standard output. Reads the state
//! file only (safe next to a running daemon); contacts neither Graph nor DNS.
//!
//! Exit codes: 0 written, 1 no state file or it cannot be read, 64 unknown `--tenant`, 78 bad
//! config, 141 standard output closed.

use super::{exit, load_config, write_stdout};
use crate::cli::{ReportArgs, ReportFormat};
use crate::config::Config;
use crate::posture_report::csv::render_csv;
use crate::posture_report::html::render_html;
use crate::posture_report::{build, render_json, TenantState};
use crate::state::{StateError, Store};
use chrono::{DateTime, Utc};
use std::process::ExitCode;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `--tenant` names no configured tenant.
    #[error("no tenant named {0:?} in the config")]
    UnknownTenant(String),
    /// There is no state file yet.
    #[error("no state file at {0}: the daemon (`m365-posture run`) has not scanned yet")]
    NoState(String),
    /// The state file could not be read.
    #[error("cannot read the state file {path}: {source}")]
    State {
        /// The state file.
        path: String,
        /// Why.
        source: StateError,
    },
}

impl ReportError {
    /// The process exit code: 64 for an unknown tenant, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::UnknownTenant(_) => exit::USAGE,
            _ => exit::FAILURE,
        }
    }
}

/// Runs `report`.
pub fn run(args: &ReportArgs) -> ExitCode {
    let config = match load_config(&args.config.path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match report(&config, args.tenant.as_deref(), args.format, wall_clock()) {
        Ok(text) => write_stdout(&text, exit::OK),
        Err(err) => {
            eprintln!("m365-posture: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The rendered report of the configured tenants (or only `tenant`) as of `now`.
pub fn report(
    config: &Config,
    tenant: Option<&str>,
    format: ReportFormat,
    now: DateTime<Utc>,
) -> Result<String, ReportError> {
    if let Some(name) = tenant {
        if !config.tenants.iter().any(|t| t.name == name) {
            return Err(ReportError::UnknownTenant(name.to_owned()));
        }
    }
    let path = &config.state.path;
    if !path.exists() {
        return Err(ReportError::NoState(path.display().to_string()));
    }
    let state_error = |source| ReportError::State {
        path: path.display().to_string(),
        source,
    };
    let store = Store::open_read_only(path).map_err(state_error)?;
    let mut tenants = Vec::new();
    for t in &config.tenants {
        if tenant.is_some_and(|name| name != t.name) {
            continue;
        }
        tenants.push(TenantState {
            tenant: t.name.clone(),
            instances: store.load_instances(&t.name).map_err(state_error)?,
            last_success: store
                .scan_summary(&t.name)
                .map_err(state_error)?
                .and_then(|s| s.last_success_finished),
            checks: store.check_records(&t.name).map_err(state_error)?,
        });
    }
    let report = build(tenants, &config.suppressions, now);
    Ok(match format {
        ReportFormat::Html => render_html(&report),
        ReportFormat::Csv => render_csv(&report),
        ReportFormat::Json => render_json(&report),
    })
}

#[allow(clippy::disallowed_methods)] // the report command is where the clock is read
fn wall_clock() -> DateTime<Utc> {
    Utc::now()
}
