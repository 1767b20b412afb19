//! The `m365-posture` binary: parses the command line, sets up logging, runs one subcommand.
//!
//! Exit codes: 0 ok, 1 runtime failure, 64 usage error, 78 bad config. clap's own usage
//! errors (exit 2 by default) are mapped to 64; `--help` and `--version` exit 0.
#![forbid(unsafe_code)]

use clap::Parser;
use m365_posture::cli::Cli;
use m365_posture::{commands, telemetry};
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: glibc kept about 140 MiB of freed memory resident
/// after a 100,000-user collection (peak RSS against peak heap, BENCHMARKS.md "large_tenant").
/// The `system-alloc` feature keeps glibc's, so that heaptrack (which sees only `malloc`) can
/// profile the daemon: `cargo bench --bench large_tenant --features system-alloc`.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_exit(&err),
    };
    if let Err(err) = telemetry::init(cli.log_format, cli.verbose) {
        eprintln!("m365-posture: {err}");
        return ExitCode::from(commands::exit::FAILURE);
    }
    commands::dispatch(cli)
}

/// Prints clap's message; help and version are successes, everything else a usage error.
fn clap_exit(err: &clap::Error) -> ExitCode {
    if let Err(print_err) = err.print() {
        eprintln!("m365-posture: {print_err}");
    }
    if err.use_stderr() {
        ExitCode::from(commands::exit::USAGE)
    } else {
        ExitCode::from(commands::exit::OK)
    }
}
