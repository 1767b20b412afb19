//! The stored per-user reads the sweep starts from: one entry per user, sorted by user id, each
//! with a slot per kind of read.
//!
//! A sorted list rather than a hash table, and the read time as milliseconds: at 100,000 users
//! the table was 21 MB at the second cycle's peak of memory; the list is computed at about 14
//! (136 bytes a user: not profiled separately, the next heap profile will show it) (issue 10).

use super::Kind;
use crate::state::per_user::PerUserRead;
use chrono::{DateTime, Utc};

/// One stored read.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    /// When it was read, in milliseconds since the epoch.
    read_at_ms: i64,
    /// For methods: the registration-report key the read was made against.
    pub(super) registration: Option<Box<str>>,
    /// The items as stored (JSON), emptied once the merge has parsed them.
    pub(super) items: Box<str>,
}

impl Stored {
    /// When it was read (the epoch for a time the state file cannot hold: then it is aged).
    pub(super) fn read_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.read_at_ms).unwrap_or_default()
    }
}

/// A user's stored reads, one slot per [`Kind`].
type Slots = [Option<Stored>; 3];

/// The slot of `kind`.
fn slot(kind: Kind) -> usize {
    match kind {
        Kind::AuthMethods => 0,
        Kind::Calendar => 1,
        Kind::Rules => 2,
    }
}

/// Every user's stored reads, sorted by user id.
#[derive(Debug, Default)]
pub(super) struct StoredReads(Vec<(Box<str>, Slots)>);

impl StoredReads {
    /// The reads of the state file (of an unknown kind: skipped).
    pub(super) fn new(mut reads: Vec<PerUserRead>) -> Self {
        reads.sort_unstable_by(|a, b| a.user_id.cmp(&b.user_id));
        let users = 1 + reads
            .windows(2)
            .filter(|pair| matches!(pair, [a, b] if a.user_id != b.user_id))
            .count();
        let mut list: Vec<(Box<str>, Slots)> = Vec::with_capacity(users.min(reads.len()));
        for read in reads {
            let Some(kind) = Kind::from_name(&read.kind) else {
                continue;
            };
            if list.last().map(|(user, _)| &**user) != Some(read.user_id.as_str()) {
                list.push((read.user_id.into_boxed_str(), Slots::default()));
            }
            let place = list
                .last_mut()
                .and_then(|(_, slots)| slots.get_mut(slot(kind)));
            if let Some(place) = place {
                *place = Some(Stored {
                    read_at_ms: read.read_at.timestamp_millis(),
                    registration: read.registration.map(String::into_boxed_str),
                    items: read.items.into_boxed_str(),
                });
            }
        }
        Self(list)
    }

    fn position(&self, user: &str) -> Option<usize> {
        self.0.binary_search_by(|(id, _)| (**id).cmp(user)).ok()
    }

    /// The stored read of `user` of `kind`.
    pub(super) fn get(&self, user: &str, kind: Kind) -> Option<&Stored> {
        let (_, slots) = self.0.get(self.position(user)?)?;
        slots.get(slot(kind))?.as_ref()
    }

    /// The same, to change.
    pub(super) fn get_mut(&mut self, user: &str, kind: Kind) -> Option<&mut Stored> {
        let position = self.position(user)?;
        let (_, slots) = self.0.get_mut(position)?;
        slots.get_mut(slot(kind))?.as_mut()
    }

    /// True when no read is stored.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `user` has a stored read.
    pub(super) fn contains(&self, user: &str) -> bool {
        self.position(user).is_some()
    }

    /// Every user with a stored read, in id order.
    pub(super) fn users(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(user, _)| &**user)
    }

    /// The users with a stored read of `kind`, in id order.
    pub(super) fn users_with(&self, kind: Kind) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(_, slots)| slots.get(slot(kind)).is_some_and(Option::is_some))
            .map(|(user, _)| &**user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(user: &str, kind: &str, items: &str) -> PerUserRead {
        PerUserRead {
            user_id: user.to_owned(),
            kind: kind.to_owned(),
            read_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            registration: (kind == "auth_methods").then(|| "fido2|x".to_owned()),
            items: items.to_owned(),
        }
    }

    #[test]
    fn reads_are_found_by_user_and_kind_in_any_order() {
        let stored = StoredReads::new(vec![
            read("u2", "rules", "[2]"),
            read("u1", "calendar", "[1]"),
            read("u2", "auth_methods", "[3]"),
            read("u0", "unknown_kind", "[9]"),
            read("u1", "rules", "[4]"),
        ]);
        assert_eq!(stored.users().collect::<Vec<_>>(), ["u1", "u2"]);
        assert_eq!(&*stored.get("u2", Kind::Rules).unwrap().items, "[2]");
        assert_eq!(&*stored.get("u1", Kind::Calendar).unwrap().items, "[1]");
        let methods = stored.get("u2", Kind::AuthMethods).unwrap();
        assert_eq!(methods.registration.as_deref(), Some("fido2|x"));
        assert_eq!(methods.read_at().timestamp_millis(), 1_700_000_000_123);
        assert!(stored.get("u1", Kind::AuthMethods).is_none());
        assert!(stored.get("u0", Kind::Rules).is_none() && stored.get("u3", Kind::Rules).is_none());
        assert_eq!(
            stored.users_with(Kind::Rules).collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        assert_eq!(
            stored.users_with(Kind::AuthMethods).collect::<Vec<_>>(),
            ["u2"]
        );
        assert!(StoredReads::new(Vec::new()).users().next().is_none());
    }
}
