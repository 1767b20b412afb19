//! [`ResourceReasons`]: resources (user ids, domains) with the reason a check could not judge
//! each, held without an allocation per resource; a check lists two such sets, the resources
//! whose data failed and those it could not evaluate although their source worked.
//!
//! The four authentication-method checks each list every user the registration report did not
//! send to a method read: about 80,000 of 100,000 users. As a `BTreeMap<String, String>` that
//! was about 12 MB of tree nodes, ids and reason copies per check, held by the scan's outcomes
//! until the reconcile diff, where the daemon's memory peaks (issue 10, BENCHMARKS.md
//! "Memory"). While a sweep spans several scans, every check lists each user whose read is
//! still pending as failed: 140,000 entries in the first scan at 100,000 users, and as a
//! `Vec<(String, String)>` per check (an id copy and a rendered reason each) those were 42 MB
//! of the scan's 150 MB peak of heap (a heap profile of the spread sweep, issue 10). Here the
//! ids are one string in sorted order with their end offsets, and each distinct reason is held
//! once ([`ReasonsBuilder`] collects them the same way). The four method checks list the same
//! users for the same reasons: a list equal to the one built just before shares it
//! ([`shared`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt::{Display, Write};
use std::sync::{Arc, Weak};

/// Resource ids with the reason each was not judged, sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceReasons(Arc<Entries>);

/// The ids and reasons of a [`ResourceReasons`].
#[derive(Debug, Default, PartialEq, Eq)]
struct Entries {
    /// Every id, concatenated in ascending order.
    ids: Box<str>,
    /// Where each id ends in `ids`.
    ends: Box<[usize]>,
    /// The index in `reasons` of each id's reason.
    reason_of: Box<[u32]>,
    /// Each distinct reason once.
    reasons: Box<[Box<str>]>,
}

impl ResourceReasons {
    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.ends.len()
    }

    /// True without resources.
    pub fn is_empty(&self) -> bool {
        self.0.ends.is_empty()
    }

    /// The id at `index`.
    fn id(&self, index: usize) -> &str {
        let start = match index.checked_sub(1) {
            Some(before) => self.0.ends.get(before).copied().unwrap_or(0),
            None => 0,
        };
        let end = self.0.ends.get(index).copied().unwrap_or(start);
        self.0.ids.get(start..end).unwrap_or_default()
    }

    fn reason(&self, index: usize) -> &str {
        self.0
            .reason_of
            .get(index)
            .and_then(|r| usize::try_from(*r).ok())
            .and_then(|r| self.0.reasons.get(r))
            .map_or("", |r| r)
    }

    /// The reason listed for `id`; `None` when it is not listed.
    pub fn get(&self, id: &str) -> Option<&str> {
        let mut low = 0;
        let mut high = self.len();
        while low < high {
            let middle = low + (high - low) / 2;
            match self.id(middle).cmp(id) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(self.reason(middle)),
            }
        }
        None
    }

    /// True when `id` is listed.
    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// True when `resource_id` is listed or sits under a listed id: `<id>/...` (the instance
    /// `<userId>/<methodId>` under a failed user). A binary search per `/`, not a scan of the
    /// list, so reconcile stays linear when thousands of users are pending.
    pub fn covers(&self, resource_id: &str) -> bool {
        let prefixes = resource_id
            .match_indices('/')
            .filter_map(|(at, _)| resource_id.get(..at));
        prefixes
            .chain(std::iter::once(resource_id))
            .any(|prefix| self.contains_key(prefix))
    }

    /// The first `(id, reason)` in id order.
    pub fn first(&self) -> Option<(&str, &str)> {
        self.iter().next()
    }

    /// True when some id's reason starts with `prefix`.
    pub fn has_reason_starting_with(&self, prefix: &str) -> bool {
        self.iter().any(|(_, reason)| reason.starts_with(prefix))
    }

    /// `(id, reason)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (0..self.len()).map(|i| (self.id(i), self.reason(i)))
    }

    /// True when `other` is this very list, not a copy (the method checks share one).
    #[cfg(test)]
    pub(crate) fn is_shared_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// How many ids each reason lists.
    pub fn count_by_reason(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, reason) in self.iter() {
            *counts.entry(reason.to_owned()).or_insert(0) += 1;
        }
        counts
    }
}

