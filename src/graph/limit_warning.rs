//! Slowing a pool before Graph throttles it. Identity answers carry
//! `x-ms-throttle-limit-percentage` once the app has used more than 0.8 of its resource-unit
//! budget ("Returned only when the application consumed more than 0.8 of its limit. The value
//! ranges from 0.8 to 1.8 and is a percentage of the use of the limit",
//! <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>).
//!
//! The budget is counted per 10 s, so it refills a tenth of itself each second: a warning of
//! `share` holds the pool's next requests for `(share - 0.8) x 10 s`, the time the budget takes
//! to drain back to 0.8, instead of running on into 429s and their penalties.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The response header.
pub const HEADER: &str = "x-ms-throttle-limit-percentage";

/// Share of the budget below which Graph sends no warning.
const WARNING_SHARE: f64 = 0.8;

/// Highest share Graph documents; a larger value is read as this.
const MAX_SHARE: f64 = 1.8;

/// The window the identity budget is counted over.
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// The share of the budget a header value states, when it is a number Graph could send
/// (finite, at least 0.8; capped at 1.8). Anything else is ignored.
pub fn parse_share(value: &str) -> Option<f64> {
    let share: f64 = value.trim().parse().ok()?;
    (share.is_finite() && share >= WARNING_SHARE).then_some(share.min(MAX_SHARE))
}

/// How long a warning of `share` holds the pool: until the budget is back at 0.8.
pub fn hold_for(share: f64) -> Duration {
    BUDGET_WINDOW.mul_f64((share - WARNING_SHARE).clamp(0.0, MAX_SHARE - WARNING_SHARE))
}

/// The hold of one pool: requests wait until it ends.
#[derive(Debug, Default)]
pub struct Brake {
    until: Mutex<Option<Instant>>,
}

impl Brake {
    /// Holds the pool after a warning of `share` (keeps the later of two holds).
    pub fn warned(&self, share: f64) {
        let until = Instant::now() + hold_for(share);
        let mut held = self.until.lock().unwrap_or_else(|p| p.into_inner());
        *held = Some(held.map_or(until, |h| h.max(until)));
    }

    /// Waits for the hold to end (at once when there is none).
    pub async fn wait(&self) {
        let until = *self.until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shares_graph_could_send_count() {
        assert_eq!(parse_share("0.85"), Some(0.85));
        assert_eq!(parse_share(" 1.2 "), Some(1.2));
        assert_eq!(parse_share("7"), Some(1.8));
        assert_eq!(parse_share("0.5"), None);
        assert_eq!(parse_share("-1"), None);
        assert_eq!(parse_share("NaN"), None);
        assert_eq!(parse_share("inf"), None);
        assert_eq!(parse_share("85%"), None);
    }

    #[test]
    fn the_hold_drains_the_budget_back_to_eight_tenths() {
        assert_eq!(hold_for(0.8), Duration::ZERO);
        assert_eq!(hold_for(0.9), Duration::from_secs(1));
        assert_eq!(hold_for(1.8), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_warning_holds_requests_and_the_later_hold_wins() {
        let brake = Brake::default();
        let start = Instant::now();
        brake.wait().await;
        assert_eq!(Instant::now(), start);
        brake.warned(1.0);
        brake.warned(0.85);
        brake.wait().await;
        assert_eq!(Instant::now(), start + Duration::from_secs(2));
    }
}
