//! How current each per-user section is after a scan ([`Coverage`]): the users evaluated on
//! data the rules do not call due, those due and not yet read ("pending"), and those whose read
//! failed; the `m365_posture_sweep_users` and oldest-read gauges are set from it. The merge
//! ([`super::merge`]) counts each user as it places their data.

use chrono::{DateTime, Utc};

/// How current one per-user section is after a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// `auth_methods`, `calendar` or `rules`.
    pub section: &'static str,
    /// Users evaluated on data the rules do not call due.
    pub current: usize,
    /// Users due for a read the sweep has not made (no data, or stored data the rules call
    /// due: aged, a changed report row, methods the report no longer explains).
    pub pending: usize,
    /// Users whose read failed in this scan.
    pub failed: usize,
    /// When the oldest data the checks evaluate was read.
    pub oldest: Option<DateTime<Utc>>,
}

impl Coverage {
    /// No user counted yet.
    pub(super) fn new(section: &'static str) -> Self {
        Self {
            section,
            current: 0,
            pending: 0,
            failed: 0,
            oldest: None,
        }
    }

    /// A user evaluated on data read at `read_at`, not due.
    pub(super) fn current(&mut self, read_at: DateTime<Utc>) {
        self.current += 1;
        self.saw(Some(read_at));
    }

    /// A user due and not read in this scan; `read_at` of the stored data evaluated, if any.
    pub(super) fn pending(&mut self, read_at: Option<DateTime<Utc>>) {
        self.pending += 1;
        self.saw(read_at);
    }

    /// A user whose read failed in this scan.
    pub(super) fn failed(&mut self) {
        self.failed += 1;
    }

    fn saw(&mut self, read_at: Option<DateTime<Utc>>) {
        if let Some(at) = read_at {
            self.oldest = Some(self.oldest.map_or(at, |oldest| oldest.min(at)));
        }
    }
}