/// How many recently built lists [`shared`] compares a new one with: each check builds two (its
/// failed and its unevaluated resources), one after the other.
const RECENT_LISTS: usize = 2;

/// `entries`, or one of the lists built just before on this thread when it is equal and still
/// held: the method checks' four lists of about 80,000 users at 100,000 are then one, and so
/// are their four lists of pending users while a sweep spans scans (the checks run one after
/// another on one thread). Only weak references are kept, so nothing outlives the outcomes
/// that hold it.
fn shared(entries: Entries) -> Arc<Entries> {
    thread_local! {
        static RECENT: RefCell<Vec<Weak<Entries>>> = const { RefCell::new(Vec::new()) };
    }
    if entries.ends.is_empty() {
        return Arc::new(entries);
    }
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        let equal = recent
            .iter()
            .filter_map(Weak::upgrade)
            .find(|previous| **previous == entries);
        if let Some(previous) = equal {
            return previous;
        }
        let new = Arc::new(entries);
        recent.retain(|list| list.strong_count() > 0);
        if recent.len() >= RECENT_LISTS {
            recent.remove(0);
        }
        recent.push(Arc::downgrade(&new));
        new
    })
}

/// Collects `(id, reason)` pairs into a [`ResourceReasons`]: ids appended to one string,
/// each distinct reason kept once, sorted when built.
#[derive(Debug, Default)]
pub struct ReasonsBuilder {
    ids: String,
    /// Start, end (in `ids`) and reason index of each pair, in insertion order.
    entries: Vec<(usize, usize, u32)>,
    reasons: Vec<Box<str>>,
    reason_index: HashMap<Box<str>, u32>,
    /// Scratch space to render a reason without an allocation per pair.
    rendered: String,
}

impl ReasonsBuilder {
    /// Adds `id` with `reason`; a later reason of a repeated id replaces the earlier one.
    pub fn insert(&mut self, id: &str, reason: &str) {
        let reason = self.reason_index_of(reason);
        let start = self.ids.len();
        self.ids.push_str(id);
        self.entries.push((start, self.ids.len(), reason));
    }

    /// The same with a reason rendered from `reason`.
    pub fn insert_display(&mut self, id: &str, reason: &impl Display) {
        let mut rendered = std::mem::take(&mut self.rendered);
        rendered.clear();
        let _ = write!(rendered, "{reason}");
        self.insert(id, &rendered);
        self.rendered = rendered;
    }

    fn reason_index_of(&mut self, reason: &str) -> u32 {
        if let Some(index) = self.reason_index.get(reason) {
            return *index;
        }
        let index = u32::try_from(self.reasons.len()).unwrap_or(u32::MAX);
        self.reasons.push(reason.into());
        self.reason_index.insert(reason.into(), index);
        index
    }

    /// True when nothing was added.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs, sorted by id, each id once (its last reason).
    pub fn build(self) -> ResourceReasons {
        let Self {
            ids: source,
            mut entries,
            reasons,
            ..
        } = self;
        let id = |&(start, end, _): &(usize, usize, u32)| source.get(start..end).unwrap_or("");
        // Stable: among equal ids the last inserted stays last, and is the one kept.
        entries.sort_by(|a, b| id(a).cmp(id(b)));
        let mut kept: Vec<(usize, usize, u32)> = Vec::with_capacity(entries.len());
        for entry in entries {
            match kept.last_mut() {
                Some(last) if id(last) == id(&entry) => *last = entry,
                _ => kept.push(entry),
            }
        }
        let mut ids = String::with_capacity(kept.iter().map(|(s, e, _)| e - s).sum());
        let mut ends = Vec::with_capacity(kept.len());
        let mut reason_of = Vec::with_capacity(kept.len());
        for entry in &kept {
            ids.push_str(id(entry));
            ends.push(ids.len());
            reason_of.push(entry.2);
        }
        ResourceReasons(shared(Entries {
            ids: ids.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            reason_of: reason_of.into_boxed_slice(),
            reasons: reasons.into_boxed_slice(),
        }))
    }
}

