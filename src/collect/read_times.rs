//! When each section of a snapshot was read ([`TenantSnapshot::read_at`]): what this scan
//! read carries the scan's start (the data is at least that fresh), a swept per-user section
//! the oldest stored read it holds (from the sweep's [`Coverage`]).

use super::per_user::Kind;
use super::sweep::Coverage;
use crate::snapshot::{SectionName, TenantSnapshot};
use chrono::{DateTime, Utc};

/// Fills `snapshot.read_at` for every section that arrived.
pub(crate) fn stamp(snapshot: &mut TenantSnapshot, started: DateTime<Utc>, coverage: &[Coverage]) {
    for section in snapshot.arrived() {
        let swept = coverage
            .iter()
            .find(|c| section_of(c.section) == Some(section))
            .and_then(|c| c.oldest);
        let read = swept.map_or(started, |oldest| oldest.min(started));
        snapshot.read_at.insert(section, read);
    }
}

fn section_of(stored_name: &str) -> Option<SectionName> {
    match Kind::from_name(stored_name)? {
        Kind::AuthMethods => Some(SectionName::AuthMethods),
        Kind::Calendar => Some(SectionName::CalendarPermissions),
        Kind::Rules => Some(SectionName::MessageRules),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_swept_section_is_as_old_as_its_oldest_stored_read() {
        let started = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut snapshot = TenantSnapshot::empty("t", "not collected");
        snapshot.users = Ok(vec![]);
        snapshot.message_rules = Ok(Default::default());
        let week_ago = started - Duration::days(7);
        let coverage = [Coverage {
            section: "rules",
            current: 1,
            pending: 0,
            failed: 0,
            oldest: Some(week_ago),
        }];
        stamp(&mut snapshot, started, &coverage);
        assert_eq!(snapshot.read_at[&SectionName::Users], started);
        assert_eq!(snapshot.read_at[&SectionName::MessageRules], week_ago);
        assert!(!snapshot.read_at.contains_key(&SectionName::Domains));
        let oldest = snapshot.oldest_read(crate::checks::inputs(
            crate::findings::FindingId::RuleForwardsExternal,
        ));
        assert_eq!(oldest, Some(week_ago));
    }
}
