//! How far one tenant's collection has come, for the `scan` command's progress line on a
//! terminal: users listed, per-user reads taken from the queues and reads finished. Counted
//! by collection as it goes (relaxed atomics: a progress line needs no ordering).

use std::sync::atomic::{AtomicU64, Ordering};

/// Progress counters of one tenant's collection.
#[derive(Debug, Default)]
pub struct ScanProgress {
    users_listed: AtomicU64,
    reads_taken: AtomicU64,
    reads_done: AtomicU64,
}

/// A reading of [`ScanProgress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProgressCounts {
    /// Users listed so far.
    pub users_listed: u64,
    /// Per-user reads finished (successfully or not).
    pub reads_done: u64,
    /// Per-user reads taken from the queues and not finished yet.
    pub reads_waiting: u64,
}

impl ScanProgress {
    /// `n` more users listed.
    pub fn users_listed(&self, n: usize) {
        self.users_listed.fetch_add(as_u64(n), Ordering::Relaxed);
    }

    /// `n` per-user reads taken from a queue.
    pub fn reads_taken(&self, n: usize) {
        self.reads_taken.fetch_add(as_u64(n), Ordering::Relaxed);
    }

    /// `n` per-user reads finished.
    pub fn reads_done(&self, n: usize) {
        self.reads_done.fetch_add(as_u64(n), Ordering::Relaxed);
    }

    /// The counts now.
    pub fn counts(&self) -> ProgressCounts {
        let done = self.reads_done.load(Ordering::Relaxed);
        ProgressCounts {
            users_listed: self.users_listed.load(Ordering::Relaxed),
            reads_done: done,
            reads_waiting: self
                .reads_taken
                .load(Ordering::Relaxed)
                .saturating_sub(done),
        }
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl std::fmt::Display for ProgressCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users listed, {} per-user reads done, {} in flight",
            self.users_listed, self.reads_done, self.reads_waiting
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_reads_are_taken_minus_done() {
        let progress = ScanProgress::default();
        progress.users_listed(999);
        progress.reads_taken(20);
        progress.reads_done(5);
        let counts = progress.counts();
        assert_eq!(counts.reads_waiting, 15);
        assert_eq!(
            counts.to_string(),
            "999 users listed, 5 per-user reads done, 15 in flight"
        );
    }
}
