//! The daemon's per-user sweep (issue 10): which users' authentication methods, calendar
//! permissions and inbox rules to read in this scan, and the snapshot's per-user sections
//! built from this scan's reads merged with the latest stored read of every other user.
//!
//! Rules. Methods are read again when the user's registration-report row changed
//! (`methodsRegistered`, `lastUpdatedDateTime`), when the user is new, when stored methods are
//! no longer explained by the report (the user left the pre-filtered report), or when the
//! stored read is older than `scan.per_user_max_age`; with the report unavailable, by age
//! alone. Mailbox reads follow the age rule, never-read users first, then the oldest. A read
//! Graph answered with a 404 ("cannot be read": a mailbox not yet provisioned or on premises)
//! ages seven times faster, a day at the default: a new user's mailbox is not left unread for
//! a week because Exchange had not finished creating it.
//!
//! Pending means due and not yet read; how stored reads the rules no longer call due are
//! placed is [`merge`]'s.
//!
//! Evidence. A user is evaluated on their latest successful read; a read that failed this
//! scan is reported as failed (resolving nothing for that user) and leaves the stored read for
//! the next scan. A user that is due but not read before the sweep's time ran out keeps their
//! stored data, or, never read, is "not collected" (nothing of theirs resolves). Stored reads of
//! users gone from a complete directory listing are forgotten; a failed listing forgets none.

mod coverage;
mod merge;
mod stored;

use super::held_report::ReportRows;
use super::per_user::Kind;
use crate::snapshot::{Unavailable, UserId, UserRegistrationDetails};
use crate::state::per_user::{PerUserHead, StoredItems};
use crate::state::Store;
use chrono::{DateTime, Utc};
pub use coverage::Coverage;
pub(crate) use merge::{merge, pending};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stored::{KindReads, Stored, StoredReads, StoredTexts};
use tokio::time::Instant;

/// What the registration report says about one user.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReportRow<'a> {
    /// Listed with a relevant method; the row's key.
    Listed(&'a str),
    /// Not in the (pre-filtered) report: no FIDO2, Windows Hello or TAP registered.
    Absent,
    /// The report could not be read.
    Unavailable,
}

/// The sweep's view of one tenant: stored reads, the scan's `now`, the age bound and when the
/// sweep must stop sending reads.
#[derive(Debug)]
pub struct Sweep {
    stored: StoredReads,
    texts: StoredTexts,
    now: DateTime<Utc>,
    max_age: chrono::Duration,
    until: Instant,
    /// The report this sweep continues from, instead of reading it ([`super::held_report`]).
    report: Option<ReportRows>,
}

/// The key of a registration-report row: its sorted method labels and `lastUpdatedDateTime`.
pub(crate) fn registration_key(row: &UserRegistrationDetails) -> String {
    let mut methods: Vec<String> = row
        .methods_registered
        .iter()
        .map(|m| m.to_ascii_lowercase())
        .collect();
    methods.sort();
    let updated = row.last_updated_date_time.as_deref().unwrap_or_default();
    format!("{}|{updated}", methods.join(","))
}

impl Sweep {
    /// A sweep over the stored reads of `tenant` in `store` (`heads`, their items' texts left
    /// in the state file until the merge) at `now`; reads stop being sent at `until`.
    pub fn over_store(
        heads: Vec<PerUserHead>,
        (store, tenant): (Store, &str),
        now: DateTime<Utc>,
        (max_age, until): (std::time::Duration, Instant),
    ) -> Self {
        let texts = StoredTexts::Store {
            store,
            tenant: tenant.to_owned(),
        };
        Self::with(StoredReads::new(heads), texts, now, (max_age, until))
    }

    /// A sweep over `reads`, held whole, at `now`; reads stop being sent at `until` (tests:
    /// the daemon's sweep is [`Sweep::over_store`]).
    #[cfg(test)]
    pub fn new(
        reads: Vec<crate::state::per_user::PerUserRead>,
        now: DateTime<Utc>,
        max_age: std::time::Duration,
        until: Instant,
    ) -> Self {
        let texts = StoredTexts::held(&reads);
        let heads = reads
            .iter()
            .map(crate::state::per_user::PerUserRead::head)
            .collect();
        Self::with(StoredReads::new(heads), texts, now, (max_age, until))
    }

