//! The per-user sections of one scan: this scan's reads over the stored ones, for listed users
//! only, and how current each section is ([`Coverage`]), counted as the data is placed.
//!
//! A stored read this scan did not replace is placed by its standing under the rules: due
//! (pending), current, explained by the registration report (the methods of a user the
//! available report does not list, stored without items: current, as fresh as the report), or
//! excluded (mailbox data of a user who is now a guest, has no `mail`, or whose calendar the
//! delegated mode does not read: left out, as `scan` leaves them out). Otherwise a read no rule
//! calls due again would age into "pending" that no scan clears.

use super::coverage::Coverage;
use super::{is_stored, registration_key, FreshRead, KindReads, ReportRow, Sweep};
use crate::collect::per_user::{has_mailbox, CalendarReader, Kind, PerUserData};
use crate::snapshot::{PerUser, Unavailable, User, UserId, UserRegistrationDetails};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The per-user sections of one scan: fresh reads over stored ones, restricted to listed users.
pub(crate) struct Merged {
    pub data: PerUserData,
    /// Successful reads of this scan, to store.
    pub writes: Vec<FreshRead>,
    /// Users whose stored reads are forgotten (gone from a complete listing).
    pub deleted: Vec<String>,
    /// How current each section's data is.
    pub coverage: Vec<Coverage>,
}

/// What the rules make of a stored read this scan did not replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Not due: evaluated as it is.
    Current,
    /// Due and not read in this scan: evaluated as it is, counted pending.
    Due,
    /// Explained by the registration report: current, as fresh as the report.
    Explained,
    /// Not part of the section.
    Excluded,
}

/// The listed users, each with whether their mailbox is read.
type Listed = BTreeMap<UserId, bool>;

/// The standing of a user's stored read of one section.
type StandingOf<'a> = dyn Fn(&Sweep, &str) -> Standing + 'a;

/// What the rules need to place a user's stored reads: the listed users (with whether their
/// mailbox is read), the report's keys (`None` when it could not be read) and the calendar
/// reader.
struct Rules<'a> {
    listed: Listed,
    keys: Option<HashMap<&'a str, Box<str>>>,
    calendars: &'a CalendarReader,
}

impl<'a> Rules<'a> {
    fn new(
        users: &[User],
        registration: Option<&'a [UserRegistrationDetails]>,
        calendars: &'a CalendarReader,
    ) -> Self {
        let listed = users
            .iter()
            .map(|u| (u.id.clone(), has_mailbox(u)))
            .collect();
        let keys = registration.map(|rows| {
            rows.iter()
                .map(|row| (&*row.id, registration_key(row).into_boxed_str()))
                .collect()
        });
        Self {
            listed,
            keys,
            calendars,
        }
    }

    /// The standing of `user`'s stored read of `kind`.
    fn standing(&self, sweep: &Sweep, user: &str, kind: Kind) -> Standing {
        match kind {
            Kind::AuthMethods => methods_standing(sweep, self.keys.as_ref(), user),
            Kind::Calendar | Kind::Rules => {
                let read = self.listed.get(user) == Some(&true)
                    && (kind == Kind::Rules || self.calendars.reads(user));
                mailbox_standing(sweep, user, kind, read)
            }
        }
    }

    /// One of this scan's reads, to store.
    fn fresh_read(&self, user: &UserId, kind: Kind, now: DateTime<Utc>) -> FreshRead {
        let registration = match kind {
            Kind::AuthMethods => self.keys.as_ref().and_then(|k| k.get(&**user).cloned()),
            Kind::Calendar | Kind::Rules => None,
        };
        FreshRead {
            user_id: user.clone(),
            kind,
            read_at: now,
            registration,
        }
    }
}

