//! The `scan` command's progress line: while collection runs and stderr is a terminal, one
//! line rewritten in place every half second with each tenant's users listed and per-user
//! reads done and in flight, cleared when the scan ends. Nothing is written when stderr is
//! not a terminal (a pipe, a file, the journal).

use crate::collect::CollectContext;
use crate::config::TenantConfig;
use std::io::{IsTerminal, Write};
use std::time::Duration;
use tokio::time::Instant;

/// How often the line is rewritten.
const REFRESH: Duration = Duration::from_millis(500);

/// Runs `scans` and, on a terminal, shows their progress until they finish.
pub async fn with_progress<T>(
    ctx: &CollectContext,
    tenants: &[&TenantConfig],
    scans: impl std::future::Future<Output = T>,
) -> T {
    if !std::io::stderr().is_terminal() {
        return scans.await;
    }
    let started = Instant::now();
    tokio::pin!(scans);
    let mut tick = tokio::time::interval(REFRESH);
    let result = loop {
        tokio::select! {
            result = &mut scans => break result,
            _ = tick.tick() => show(&line(ctx, tenants, started.elapsed())),
        }
    };
    show("");
    result
}

fn line(ctx: &CollectContext, tenants: &[&TenantConfig], elapsed: Duration) -> String {
    let parts: Vec<String> = tenants
        .iter()
        .map(|t| format!("{}: {}", t.name, ctx.progress(&t.name).counts()))
        .collect();
    format!("{} ({}s)", parts.join(" | "), elapsed.as_secs())
}

/// Rewrites the terminal line (carriage return, erase line). A failed write is ignored: the
/// line is a courtesy, the scan's result goes to stdout.
fn show(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r\x1b[2K{text}");
    let _ = stderr.flush();
}
