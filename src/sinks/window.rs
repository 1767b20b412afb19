//! The in-flight window of a delivery worker: batches written to the current connection and
//! not yet acknowledged, oldest first, each with the moment its confirm delay ends. The worker
//! acknowledges a batch only once that moment has passed and the connection was then seen
//! healthy; on any error everything in the window is resent from the outbox.

use std::collections::VecDeque;
use tokio::time::Instant;

/// One written batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// The outbox seq of its last event.
    pub last_seq: i64,
    /// How many events it holds.
    pub count: usize,
    /// When its confirm delay ends.
    pub due: Instant,
}

/// Written, unacknowledged batches, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct Window {
    batches: VecDeque<Written>,
    capacity: usize,
}

impl Window {
    /// An empty window holding up to `capacity` batches (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            batches: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a batch just written.
    pub(crate) fn push(&mut self, batch: Written) {
        self.batches.push_back(batch);
    }

    /// True when no further batch may be written before the oldest is acknowledged.
    pub(crate) fn is_full(&self) -> bool {
        self.batches.len() >= self.capacity
    }

    /// True when nothing is waiting for an acknowledgement.
    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// When the oldest batch's confirm delay ends.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.batches.front().map(|b| b.due)
    }

    /// Events written and not acknowledged (what an error now would send again).
    pub(crate) fn unacked(&self) -> usize {
        self.batches.iter().map(|b| b.count).sum()
    }

    /// Removes the batches whose confirm delay ended by `now` (the caller has seen the
    /// connection healthy after `now`) and returns the last seq and the event count to
    /// acknowledge, or `None` when no batch is due yet.
    pub(crate) fn take_due(&mut self, now: Instant) -> Option<(i64, usize)> {
        let mut taken: Option<(i64, usize)> = None;
        while let Some(batch) = self.batches.front().copied() {
            if batch.due > now {
                break;
            }
            self.batches.pop_front();
            let count = taken.map_or(0, |(_, c)| c) + batch.count;
            taken = Some((batch.last_seq, count));
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn written(start: Instant, last_seq: i64, after_ms: u64) -> Written {
        Written {
            last_seq,
            count: 4,
            due: start + Duration::from_millis(after_ms),
        }
    }

    #[test]
    fn only_batches_whose_delay_ended_are_acknowledged_oldest_first() {
        let start = Instant::now();
        let mut window = Window::new(3);
        window.push(written(start, 4, 100));
        window.push(written(start, 8, 150));
        window.push(written(start, 12, 300));
        assert!(window.is_full());
        assert_eq!(window.take_due(start + Duration::from_millis(99)), None);
        assert_eq!(window.unacked(), 12);
        assert_eq!(
            window.take_due(start + Duration::from_millis(200)),
            Some((8, 8)),
            "the two due batches in one acknowledgement, the third still waits"
        );
        assert!(!window.is_full());
        assert_eq!(window.unacked(), 4);
        assert_eq!(window.next_due(), Some(start + Duration::from_millis(300)));
        assert_eq!(
            window.take_due(start + Duration::from_millis(300)),
            Some((12, 4))
        );
        assert!(window.is_empty());
        assert_eq!(window.next_due(), None);
    }

    #[test]
    fn a_window_holds_at_least_one_batch() {
        let start = Instant::now();
        let mut window = Window::new(0);
        assert!(!window.is_full());
        window.push(written(start, 1, 0));
        assert!(window.is_full());
    }
}
