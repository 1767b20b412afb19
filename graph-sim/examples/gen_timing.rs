//! Times the generator: `cargo run --release -p graph-sim --example gen_timing -- 100000`.
fn main() {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let started = std::time::Instant::now();
    let tenant = graph_sim::generate(users, 1);
    println!("{} users in {:?}", tenant.users.len(), started.elapsed());
}
