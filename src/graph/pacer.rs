//! Client-side pacing of one Graph throttling bucket: at most `limit` requests in any window
//! of `span` (a sliding window, as Graph counts the identity reports bucket: 5 requests per
//! 10 s per app and tenant, every `$batch` member once; see
//! <https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits>).
//!
//! A pacer lives as long as its tenant's collection context, so the window carries over from
//! one scan to the next. A 429 from the bucket blocks it for the `Retry-After`, so requests
//! waiting on the same bucket do not come back early (Graph extends the block of an early
//! retry) and requests of other buckets are not held up.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// The requests-per-window budget of one bucket.
#[derive(Debug)]
pub struct Pacer {
    limit: usize,
    span: Duration,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

impl Pacer {
    /// A pacer of `limit` requests (at least 1) per `span`.
    pub fn new(limit: u32, span: Duration) -> Self {
        Self {
            limit: usize::try_from(limit.max(1)).unwrap_or(usize::MAX),
            span,
            state: Mutex::new(Window::default()),
        }
    }

    /// Most requests one window admits (the largest batch worth sending at once).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Waits until `cost` requests (capped to the limit) fit in the window, then records them.
    pub async fn acquire(&self, cost: usize) {
        let cost = cost.clamp(1, self.limit);
        loop {
            let wait = {
                let mut window = self.state.lock().unwrap_or_else(|p| p.into_inner());
                window.admit(Instant::now(), cost, self.limit, self.span)
            };
            match wait {
                None => return,
                Some(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Blocks the bucket for `wait` after it answered 429 (keeps the later of two blocks).
    pub fn throttled(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut window = self.state.lock().unwrap_or_else(|p| p.into_inner());
        window.blocked_until = Some(window.blocked_until.map_or(until, |b| b.max(until)));
    }
}

impl Window {
    /// Records `cost` requests at `now` and returns `None`, or the instant to try again.
    fn admit(
        &mut self,
        now: Instant,
        cost: usize,
        limit: usize,
        span: Duration,
    ) -> Option<Instant> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Some(until);
            }
            self.blocked_until = None;
        }
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= span)
        {
            self.sent.pop_front();
        }
        if self.sent.len() + cost <= limit {
            self.sent.extend(std::iter::repeat(now).take(cost));
            return None;
        }
        // The window frees enough room once the oldest `needed` entries have aged out.
        let needed = self.sent.len() + cost - limit;
        let oldest = self.sent.get(needed - 1).copied().unwrap_or(now);
        Some(oldest + span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn admits_the_limit_then_waits_for_the_window() {
        let pacer = Pacer::new(5, Duration::from_secs(10));
        let start = Instant::now();
        pacer.acquire(5).await;
        assert_eq!(Instant::now(), start);
        pacer.acquire(1).await;
        assert!(Instant::now() >= start + Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_larger_than_the_limit_is_capped() {
        let pacer = Pacer::new(5, Duration::from_secs(10));
        pacer.acquire(20).await;
        let start = Instant::now();
        pacer.acquire(3).await;
        assert!(Instant::now() >= start + Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_blocks_the_bucket_for_its_retry_after() {
        let pacer = Pacer::new(5, Duration::from_secs(10));
        let start = Instant::now();
        pacer.throttled(Duration::from_secs(3));
        pacer.acquire(1).await;
        assert!(Instant::now() >= start + Duration::from_secs(3));
        assert!(Instant::now() < start + Duration::from_secs(4));
    }
}
