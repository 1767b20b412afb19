//! Logging setup: `tracing` to standard error, as text or JSON lines.
//!
//! The level comes from `-v` (info, debug, trace) unless `RUST_LOG` is set. Standard output is
//! left to command results (scan output, stdout sinks).

use crate::cli::LogFormat;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up logging: {0}")]
pub struct TelemetryError(String);

/// Installs the global subscriber; call once, before anything logs.
pub fn init(format: LogFormat, verbosity: u8) -> Result<(), TelemetryError> {
    let level = match verbosity {
        0 => LevelFilter::INFO,
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    // Colour only on a terminal: the journal and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|err| TelemetryError(err.to_string()))
}
