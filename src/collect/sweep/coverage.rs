//! How current each per-user section is after a scan ([`Coverage`]): the users evaluated on
//! data younger than its bound, those due and not yet read, and those whose read failed; the
//! `m365_posture_sweep_users` and oldest-read gauges are set from it.

use super::{Kind, Sweep};
use crate::snapshot::{PerUser, Unavailable};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// How current one per-user section is after a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// `auth_methods`, `calendar` or `rules`.
    pub section: &'static str,
    /// Users evaluated on data younger than `scan.per_user_max_age`.
    pub current: usize,
    /// Users due for a read the sweep has not reached (no data, or aged stored data).
    pub pending: usize,
    /// Users whose read failed in this scan.
    pub failed: usize,
    /// When the oldest data the checks evaluate was read.
    pub oldest: Option<DateTime<Utc>>,
}

impl Sweep {
    pub(super) fn coverage<T>(
        &self,
        kind: Kind,
        merged: &PerUser<T>,
        fresh: &BTreeSet<&str>,
    ) -> Coverage {
        let mut coverage = Coverage {
            section: kind.name(),
            current: 0,
            pending: 0,
            failed: 0,
            oldest: None,
        };
        for (user, result) in merged {
            let read_at = if fresh.contains(&**user) {
                Some(self.now)
            } else {
                match (result, self.get(user, kind)) {
                    (Err(Unavailable::NotCollected { .. }), _) => None,
                    (Err(Unavailable::NotReadable { .. }) | Ok(_), Some(s)) => Some(s.read_at()),
                    _ => {
                        coverage.failed += 1;
                        continue;
                    }
                }
            };
            let not_readable = matches!(result, Err(Unavailable::NotReadable { .. }));
            match read_at {
                Some(at) if !self.is_older_than_bound(at, not_readable) => coverage.current += 1,
                _ => coverage.pending += 1,
            }
            if let Some(at) = read_at {
                coverage.oldest = Some(coverage.oldest.map_or(at, |o| o.min(at)));
            }
        }
        coverage
    }
}
