//! Subcommands. `scan` and `consent` are here; the CLI dispatch lives with the CLI.

pub mod consent;
pub mod scan;
