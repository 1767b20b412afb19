//! `cargo bench --bench large_tenant`: the real `m365-posture run` binary against graph-sim
//! with generated tenants of 10,000 and 100,000 users, the reports bucket on and Graph-shaped
//! latency, both scaled down by `M365_BENCH_SCALE` (default 100: latency divided by 100, the
//! reports bucket and the agent's `scan.reports_per_10s` at 5 x 100 per 10 s), so that the
//! documented limits, not the host, set the pace. Events go over TCP to the bench's own
//! counting receiver (`receiver.rs`). Issue 10, "How it is shown"; figures in BENCHMARKS.md.
//!
//! Per run: cycle 1 on a fresh state file (time to full per-user coverage against the bound of
//! the documented limits, HTTP requests against graph-client.md section 5.2's lower bound,
//! peak RSS and CPU of the daemon, the first-cycle event flood's drain rate), then cycle 2 on
//! the unchanged tenant (a restart of the daemon on the same state file), then the weekly
//! relisting (the stored listing times aged 8 days: every collection listed again, the stored
//! per-user reads merged; requests, peak RSS and CPU). The first run of the
//! first size also mutates the tenant and checks every change against a one-shot `scan`.
//! Finally `/metrics` render time with 50 configured tenants.
//!
//! Environment: `M365_BENCH_USERS` (default `10000,100000`), `M365_BENCH_RUNS` (default 3,
//! one at 100,000 users), `M365_BENCH_SCALE` (default 100), `M365_BENCH_MUTATE` (0 skips the
//! mutated-tenant cycles), `M365_BENCH_WRAP` (a profiler command the daemon runs under),
//! `M365_BENCH_ENV` (`NAME=value` settings added to the daemon's environment),
//! `M365_BENCH_SPREAD` (users of one more run whose sweep spans several scans, `spread.rs`).

#[path = "../common/mod.rs"]
mod common;
mod cycle;
mod daemon;
mod mutate;
mod receiver;
mod spread;

use common::{load_average, print_machine, print_table, BenchError};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), BenchError> {
    print_machine();
    let scale: u32 = env_or("M365_BENCH_SCALE", 100);
    let sizes: Vec<usize> = std::env::var("M365_BENCH_USERS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "scale 1/{scale}: Graph-shaped latency x {:.4}, reports bucket {} per 10 s on both sides",
        1.0 / f64::from(scale),
        5 * scale
    );
    for (position, users) in sizes.iter().copied().enumerate() {
        let runs = env_or("M365_BENCH_RUNS", if users >= 100_000 { 1 } else { 3 });
        println!("\n## {users} users, {runs} run(s); load {}", load_average());
        let mut figures = Vec::new();
        for run in 0..runs {
            let mutate = position == 0 && run == 0 && env_or("M365_BENCH_MUTATE", 1) != 0;
            figures.push(cycle::run(users, scale, mutate).await?);
            println!("run {} done; load {}", run + 1, load_average());
        }
        cycle::print_figures(users, &figures);
    }
    if let Some(users) = std::env::var("M365_BENCH_SPREAD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        let scale = env_or("M365_BENCH_SPREAD_SCALE", 20);
        println!(
            "\n## a sweep spread over several scans; load {}",
            load_average()
        );
        let row = spread::run(users, scale).await?;
        spread::print(&[row]);
    }
    let metrics = cycle::metrics_with_tenants(50).await?;
    println!("\n## /metrics with 50 tenants; load {}", load_average());
    print_table(
        &[
            "tenants",
            "series",
            "bytes",
            "scrapes",
            "min ms",
            "median ms",
            "max ms",
        ],
        &[metrics],
    );
    Ok(())
}