impl FromIterator<(String, String)> for ResourceReasons {
    /// Later reasons of a repeated id replace earlier ones, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut builder = ReasonsBuilder::default();
        for (id, reason) in iter {
            builder.insert(&id, &reason);
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn answers_as_the_map_it_was_built_from() {
        let pairs = [
            ("u10", "user_not_found"),
            ("u1", "mailbox_not_enabled_for_rest_api"),
            ("u2", "user_not_found"),
            ("", "empty id"),
        ];
        let source = map(&pairs);
        let compact: ResourceReasons = source.clone().into_iter().collect();
        assert_eq!(compact.len(), source.len());
        for (id, reason) in &source {
            assert_eq!(compact.get(id), Some(reason.as_str()), "{id}");
        }
        for absent in ["u", "u0", "u11", "u3", "x"] {
            assert!(!compact.contains_key(absent), "{absent}");
        }
        let listed: Vec<(&str, &str)> = compact.iter().collect();
        let expected: Vec<(&str, &str)> = source
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(listed, expected);
        assert_eq!(compact.0.reasons.len(), 3, "each reason held once");
        let again: ResourceReasons = source.into_iter().collect();
        assert!(Arc::ptr_eq(&compact.0, &again.0), "an equal list is shared");
        let other: ResourceReasons = map(&[("u1", "user_not_found")]).into_iter().collect();
        assert!(!Arc::ptr_eq(&compact.0, &other.0) && other != compact);
    }

    #[test]
    fn counts_by_reason_and_empty_is_empty() {
        let compact: ResourceReasons = [
            ("a".to_owned(), "x".to_owned()),
            ("b".to_owned(), "y".to_owned()),
            ("c".to_owned(), "x".to_owned()),
            ("a".to_owned(), "y".to_owned()),
        ]
        .into_iter()
        .collect();
        let counts = compact.count_by_reason();
        assert_eq!(
            counts,
            map(&[("y", "2"), ("x", "1")])
                .into_iter()
                .map(|(k, v)| (k, v.parse().unwrap()))
                .collect()
        );
        assert!(ResourceReasons::default().is_empty());
        assert_eq!(ResourceReasons::default().get(""), None);
    }

    #[test]
    fn a_builder_sorts_keeps_the_last_reason_of_an_id_and_holds_each_reason_once() {
        let mut builder = ReasonsBuilder::default();
        assert!(builder.is_empty());
        builder.insert("u2", "throttled");
        builder.insert_display("u1", &format_args!("per-user {}", "sweep pending"));
        builder.insert("u3", "throttled");
        builder.insert_display("u2", &"per-user sweep pending");
        let built = builder.build();
        let listed: Vec<(&str, &str)> = built.iter().collect();
        assert_eq!(
            listed,
            [
                ("u1", "per-user sweep pending"),
                ("u2", "per-user sweep pending"),
                ("u3", "throttled")
            ]
        );
        assert_eq!(built.0.reasons.len(), 2);
        assert_eq!(built.first(), Some(("u1", "per-user sweep pending")));
    }

    #[test]
    fn covers_a_listed_id_and_what_sits_under_it_only() {
        let failed: ResourceReasons = [("u1".to_owned(), "x".to_owned())].into_iter().collect();
        assert!(failed.covers("u1"));
        assert!(failed.covers("u1/method"));
        assert!(failed.covers("u1/a/b"));
        assert!(!failed.covers("u1x"));
        assert!(!failed.covers("u10/method"));
        assert!(!failed.covers("u"));
        assert!(!failed.covers("x/u1"));
        assert!(!ResourceReasons::default().covers(""));
    }

    #[test]
    fn lists_built_in_turn_share_with_their_equals() {
        let list = |pairs: &[(&str, &str)]| -> ResourceReasons {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let failed_1 = list(&[("u1", "per-user sweep pending")]);
        let unevaluated_1 = list(&[("u2", "no_relevant_method")]);
        let failed_2 = list(&[("u1", "per-user sweep pending")]);
        let unevaluated_2 = list(&[("u2", "no_relevant_method")]);
        assert!(failed_1.is_shared_with(&failed_2));
        assert!(unevaluated_1.is_shared_with(&unevaluated_2));
        assert!(!failed_1.is_shared_with(&unevaluated_1));
    }
}
