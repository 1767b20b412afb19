//! `graph-sim`: the Microsoft Graph + Entra token + DNS simulator as a binary (CONTRACT
//! section 2). Prints `http=ADDR` and `dns=ADDR` as its first stdout lines.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use graph_sim::{generate, start, GraphLatency, SimOptions, TenantFile};

/// Simulator of Microsoft Graph v1.0, the Entra ID token endpoint and DNS.
#[derive(Debug, Parser)]
#[command(name = "graph-sim", version, about)]
struct Cli {
    /// Tenant file (CONTRACT section 6).
    #[arg(long, conflicts_with_all = ["users", "seed"])]
    tenant: Option<PathBuf>,
    /// Generate a tenant with this many users.
    #[arg(long, required_unless_present = "tenant")]
    users: Option<usize>,
    /// Seed of the generated tenant.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// DNS listen address (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5353")]
    dns_listen: SocketAddr,
    /// Answer with Graph-shaped latency (graph-client.md section 5.1) multiplied by this factor
    /// (1 = Graph's speed, 0.1 = ten times faster); replaces the tenant file's
    /// `faults.graph_latency`. Off by default.
    #[arg(long, value_parser = parse_scale)]
    graph_latency_scale: Option<f64>,
    /// Write the tenant as JSON to this file and exit (with `--users`).
    #[arg(long)]
    dump: Option<PathBuf>,
}

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(scale) if scale.is_finite() && scale >= 0.0 => Ok(scale),
        _ => Err(format!("{text:?} is not a factor of 0 or more")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let tenant = match (&cli.tenant, cli.users) {
        (Some(path), _) => TenantFile::load(path)?,
        (None, Some(users)) => generate(users, cli.seed),
        (None, None) => anyhow::bail!("either --tenant or --users is required"),
    };
    if let Some(path) = &cli.dump {
        std::fs::write(path, tenant.to_json())
            .with_context(|| format!("cannot write {}", path.display()))?;
        return Ok(());
    }
    let options = SimOptions {
        http_listen: cli.listen,
        dns_listen: cli.dns_listen,
        seed: cli.seed,
        graph_latency: cli.graph_latency_scale.map(GraphLatency::scaled),
        ..SimOptions::default()
    };
    let handle = start(tenant, options).await?;
    println!("http={}", handle.http_addr());
    println!("dns={}", handle.dns_addr());
    println!("tenant_id={}", handle.tenant_id());
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for ctrl-c")?;
    handle.shutdown().await;
    Ok(())
}
