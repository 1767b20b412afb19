//! The stored per-user reads the sweep starts from: one entry per user, sorted by user id, each
//! with a slot per kind of read; and their items' texts, read from the state file one kind
//! at a time when the merge places them ([`StoredTexts`]).
//!
//! A sorted list rather than a hash table, and the read time as milliseconds: at 100,000 users
//! the table was 21 MB at the second cycle's peak of memory. The texts are not held through
//! the scan: at 100,000 users they were 30 MB of the 141.7 MB heap peak of a continuation scan,
//! and the list with them 12 more (heaptrack, BENCHMARKS.md "2026-12-07, evening"; issue 10).

use super::Kind;
use crate::state::per_user::{PerUserHead, PerUserRead, StoredItems};
use crate::state::Store;
use chrono::{DateTime, Utc};

/// One stored read.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    /// When it was read, in milliseconds since the epoch.
    read_at_ms: i64,
    /// For methods: the registration-report key the read was made against.
    pub(super) registration: Option<Box<str>>,
    /// What its items are (the text stays in the state file).
    pub(super) items: StoredItems,
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
    pub(super) fn new(mut reads: Vec<PerUserHead>) -> Self {
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
                    items: read.items,
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

/// Where the merge reads the stored items' texts from.
pub(crate) enum StoredTexts {
    /// The state file, for one tenant.
    Store {
        /// The state file.
        store: Store,
        /// The tenant's name.
        tenant: String,
    },
    /// Held with the reads (a sweep built from whole reads): `(kind, user, items)`.
    Held(Vec<(Kind, Box<str>, Box<str>)>),
}

impl std::fmt::Debug for StoredTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store { tenant, .. } => write!(f, "StoredTexts::Store({tenant})"),
            Self::Held(held) => write!(f, "StoredTexts::Held({} texts)", held.len()),
        }
    }
}

impl StoredTexts {
    /// The texts of `reads`, held.
    pub(super) fn held(reads: &[PerUserRead]) -> Self {
        let texts = reads
            .iter()
            .filter_map(|read| {
                let kind = Kind::from_name(&read.kind)?;
                Some((
                    kind,
                    read.user_id.as_str().into(),
                    read.items.as_str().into(),
                ))
            })
            .collect();
        Self::Held(texts)
    }

    /// The texts of every stored read of `kind`. A state file that cannot be read gives none:
    /// each stored read placed then fails to parse, and its user's data counts as failed.
    pub(super) async fn of(&mut self, kind: Kind) -> KindTexts {
        match self {
            Self::Held(held) => {
                let (texts, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(held).into_iter().partition(|t| t.0 == kind);
                *held = rest;
                KindTexts::new(texts.into_iter().map(|(_, u, t)| (u, t)).collect())
            }
            Self::Store { store, tenant } => {
                let (store, name) = (store.clone(), tenant.clone());
                let read = move || store.load_per_user_items(&name, kind.name());
                let rows = match tokio::task::spawn_blocking(read).await {
                    Ok(Ok(rows)) => rows,
                    Ok(Err(err)) => {
                        tracing::warn!(tenant = %tenant, error = %err, "Cannot read stored per-user data");
                        Vec::new()
                    }
                    Err(err) => {
                        tracing::warn!(tenant = %tenant, error = %err, "Cannot read stored per-user data");
                        Vec::new()
                    }
                };
                let texts = rows
                    .into_iter()
                    .map(|(user, items)| (user.into_boxed_str(), items.into_boxed_str()))
                    .collect();
                KindTexts::new(texts)
            }
        }
    }
}

/// The stored texts of one kind, by user; each is taken out as it is parsed.
pub(super) struct KindTexts(Vec<(Box<str>, Box<str>)>);

impl KindTexts {
    fn new(mut texts: Vec<(Box<str>, Box<str>)>) -> Self {
        texts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Self(texts)
    }

    /// The text of `user`'s read, taken out (its memory freed once parsed).
    pub(super) fn take(&mut self, user: &str) -> Option<Box<str>> {
        let position = self.0.binary_search_by(|(u, _)| (**u).cmp(user)).ok()?;
        self.0.get_mut(position).map(|(_, t)| std::mem::take(t))
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
        let reads = [
            read("u2", "rules", "[2]"),
            read("u1", "calendar", "[]"),
            read("u2", "auth_methods", r#"{"not_readable":"404"}"#),
            read("u0", "unknown_kind", "[9]"),
            read("u1", "rules", "[4]"),
        ];
        let stored = StoredReads::new(reads.iter().map(PerUserRead::head).collect());
        assert_eq!(stored.users().collect::<Vec<_>>(), ["u1", "u2"]);
        assert_eq!(
            stored.get("u2", Kind::Rules).unwrap().items,
            StoredItems::Some
        );
        assert_eq!(
            stored.get("u1", Kind::Calendar).unwrap().items,
            StoredItems::Empty
        );
        let methods = stored.get("u2", Kind::AuthMethods).unwrap();
        assert_eq!(methods.items, StoredItems::NotReadable);
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

    #[tokio::test]
    async fn texts_come_one_kind_at_a_time_and_are_taken_once() {
        let reads = [
            read("u2", "rules", "[2]"),
            read("u1", "calendar", "[1]"),
            read("u1", "rules", "[4]"),
            read("u0", "unknown_kind", "[9]"),
        ];
        let mut texts = StoredTexts::held(&reads);
        let mut rules = texts.of(Kind::Rules).await;
        assert_eq!(rules.take("u2").as_deref(), Some("[2]"));
        assert_eq!(rules.take("u1").as_deref(), Some("[4]"));
        assert_eq!(rules.take("u1").as_deref(), Some(""), "taken once");
        assert_eq!(rules.take("u3"), None);
        assert!(
            texts.of(Kind::Rules).await.take("u2").is_none(),
            "handed out"
        );
        let mut calendar = texts.of(Kind::Calendar).await;
        assert_eq!(calendar.take("u1").as_deref(), Some("[1]"));

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        store.save_per_user_reads("t", reads.clone(), &[]).unwrap();
        let mut texts = StoredTexts::Store {
            store,
            tenant: "t".into(),
        };
        let mut rules = texts.of(Kind::Rules).await;
        assert_eq!(rules.take("u1").as_deref(), Some("[4]"));
        assert_eq!(rules.take("u2").as_deref(), Some("[2]"));
        assert!(texts.of(Kind::AuthMethods).await.take("u1").is_none());
    }
}
