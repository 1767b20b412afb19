//! Throttling buckets (graph-client.md section 2.6): the identity resource-unit token bucket
//! per app and tenant, the identity reports bucket, and Outlook's per-mailbox concurrency and
//! request window. A client that comes back before its `Retry-After` elapsed is throttled
//! again and its block grows by `early_retry_penalty_secs`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::faults::ThrottleSettings;

/// Why a request was refused, and for how long.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Throttled {
    pub retry_after: f64,
    pub reason: Reason,
}

/// Which bucket refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    ResourceUnits,
    Reports,
    MailboxConcurrency,
    MailboxRequests,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
struct Window {
    hits: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
struct Mailbox {
    in_flight: u32,
    window: Window,
}

/// All buckets, keyed by client id (and mailbox).
#[derive(Default)]
pub(crate) struct ThrottleState {
    identity: HashMap<String, Bucket>,
    reports: HashMap<String, Window>,
    mailboxes: HashMap<(String, String), Mailbox>,
}

fn early_retry(blocked: &mut Option<Instant>, now: Instant, penalty: f64) -> Option<f64> {
    let until = (*blocked)?;
    if now >= until {
        *blocked = None;
        return None;
    }
    let extended = until + Duration::from_secs_f64(penalty.max(0.0));
    *blocked = Some(extended);
    Some((extended - now).as_secs_f64())
}

impl ThrottleState {
    /// Charges `cost` resource units to the client's identity bucket of `budget` per 10 s and
    /// returns the share of the budget now used (0.0 to 1.0).
    pub fn identity(
        &mut self,
        client: &str,
        budget: u32,
        cost: u32,
        settings: &ThrottleSettings,
        now: Instant,
    ) -> Result<f64, Throttled> {
        let capacity = f64::from(budget.max(1));
        let bucket = self.identity.entry(client.to_string()).or_insert(Bucket {
            tokens: capacity,
            refilled: now,
            blocked_until: None,
        });
        let refused = |retry_after| Throttled {
            retry_after,
            reason: Reason::ResourceUnits,
        };
        if let Some(wait) = early_retry(
            &mut bucket.blocked_until,
            now,
            settings.early_retry_penalty_secs,
        ) {
            return Err(refused(wait));
        }
        let rate = capacity / 10.0;
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.refilled = now;
        let cost = f64::from(cost);
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(1.0 - bucket.tokens / capacity);
        }
        let wait = ((cost - bucket.tokens) / rate).max(1.0);
        bucket.blocked_until = Some(now + Duration::from_secs_f64(wait));
        Err(refused(wait))
    }

    /// Counts one request against the client's reports bucket (`limit` per 10 s).
    pub fn reports(
        &mut self,
        client: &str,
        limit: u32,
        settings: &ThrottleSettings,
        now: Instant,
    ) -> Result<(), Throttled> {
        let window = self.reports.entry(client.to_string()).or_default();
        admit_window(window, limit, Duration::from_secs(10), settings, now).map_err(|retry_after| {
            Throttled {
                retry_after,
                reason: Reason::Reports,
            }
        })
    }

    /// Takes a concurrency slot on a mailbox; release it with [`ThrottleState::release`].
    pub fn mailbox(
        &mut self,
        client: &str,
        mailbox: &str,
        settings: &ThrottleSettings,
        now: Instant,
    ) -> Result<(), Throttled> {
        let state = self
            .mailboxes
            .entry((client.to_string(), mailbox.to_string()))
            .or_default();
        if state.in_flight >= settings.mailbox_concurrency.max(1) {
            return Err(Throttled {
                retry_after: 1.0,
                reason: Reason::MailboxConcurrency,
            });
        }
        admit_window(
            &mut state.window,
            settings.mailbox_per_10_min,
            Duration::from_secs(600),
            settings,
            now,
        )
        .map_err(|retry_after| Throttled {
            retry_after,
            reason: Reason::MailboxRequests,
        })?;
        state.in_flight += 1;
        Ok(())
    }

    /// Gives back a mailbox slot taken by [`ThrottleState::mailbox`].
    pub fn release(&mut self, client: &str, mailbox: &str) {
        if let Some(state) = self
            .mailboxes
            .get_mut(&(client.to_string(), mailbox.to_string()))
        {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

fn admit_window(
    window: &mut Window,
    limit: u32,
    span: Duration,
    settings: &ThrottleSettings,
    now: Instant,
) -> Result<(), f64> {
    if let Some(wait) = early_retry(
        &mut window.blocked_until,
        now,
        settings.early_retry_penalty_secs,
    ) {
        return Err(wait);
    }
    while window
        .hits
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= span)
    {
        window.hits.pop_front();
    }
    if window.hits.len() < usize::try_from(limit.max(1)).unwrap_or(usize::MAX) {
        window.hits.push_back(now);
        return Ok(());
    }
    let oldest = window.hits.front().copied().unwrap_or(now);
    let wait = (oldest + span)
        .saturating_duration_since(now)
        .as_secs_f64()
        .max(0.5);
    window.blocked_until = Some(now + Duration::from_secs_f64(wait));
    Err(wait)
}

/// Renders a `Retry-After` value: whole seconds, or sometimes a fraction such as `2.128`.
pub(crate) fn retry_after_header(seconds: f64, fractional: bool) -> String {
    if fractional {
        format!("{:.3}", seconds.max(0.001))
    } else {
        format!("{}", seconds.ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_bucket_refuses_then_refills() {
        let settings = ThrottleSettings::default();
        let mut state = ThrottleState::default();
        let start = Instant::now();
        assert!(state.identity("app", 10, 6, &settings, start).is_ok());
        let refused = state.identity("app", 10, 6, &settings, start).unwrap_err();
        assert_eq!(refused.reason, Reason::ResourceUnits);
        assert!(refused.retry_after >= 1.0);
        let later = start + Duration::from_secs_f64(refused.retry_after + 0.01);
        assert!(state.identity("app", 10, 6, &settings, later).is_ok());
    }

    #[test]
    fn early_retry_extends_the_block() {
        let settings = ThrottleSettings::default();
        let mut state = ThrottleState::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            state.reports("app", 5, &settings, t0).unwrap();
        }
        let first = state
            .reports("app", 5, &settings, t0)
            .unwrap_err()
            .retry_after;
        let second = state
            .reports("app", 5, &settings, t0)
            .unwrap_err()
            .retry_after;
        assert!(
            second >= first + settings.early_retry_penalty_secs - 0.01,
            "{first} {second}"
        );
    }

    #[test]
    fn mailbox_concurrency_is_four() {
        let settings = ThrottleSettings::default();
        let mut state = ThrottleState::default();
        let now = Instant::now();
        for _ in 0..4 {
            state.mailbox("app", "m1", &settings, now).unwrap();
        }
        assert_eq!(
            state
                .mailbox("app", "m1", &settings, now)
                .unwrap_err()
                .reason,
            Reason::MailboxConcurrency
        );
        assert!(state.mailbox("app", "m2", &settings, now).is_ok());
        state.release("app", "m1");
        assert!(state.mailbox("app", "m1", &settings, now).is_ok());
    }

    #[test]
    fn retry_after_formats() {
        assert_eq!(retry_after_header(1.2, false), "2");
        assert_eq!(retry_after_header(2.128, true), "2.128");
    }
}
