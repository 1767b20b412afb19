//! Graph-shaped response latency (`faults.graph_latency`, `SimOptions::graph_latency`,
//! `graph-sim --graph-latency-scale F`): how long Microsoft's services take to answer, by kind
//! of request, so that a benchmark against the simulator waits on "Graph" the way an agent
//! waits on Graph, only scaled down.
//!
//! The figures are graph-client.md section 5.1's planning assumptions (Microsoft publishes no
//! latency figures): a small directory GET 100-300 ms; a `/users?$top=999` page 1-2 s (here
//! pro rata by the items on the page); an Exchange GET (inbox rules, calendar permissions)
//! 200-600 ms; a `$batch` of 20 directory GETs about its slowest member, 0.5-1 s, and of 20
//! Exchange GETs 5 waves of 4 (members run concurrently, Exchange members four at a time, so
//! a batch's time comes from its members plus `batch_overhead_ms`). Every figure is
//! multiplied by `scale`. Off unless configured; draws are uniform and reproducible from the
//! tenant's `faults.seed` and the order of requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::faults::decision_rng;
use crate::state::{lock, Shared};

/// Latency model: ranges in milliseconds at Graph's speed, and the factor applied to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphLatency {
    /// Multiplier of every range (1.0 = Graph's speed; 0.01 = a hundred times faster).
    pub scale: f64,
    /// A directory or reports GET, before the items on its page.
    pub small_get_ms: [u64; 2],
    /// Added to a list page per 1,000 items it carries (pro rata).
    pub page_per_1000_items_ms: [u64; 2],
    /// An Exchange GET (inbox rules, calendar permissions, mailbox settings).
    pub exchange_get_ms: [u64; 2],
    /// A `$batch` request on top of its members (which run concurrently).
    pub batch_overhead_ms: [u64; 2],
    /// The token endpoint.
    pub token_ms: [u64; 2],
}

impl Default for GraphLatency {
    fn default() -> Self {
        GraphLatency {
            scale: 1.0,
            small_get_ms: [100, 300],
            page_per_1000_items_ms: [900, 1700],
            exchange_get_ms: [200, 600],
            batch_overhead_ms: [200, 500],
            token_ms: [100, 300],
        }
    }
}

/// What a request is, as far as its latency goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// Directory or reports GET answering `items` objects (0 for a single object).
    Directory {
        /// Objects on the page.
        items: usize,
    },
    /// Exchange GET.
    Exchange,
    /// The `$batch` envelope (its members are drawn separately).
    Batch,
    /// Token endpoint.
    Token,
}

impl GraphLatency {
    /// Graph's figures scaled by `scale` (the form `--graph-latency-scale` sets).
    pub fn scaled(scale: f64) -> Self {
        GraphLatency {
            scale,
            ..GraphLatency::default()
        }
    }

    /// The fastest answer the model allows for `kind` (what a test may rely on).
    pub fn minimum(&self, kind: RequestKind) -> Duration {
        self.between(kind, 0.0)
    }

    /// One draw for `kind`; `draw` numbers the draws of one simulator.
    pub fn draw(&self, kind: RequestKind, seed: u64, draw: u64) -> Duration {
        let position: f64 = decision_rng(seed, "graph-latency", draw).gen();
        self.between(kind, position)
    }

    /// The point at `position` (0 = low end, 1 = high end) of `kind`'s range.
    fn between(&self, kind: RequestKind, position: f64) -> Duration {
        let at = |[low, high]: [u64; 2]| {
            let (low, high) = (low as f64, high.max(low) as f64);
            low + (high - low) * position
        };
        let ms = match kind {
            RequestKind::Directory { items } => {
                at(self.small_get_ms) + at(self.page_per_1000_items_ms) * items as f64 / 1000.0
            }
            RequestKind::Exchange => at(self.exchange_get_ms),
            RequestKind::Batch => at(self.batch_overhead_ms),
            RequestKind::Token => at(self.token_ms),
        };
        Duration::from_secs_f64((ms * self.scale.max(0.0) / 1000.0).max(0.0))
    }
}

/// Numbers the latency draws of one simulator.
#[derive(Debug, Default)]
pub(crate) struct DrawCounter(AtomicU64);

impl DrawCounter {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Sleeps for one draw of the tenant's model for `kind`, if it has one, and counts the time in
/// the stats. Call it without holding the tenant lock.
pub(crate) async fn wait(shared: &Shared, kind: RequestKind) {
    let (model, seed) = {
        let data = shared.read();
        (
            data.file.faults.graph_latency.clone(),
            data.file.faults.seed,
        )
    };
    let Some(model) = model else {
        return;
    };
    let delay = model.draw(kind, seed, shared.latency_draws.next());
    lock(&shared.stats).latency_added_ms += u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    tokio::time::sleep(delay).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_users_page_takes_one_to_two_seconds_at_graph_speed() {
        let model = GraphLatency::default();
        let page = RequestKind::Directory { items: 999 };
        let low = model.minimum(page).as_secs_f64();
        assert!((0.99..1.01).contains(&low), "{low}");
        for draw in 0..50 {
            let d = model.draw(page, 1, draw).as_secs_f64();
            assert!((low..=2.0).contains(&d), "{d}");
        }
    }

    #[test]
    fn scale_divides_every_kind() {
        let tenth = GraphLatency::scaled(0.1);
        let full = GraphLatency::default();
        for kind in [
            RequestKind::Exchange,
            RequestKind::Batch,
            RequestKind::Token,
            RequestKind::Directory { items: 0 },
        ] {
            let (a, b) = (tenth.draw(kind, 3, 7), full.draw(kind, 3, 7));
            assert!((a.as_secs_f64() * 10.0 - b.as_secs_f64()).abs() < 1e-6);
        }
        assert_eq!(
            full.minimum(RequestKind::Exchange),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn parses_partial_settings() {
        let model: GraphLatency =
            serde_json::from_str(r#"{"scale": 0.5, "exchange_get_ms": [10, 20]}"#).unwrap();
        assert_eq!(model.exchange_get_ms, [10, 20]);
        assert_eq!(model.small_get_ms, [100, 300]);
    }
}
