//! The stored per-user reads the sweep starts from: one entry per user, sorted by user id, each
//! with a slot per kind of read; and their items, parsed from the state file's rows one kind
//! at a time when the merge places them ([`StoredTexts`]), no text held.
//!
//! A sorted list rather than a hash table, and the read time as milliseconds: at 100,000 users
//! the table was 21 MB at the second cycle's peak of memory. The texts are not held through
//! the scan: at 100,000 users they were 30 MB of the 141.7 MB heap peak of a continuation scan,
//! and the list with them 12 more (heaptrack, BENCHMARKS.md "2026-12-07, evening"; issue 10).

use super::Kind;
use crate::snapshot::Unavailable;
use crate::state::per_user::{PerUserHead, StoredItems};
use crate::state::Store;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

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
    /// Held with the reads (a sweep built from whole reads, in tests): `(kind, user, items)`.
    #[cfg(test)]
    Held(Vec<(Kind, Box<str>, Box<str>)>),
}

impl std::fmt::Debug for StoredTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store { tenant, .. } => write!(f, "StoredTexts::Store({tenant})"),
            #[cfg(test)]
            Self::Held(held) => write!(f, "StoredTexts::Held({} texts)", held.len()),
        }
    }
}

impl StoredTexts {
    /// The texts of `reads`, held.
    #[cfg(test)]
    pub(super) fn held(reads: &[crate::state::per_user::PerUserRead]) -> Self {
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

    /// Every stored read of `kind`, parsed: in blocking tasks a chunk of rows at a time, from
    /// the row's own text, so that no text is copied or held (issue 10). A state file that
    /// cannot be read gives none: each stored read placed then fails, and counts as failed.
    pub(super) async fn parsed<T: DeserializeOwned + Send + 'static>(
        &mut self,
        kind: Kind,
    ) -> KindReads<T> {
        match self {
            #[cfg(test)]
            Self::Held(held) => {
                let (texts, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(held).into_iter().partition(|t| t.0 == kind);
                *held = rest;
                let reads = texts.into_iter().map(|(_, user, text)| {
                    let parsed = parse_stored(&text);
                    (user, Some(parsed))
                });
                KindReads::new(reads.collect())
            }
            Self::Store { store, tenant } => {
                let mut reads = Vec::new();
                loop {
                    let after = reads.last().map(|(user, _): &(Box<str>, _)| user.clone());
                    match parse_chunk(store, tenant, kind, after).await {
                        Ok(chunk) => {
                            let last_chunk = chunk.len() < CHUNK;
                            reads.extend(chunk);
                            if last_chunk {
                                break;
                            }
                        }
                        Err(err) => {
                            tracing::warn!(tenant = %tenant, error = %err, "Cannot read stored per-user data");
                            reads.clear();
                            break;
                        }
                    }
                }
                KindReads::new(reads)
            }
        }
    }
}

/// Stored reads parsed a chunk at a time: the state file's lock is held for one chunk's rows,
/// not for a whole section's (about 100,000 at 100,000 users).
const CHUNK: usize = 1_000;

/// The next chunk of stored reads of `kind` after the user `after`, parsed in a blocking task
/// from the rows' own texts.
async fn parse_chunk<T: DeserializeOwned + Send + 'static>(
    store: &Store,
    tenant: &str,
    kind: Kind,
    after: Option<Box<str>>,
) -> Result<Vec<(Box<str>, Option<Parsed<T>>)>, String> {
    let (store, tenant) = (store.clone(), tenant.to_owned());
    let read = move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        let visit =
            |user: &str, text: &str| chunk.push((Box::from(user), Some(parse_stored(text))));
        let position = (after.as_deref(), CHUNK);
        store.visit_per_user_items((&tenant, kind.name()), position, visit)?;
        Ok::<_, crate::state::StateError>(chunk)
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(err)) => Err(err.to_string()),
        Err(join) => Err(join.to_string()),
    }
}

/// A stored read's items parsed: the items, "cannot be read", or malformed.
type Parsed<T> = Result<Vec<T>, Unavailable>;

/// Parses a stored read's text ([`super::stored_form`]).
pub(super) fn parse_stored<T: DeserializeOwned>(items: &str) -> Parsed<T> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Form<T> {
        Items(Vec<T>),
        NotReadable { not_readable: String },
    }
    match serde_json::from_str(items) {
        Ok(Form::Items(mut items)) => {
            items.shrink_to_fit();
            Ok(items)
        }
        Ok(Form::NotReadable { not_readable }) => Err(Unavailable::NotReadable {
            reason: not_readable,
        }),
        Err(e) => Err(Unavailable::Malformed {
            detail: format!("stored per-user read: {e}"),
        }),
    }
}

/// The stored reads of one kind, parsed, by user; each is taken out once as it is placed.
pub(super) struct KindReads<T>(Vec<(Box<str>, Option<Parsed<T>>)>);

impl<T> KindReads<T> {
    fn new(mut reads: Vec<(Box<str>, Option<Parsed<T>>)>) -> Self {
        reads.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Self(reads)
    }

    /// `user`'s read, taken out; `None` when there is none (or it was taken).
    pub(super) fn take(&mut self, user: &str) -> Option<Parsed<T>> {
        let position = self.0.binary_search_by(|(u, _)| (**u).cmp(user)).ok()?;
        self.0.get_mut(position).and_then(|(_, read)| read.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::per_user::PerUserRead;

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
    async fn reads_come_parsed_one_kind_at_a_time_and_are_taken_once() {
        let reads = [
            read("u2", "rules", "[2]"),
            read("u1", "calendar", "[1]"),
            read("u1", "rules", r#"{"not_readable":"404"}"#),
            read("u3", "rules", "damaged"),
            read("u0", "unknown_kind", "[9]"),
        ];
        let mut texts = StoredTexts::held(&reads);
        let mut rules = texts.parsed::<u32>(Kind::Rules).await;
        assert_eq!(rules.take("u2"), Some(Ok(vec![2])));
        assert!(matches!(
            rules.take("u1"),
            Some(Err(Unavailable::NotReadable { .. }))
        ));
        assert_eq!(rules.take("u1"), None, "taken once");
        assert!(matches!(
            rules.take("u3"),
            Some(Err(Unavailable::Malformed { .. }))
        ));
        assert_eq!(rules.take("u4"), None);
        let again = texts.parsed::<u32>(Kind::Rules).await.take("u2");
        assert_eq!(again, None, "handed out");
        let mut calendar = texts.parsed::<u32>(Kind::Calendar).await;
        assert_eq!(calendar.take("u1"), Some(Ok(vec![1])));

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        store.save_per_user_reads("t", reads.clone(), &[]).unwrap();
        let mut texts = StoredTexts::Store {
            store,
            tenant: "t".into(),
        };
        let mut rules = texts.parsed::<u32>(Kind::Rules).await;
        assert_eq!(rules.take("u2"), Some(Ok(vec![2])));
        assert!(matches!(
            rules.take("u3"),
            Some(Err(Unavailable::Malformed { .. }))
        ));
        let methods = texts.parsed::<u32>(Kind::AuthMethods).await.take("u1");
        assert_eq!(methods, None);
    }
}
