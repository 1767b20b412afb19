//! Retry policy: `Retry-After` parsing (seconds, fractional seconds or an HTTP date),
//! exponential backoff with full jitter, and a per-scan retry budget shared by every request of
//! one tenant scan so a sick service cannot keep the agent retrying forever.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How a client retries.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries of one request (attempts = retries + 1).
    pub max_retries: u32,
    /// First backoff step; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff step (before jitter).
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; a longer one is capped to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Backoff before retry number `retry` (0-based): full jitter over
    /// `min(max_delay, base_delay * 2^retry)`, never below a tenth of the step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        let fraction: f64 = rand::random::<f64>().clamp(0.1, 1.0);
        step.mul_f64(fraction)
    }

    /// The wait for a `Retry-After` value, capped; `None` when absent or unparsable.
    pub fn retry_after(&self, header: Option<&str>) -> Option<Duration> {
        parse_retry_after(header?).map(|d| d.min(self.max_retry_after))
    }
}

/// Parses `Retry-After`: delay seconds (`2`, and `2.128` as Graph sends) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        // A value past what a Duration holds (`1e308`) is "very long", to be capped by the
        // policy; `from_secs_f64` would panic on it.
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    #[allow(clippy::disallowed_methods)] // the wall clock is needed to turn a date into a delay
    let now = chrono::Utc::now();
    let delta = date.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Retries left for one scan of one tenant; every retry of every request takes one.
#[derive(Debug)]
pub struct RetryBudget {
    left: AtomicU32,
}

impl RetryBudget {
    /// A budget of `retries`.
    pub fn new(retries: u32) -> Self {
        Self {
            left: AtomicU32::new(retries),
        }
    }

    /// Takes one retry; false when the budget is spent.
    pub fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Retries left.
    pub fn left(&self) -> u32 {
        self.left.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_integer_fractional_and_date() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 2.128 "),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("inf"), None);
        // Hostile huge values do not panic; the policy caps them.
        assert_eq!(parse_retry_after("1e308"), Some(Duration::MAX));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(Duration::MAX)
        );
        assert_eq!(
            RetryPolicy::default().retry_after(Some("1e308")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            RetryPolicy::default().retry_after(Some("Fri, 31 Dec 9999 23:59:59 GMT")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.retry_after(Some("100000")),
            Some(Duration::from_secs(300))
        );
        assert_eq!(policy.retry_after(None), None);
    }

    #[test]
    fn backoff_grows_and_stays_within_cap() {
        let policy = RetryPolicy::default();
        for retry in 0..40 {
            let d = policy.backoff(retry);
            assert!(d <= policy.max_delay, "{retry}: {d:?}");
            let step = policy.base_delay * 2u32.pow(retry.min(7));
            assert!(d >= step.min(policy.max_delay) / 10, "{retry}: {d:?}");
        }
    }

    #[test]
    fn budget_runs_out() {
        let budget = RetryBudget::new(2);
        assert!(budget.take());
        assert!(budget.take());
        assert!(!budget.take());
        assert_eq!(budget.left(), 0);
    }
}