    fn with(
        stored: StoredReads,
        texts: StoredTexts,
        now: DateTime<Utc>,
        (max_age, until): (std::time::Duration, Instant),
    ) -> Self {
        Self {
            stored,
            texts,
            now,
            max_age: chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX),
            until,
            report: None,
        }
    }

    /// The same, continuing from a held registration report.
    #[must_use]
    pub fn continuing_from(mut self, report: Option<ReportRows>) -> Self {
        self.report = report;
        self
    }

    /// The held report this sweep continues from.
    pub(crate) fn held_report(&self) -> Option<ReportRows> {
        self.report.clone()
    }

    /// When reads stop being sent in this scan.
    pub(crate) fn until(&self) -> Instant {
        self.until
    }

    /// The stored reads of `kind`, parsed, for the merge: read one kind at a time, parsed
    /// from the state file's rows without holding their texts (issue 10).
    async fn stored_of<T: DeserializeOwned + Send + 'static>(
        &mut self,
        kind: Kind,
    ) -> KindReads<T> {
        self.texts.parsed(kind).await
    }

    fn get(&self, user: &str, kind: Kind) -> Option<&Stored> {
        self.stored.get(user, kind)
    }

    /// True when a stored read is due by age; a damaged one (its items neither a list nor
    /// "cannot be read") always is: it is of no use until read again.
    fn is_aged(&self, stored: &Stored) -> bool {
        let not_readable = stored.items == StoredItems::NotReadable;
        stored.items == StoredItems::Unknown
            || self.is_older_than_bound(stored.read_at(), not_readable)
    }

    /// True when data read at `read_at` is due again: older than `scan.per_user_max_age`, or
    /// than a seventh of it for a read Graph answered "cannot be read". A read stamped ahead
    /// of the clock (the clock was set back since) is due too: its age is unknown, and left
    /// alone it would stay current until the clock caught up.
    fn is_older_than_bound(&self, read_at: DateTime<Utc>, not_readable: bool) -> bool {
        let bound = if not_readable {
            self.max_age / NOT_READABLE_AGE_DIVISOR
        } else {
            self.max_age
        };
        let age = self.now.signed_duration_since(read_at);
        age < chrono::Duration::zero() || age >= bound
    }

    /// When a mailbox read of `user` is due: `None` when the stored read is current, else the
    /// time of the stored read (`None` inside: never read), for ordering.
    pub(crate) fn mailbox_due(&self, user: &str, kind: Kind) -> Option<Option<DateTime<Utc>>> {
        match self.get(user, kind) {
            None => Some(None),
            Some(stored) if self.is_aged(stored) => Some(Some(stored.read_at())),
            Some(_) => None,
        }
    }

    /// True when `user`'s methods must be read in this scan.
    pub(crate) fn methods_due(&self, user: &str, row: ReportRow<'_>) -> bool {
        let stored = self.get(user, Kind::AuthMethods);
        match (row, stored) {
            (ReportRow::Listed(_) | ReportRow::Unavailable, None) => true,
            (ReportRow::Listed(key), Some(s)) => {
                s.registration.as_deref() != Some(key) || self.is_aged(s)
            }
            (ReportRow::Unavailable, Some(s)) => self.is_aged(s),
            // Stored methods the report no longer explains; or a 404, which explains nothing
            // and is read again once it ages (else an instance it left open stays open).
            (ReportRow::Absent, s) => s.is_some_and(|s| match s.items {
                StoredItems::Some | StoredItems::Unknown => true,
                StoredItems::NotReadable => self.is_aged(s),
                StoredItems::Empty => false,
            }),
        }
    }

    /// True when `user` was listed at the last scan whose reads were stored: they have a stored
    /// read (the reads of users gone from a complete listing are forgotten). With nothing
    /// stored (the tenant's first sweep) nobody is known to be gone, so everyone counts.
    pub(crate) fn known_user(&self, user: &str) -> bool {
        self.stored.is_empty() || self.stored.contains(user)
    }

    /// Users whose stored methods are due when the report does not list them (its silence
    /// about them is checked by a read).
    pub(crate) fn users_with_stored_methods(&self) -> impl Iterator<Item = &str> {
        self.stored
            .users_with(Kind::AuthMethods)
            .filter(|user| self.methods_due(user, ReportRow::Absent))
    }
}

