//! Subcommands: [`dispatch`] runs the one the command line names.
//!
//! Each subcommand lives in its own file with a `run(&Args) -> ExitCode` function. To add one:
//! add a variant with its `Args` struct to [`crate::cli::Command`], a `pub mod name;` line
//! here and one arm in [`dispatch`]. Subcommands that need the config call [`load_config`],
//! which prints every problem and gives exit code 78. Async subcommands build their own tokio
//! runtime inside `run`.

pub mod check_config;
pub mod consent;
pub mod demo;
pub mod report;
pub mod run;
pub mod scan;
mod scan_progress;

use crate::cli::{Cli, Command};
use crate::config::{self, Config, ConfigError};
use std::path::Path;
use std::process::ExitCode;

/// Exit codes (CONTRACT section 2; sysexits.h for 64 and 78).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Runtime failure (scan failed, probe failed, cannot bind).
    pub const FAILURE: u8 = 1;
    /// Command-line usage error (EX_USAGE).
    pub const USAGE: u8 = 64;
    /// Bad config (EX_CONFIG); systemd's `RestartPreventExitStatus=64 78` stops restart loops.
    pub const CONFIG: u8 = 78;
    /// Standard output was closed by the reader (`scan | head -1`): 128 + SIGPIPE, the status a
    /// shell reports for a writer the pipe ended.
    pub const BROKEN_PIPE: u8 = 141;
}

/// Writes `text` to standard output and returns `code`; a reader that closed the pipe ends the
/// command quietly with [`exit::BROKEN_PIPE`], any other write error is reported with status 1.
pub(crate) fn write_stdout(text: &str, code: u8) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::from(code),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(exit::BROKEN_PIPE)
        }
        Err(err) => {
            eprintln!("m365-posture: cannot write to standard output: {err}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// Runs the subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::CheckConfig(args) => check_config::run(&args),
        Command::Scan(args) => scan::run(&args),
        Command::Run(args) => run::command(&args),
        Command::Consent(args) => consent::run(&args),
        Command::Demo(args) => demo::command(&args),
        Command::Report(args) => report::run(&args),
    }
}

/// Loads the config at `path` with environment overrides; on failure prints every problem to
/// standard error and returns exit code 78 as the error.
pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    config::load(path).map_err(|err| {
        print_config_error(path, &err);
        ExitCode::from(exit::CONFIG)
    })
}

/// Prints a config error to standard error: a header line, then one problem per line.
pub fn print_config_error(path: &Path, err: &ConfigError) {
    let count = err.problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    eprintln!(
        "m365-posture: config {} has {count} {noun}:\n{err}",
        path.display()
    );
}

/// The multi-threaded tokio runtime of an async subcommand; on failure prints why and gives the
/// exit code to return.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            eprintln!("m365-posture: cannot start the async runtime: {err}");
            ExitCode::from(exit::FAILURE)
        })
}