/// Merges this scan's `fresh` reads with the stored ones of `sweep` for the `users` listed;
/// `registration` is the report's rows, `None` when it could not be read. The stored reads
/// are parsed from the state file one section at a time.
pub(crate) async fn merge(
    sweep: &mut Sweep,
    users: &[User],
    (registration, calendars): (Option<&[UserRegistrationDetails]>, &CalendarReader),
    fresh: PerUserData,
) -> Merged {
    let rules = Rules::new(users, registration, calendars);
    let fresh_reads = count_stored(&fresh.auth_methods)
        + count_stored(&fresh.calendar)
        + count_stored(&fresh.rules);
    let mut writes = Vec::with_capacity(fresh_reads);
    let now = sweep.now;
    let mut record = |user: &UserId, kind: Kind| writes.push(rules.fresh_read(user, kind, now));
    let rules_ref = &rules;
    let standing =
        |kind: Kind| move |sweep: &Sweep, user: &str| rules_ref.standing(sweep, user, kind);
    let (methods, calendar, mailbox_rules) = (
        standing(Kind::AuthMethods),
        standing(Kind::Calendar),
        standing(Kind::Rules),
    );
    let listed = &rules.listed;
    let stored = sweep.stored_of(Kind::AuthMethods).await;
    let (auth_methods, c1) = merge_kind(
        (sweep, stored),
        (listed, &methods),
        Kind::AuthMethods,
        fresh.auth_methods,
        &mut record,
    );
    let stored = sweep.stored_of(Kind::Calendar).await;
    let (calendar, c2) = merge_kind(
        (sweep, stored),
        (listed, &calendar),
        Kind::Calendar,
        fresh.calendar,
        &mut record,
    );
    let stored = sweep.stored_of(Kind::Rules).await;
    let (rules_data, c3) = merge_kind(
        (sweep, stored),
        (listed, &mailbox_rules),
        Kind::Rules,
        fresh.rules,
        &mut record,
    );
    Merged {
        data: PerUserData {
            auth_methods,
            calendar,
            rules: rules_data,
        },
        writes,
        deleted: forgotten(sweep, listed),
        coverage: vec![c1, c2, c3],
    }
}

/// How many reads of `section` are stored (see [`is_stored`]).
fn count_stored<T>(section: &PerUser<T>) -> usize {
    section.values().filter(|read| is_stored(read)).count()
}

