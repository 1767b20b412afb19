//! The command line (CONTRACT section 2), parsed with clap.
//!
//! Global options come before the subcommand. A subcommand is listed here only once it works;
//! each has an `Args` struct here and its code in `commands/<name>.rs`.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Where the config is read from unless `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/m365-posture/config.toml";

/// `m365-posture [--log-format text|json] [-v] <COMMAND>`.
#[derive(Debug, Parser)]
#[command(
    name = "m365-posture",
    version = crate::build_info::VERSION_LINE,
    about = "Watches Microsoft 365 tenants for security posture problems",
    long_about = "Watches Microsoft 365 tenants for security posture problems: rescans tenants \
                  through Microsoft Graph and DNS, exports Prometheus metrics and sends CEF \
                  events over syslog.\n\nExit codes: 0 ok, 1 runtime failure, 64 usage error, \
                  78 bad config, 141 standard output closed by its reader.\n\nFiles: \
                  /etc/m365-posture/config.toml (config), /var/lib/m365-posture/state.db \
                  (state). Documentation: /usr/share/doc/m365-posture/."
)]
pub struct Cli {
    /// Log line format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More log detail: -v debug, -vv trace (RUST_LOG, when set, wins).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the config file (and environment overrides) and print every problem at once.
    ///
    /// Checks keys, values and that every credential file it names can be read. Exits 0 when
    /// the config is usable, 78 when it is not.
    CheckConfig(CheckConfigArgs),
    /// Scan the configured tenants once and print the findings.
    ///
    /// Touches no daemon state and sends no events; the one exception is a delegated tenant,
    /// whose rotated refresh token is stored in the state file. Exits 0 when the scan ran (findings or
    /// not), 1 when a tenant's scan failed.
    Scan(ScanArgs),
    /// Run the daemon: rescan every tenant on its interval, serve /metrics, deliver events.
    ///
    /// Stops cleanly on SIGTERM or SIGINT (exit 0); SIGHUP reloads the config (the old one
    /// stays if the new one is invalid). Exits 78 on a bad config, 1 on a runtime failure.
    Run(RunArgs),
    /// Sign in with a device code for a tenant with `auth = "delegated"` and store its
    /// refresh token in the state file.
    ///
    /// Prints a URL and a code; open the URL in a browser, enter the code and sign in as an
    /// administrator of the tenant. Exits 0 once the token is stored, 1 when the sign-in fails
    /// or is cancelled (Ctrl-C), 64 when the tenant is unknown or not delegated, 78 on a bad
    /// config.
    Consent(ConsentArgs),
    /// The zero-setup demo: graph-sim in-process on loopback, a tenant that changes every
    /// cycle, and the real daemon scanning it.
    ///
    /// CEF events go to standard output, metrics to `--listen`. Stops on Ctrl-C (exit 0).
    Demo(DemoArgs),
    /// Write a report of the open and suppressed findings from the state file: one
    /// self-contained HTML page, CSV or JSON on standard output.
    ///
    /// Reads only the state file the daemon writes (safe next to a running daemon). Each open
    /// finding has its title, resource, first seen, evidence, remediation and references.
    /// Exits 0 when written, 1 when there is no state file, 64 for an unknown tenant.
    Report(ReportArgs),
}

/// `demo [--listen ADDR] [--users N]`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where `/metrics` listens.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9365")]
    pub listen: std::net::SocketAddr,
    /// Users in the generated tenant.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub users: usize,
    /// Time between scans (and between tenant changes).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Seed of the generated tenant.
    #[arg(long, value_name = "S", default_value_t = 42)]
    pub seed: u64,
}

/// `report [--config PATH] [--tenant NAME] [--format html|csv|json]`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Which config (for the state file, the tenants and the suppressions).
    #[command(flatten)]
    pub config: ConfigPath,
    /// Only this tenant (by name).
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
}

/// Output format of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One self-contained HTML page (default).
    Html,
    /// CSV (RFC 4180), one row per open instance.
    Csv,
    /// One JSON document.
    Json,
}

/// `--config PATH`, shared by every subcommand that reads the config.
#[derive(Debug, Clone, Args)]
pub struct ConfigPath {
    /// Config file (TOML); `M365_POSTURE__SECTION__KEY` variables override its values.
    #[arg(long = "config", value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    pub path: PathBuf,
}

/// `run [--config PATH] [--web.config.file PATH] [--web.listen-address ADDR]`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Which config.
    #[command(flatten)]
    pub config: ConfigPath,
    /// TLS and basic auth for /metrics, in the Prometheus exporter-toolkit web config format
    /// (`tls_server_config`, `basic_auth_users` with bcrypt hashes); read again for every
    /// connection. Without it, /metrics is plain HTTP without authentication.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,
    /// Where `/metrics` listens ("ip:port"), as node_exporter's flag; overrides the config's
    /// `[metrics] listen` (also across SIGHUP reloads).
    #[arg(long = "web.listen-address", value_name = "ADDR")]
    pub web_listen_address: Option<std::net::SocketAddr>,
}

/// `check-config [--config PATH]`.
#[derive(Debug, Clone, Args)]
pub struct CheckConfigArgs {
    /// Which config.
    #[command(flatten)]
    pub config: ConfigPath,
    /// Also get a token for each tenant and check each Graph permission the checks need.
    #[arg(long)]
    pub probe: bool,
}

/// `consent [--config PATH] --tenant NAME`.
#[derive(Debug, Clone, Args)]
pub struct ConsentArgs {
    /// Which config.
    #[command(flatten)]
    pub config: ConfigPath,
    /// The tenant to sign in for (by name); it must have `auth = "delegated"`.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
}

/// `scan [--config PATH] [--tenant NAME] [--format json|table|cef]`.
#[derive(Debug, Clone, Args)]
pub struct ScanArgs {
    /// Which config.
    #[command(flatten)]
    pub config: ConfigPath,
    /// Only this tenant (by name).
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = crate::commands::scan::ScanFormat::Json)]
    pub format: crate::commands::scan::ScanFormat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_path_defaults_to_etc() {
        let cli = Cli::try_parse_from(["m365-posture", "check-config"]).unwrap();
        let Command::CheckConfig(args) = cli.command else {
            panic!("not check-config");
        };
        assert_eq!(args.config.path, PathBuf::from(DEFAULT_CONFIG_PATH));
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "m365-posture",
            "-vv",
            "check-config",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.verbose, 2);
        assert_eq!(cli.log_format, LogFormat::Json);
    }
}