/// How much faster than other reads a "cannot be read" answer (a 404 Graph documents for a
/// mailbox that is not enabled for REST, `MailboxNotEnabledForRESTAPI`) ages.
const NOT_READABLE_AGE_DIVISOR: i32 = 7;

/// True when a read is stored: its items, or a 404 Graph documents as "cannot be read".
fn is_stored<T>(read: &Result<Vec<T>, Unavailable>) -> bool {
    matches!(read, Ok(_) | Err(Unavailable::NotReadable { .. }))
}

/// The stored form of a read: the items as a JSON array, or `{"not_readable": reason}` for a
/// 404 Graph documents as "cannot be read" (kept, so it follows the age rule too); `None` for
/// failures, which are not stored.
pub(crate) fn stored_form<T: Serialize>(read: &Result<Vec<T>, Unavailable>) -> Option<String> {
    match read {
        Ok(items) => serde_json::to_string(items).ok(),
        Err(Unavailable::NotReadable { reason }) => {
            Some(serde_json::json!({ "not_readable": reason }).to_string())
        }
        Err(_) => None,
    }
}

/// One successful read of this scan, to store. Its items are not copied here: they are in the
/// snapshot, and are written from there ([`stored_form`]), so a first sweep of 100,000 users
/// does not hold every read twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshRead {
    /// User object id, shared with the snapshot (a first sweep of 100,000 users makes about
    /// 190,000 reads).
    pub user_id: UserId,
    /// Which read.
    pub(crate) kind: Kind,
    /// When it was read (the scan's `now`).
    pub read_at: DateTime<Utc>,
    /// For methods: the registration-report key the read was made against.
    pub registration: Option<Box<str>>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::state::per_user::PerUserRead;

    fn sweep_over(items: &str, age_hours: i64) -> Sweep {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let read = PerUserRead {
            user_id: "u".to_owned(),
            kind: "auth_methods".to_owned(),
            read_at: now - chrono::Duration::hours(age_hours),
            registration: Some("fido2|x".to_owned()),
            items: items.to_owned(),
        };
        let week = std::time::Duration::from_secs(7 * 24 * 3600);
        Sweep::new(vec![read], now, week, Instant::now())
    }

    #[test]
    fn a_user_the_report_no_longer_lists_is_read_again_only_when_stored_data_needs_it() {
        let not_readable = r#"{"not_readable":"404"}"#;
        assert!(sweep_over("[{\"id\":\"m\"}]", 1).methods_due("u", ReportRow::Absent));
        assert!(!sweep_over("[]", 1000).methods_due("u", ReportRow::Absent));
        assert!(!sweep_over(not_readable, 1).methods_due("u", ReportRow::Absent));
        assert!(
            sweep_over(not_readable, 25).methods_due("u", ReportRow::Absent),
            "a 404 ages in a seventh of the bound"
        );
        assert!(!sweep_over("[]", 1).methods_due("nobody", ReportRow::Absent));
        assert!(
            sweep_over("damaged", 1).methods_due("u", ReportRow::Absent),
            "a damaged read is read again"
        );
        assert!(sweep_over("damaged", 1).methods_due("u", ReportRow::Listed("fido2|x")));
        assert!(!sweep_over("[]", 1).methods_due("u", ReportRow::Listed("fido2|x")));
    }

    #[test]
    fn a_read_stamped_ahead_of_the_clock_is_due_again() {
        let ahead = sweep_over("[]", -24);
        assert!(ahead.methods_due("u", ReportRow::Listed("fido2|x")));
        assert!(ahead.mailbox_due("u", Kind::AuthMethods).is_some());
        assert!(!sweep_over("[]", 0).methods_due("u", ReportRow::Listed("fido2|x")));
    }
}