/// Users with stored reads who are no longer listed.
fn forgotten(sweep: &Sweep, listed: &Listed) -> Vec<String> {
    sweep
        .stored
        .users()
        .filter(|user| !listed.contains_key(*user))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The standing of `user`'s stored methods; `keys` are the report's rows, `None` when it could
/// not be read.
fn methods_standing(sweep: &Sweep, keys: Option<&HashMap<&str, Box<str>>>, user: &str) -> Standing {
    let row = match keys {
        None => ReportRow::Unavailable,
        Some(keys) => keys
            .get(user)
            .map_or(ReportRow::Absent, |k| ReportRow::Listed(k)),
    };
    match (sweep.methods_due(user, row), row) {
        (true, _) => Standing::Due,
        (false, ReportRow::Absent) => Standing::Explained,
        (false, _) => Standing::Current,
    }
}

/// The standing of `user`'s stored mailbox data of `kind`; `read` says whether the sweep reads
/// it at all.
fn mailbox_standing(sweep: &Sweep, user: &str, kind: Kind, read: bool) -> Standing {
    match (read, sweep.mailbox_due(user, kind)) {
        (false, _) => Standing::Excluded,
        (true, Some(_)) => Standing::Due,
        (true, None) => Standing::Current,
    }
}

/// Merges one section in place: `fresh` keeps its listed users, and each user this scan did
/// not read takes their stored read by its standing (or is pending). The map is not rebuilt,
/// so a section of 100,000 users is never held twice during the merge (issue 10).
fn merge_kind<T: Serialize + DeserializeOwned>(
    (sweep, mut stored): (&Sweep, KindReads<T>),
    (listed, standing): (&Listed, &StandingOf<'_>),
    kind: Kind,
    mut fresh: PerUser<T>,
    record: &mut impl FnMut(&UserId, Kind),
) -> (PerUser<T>, Coverage) {
    let now = sweep.now;
    let mut coverage = Coverage::new(kind.name());
    for (user, read) in &fresh {
        if is_stored(read) {
            record(user, kind);
        }
    }
    fresh.retain(|user, _| listed.contains_key(user));
    for (user, result) in fresh.iter_mut() {
        match result {
            Err(Unavailable::NotCollected { .. }) => {
                *result = place_stored((sweep, &mut stored), user, kind, standing, &mut coverage);
            }
            read if is_stored(read) => coverage.current(now),
            _ => coverage.failed(),
        }
    }
    // Keyed by the listed user's id, shared rather than copied from the stored one.
    let stored_only: Vec<UserId> = sweep
        .stored
        .users_with(kind)
        .filter(|user| !fresh.contains_key(*user))
        .filter_map(|user| listed.get_key_value(user).map(|(id, _)| id.clone()))
        .collect();
    for user in stored_only {
        if standing(sweep, &user) != Standing::Excluded {
            let result = place_stored((sweep, &mut stored), &user, kind, standing, &mut coverage);
            fresh.insert(user, result);
        }
    }
    (fresh, coverage)
}

/// The stored read of `user`, parsed, counted by its standing; pending when none is stored;
/// failed when its text does not parse (a damaged row, or a state file that
/// could not be read at the merge).
fn place_stored<T: DeserializeOwned>(
    (sweep, stored): (&Sweep, &mut KindReads<T>),
    user: &str,
    kind: Kind,
    standing: &StandingOf<'_>,
    coverage: &mut Coverage,
) -> Result<Vec<T>, Unavailable> {
    let Some(read_at) = sweep.get(user, kind).map(super::Stored::read_at) else {
        coverage.pending(None);
        return Err(pending());
    };
    let parsed = stored.take(user).unwrap_or_else(|| {
        Err(Unavailable::Malformed {
            detail: "stored per-user read: not in the state file".to_owned(),
        })
    });
    if matches!(parsed, Err(Unavailable::Malformed { .. })) {
        coverage.failed();
        return parsed;
    }
    match standing(sweep, user) {
        Standing::Due | Standing::Excluded => coverage.pending(Some(read_at)),
        Standing::Current => coverage.current(read_at),
        Standing::Explained => coverage.current(sweep.now),
    }
    parsed
}

/// The reason of a due read the sweep had no time for in this scan.
pub(crate) fn pending() -> Unavailable {
    Unavailable::NotCollected {
        detail: "per-user sweep pending".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::state::per_user::PerUserRead;

    /// A stored read whose text does not parse fails that user's section and counts as failed,
    /// never as current data; the user's other stored reads are placed as usual.
    #[tokio::test]
    async fn a_stored_read_that_does_not_parse_counts_as_failed() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let read = |kind: &str, items: &str| PerUserRead {
            user_id: "u".to_owned(),
            kind: kind.to_owned(),
            read_at: now - chrono::Duration::hours(1),
            registration: None,
            items: items.to_owned(),
        };
        let reads = vec![read("rules", "damaged"), read("calendar", "[]")];
        let week = std::time::Duration::from_secs(7 * 24 * 3600);
        let mut sweep = Sweep::new(reads, now, week, tokio::time::Instant::now());
        let user = User {
            id: "u".into(),
            mail: Some("u@contoso.com".into()),
            ..User::default()
        };
        let calendars = CalendarReader::Application;
        let merged = merge(
            &mut sweep,
            &[user],
            (None, &calendars),
            PerUserData::default(),
        )
        .await;
        assert!(matches!(
            merged.data.rules["u"],
            Err(Unavailable::Malformed { .. })
        ));
        assert_eq!(merged.data.calendar["u"].as_ref().unwrap().len(), 0);
        let counts: Vec<(&str, usize, usize, usize)> = merged
            .coverage
            .iter()
            .map(|c| (c.section, c.current, c.pending, c.failed))
            .collect();
        assert_eq!(
            counts,
            [
                ("auth_methods", 0, 0, 0),
                ("calendar", 1, 0, 0),
                ("rules", 0, 0, 1)
            ]
        );
    }
}
