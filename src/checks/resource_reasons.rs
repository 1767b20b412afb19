//! [`Unevaluated`]: the resources (user ids) a check could not evaluate although its data
//! source worked, each with its reason, held without an allocation per resource.
//!
//! The four authentication-method checks each list every user the registration report did not
//! send to a method read: about 80,000 of 100,000 users. As a `BTreeMap<String, String>` that
//! was about 12 MB of tree nodes, ids and reason copies per check, held by the scan's outcomes
//! until the reconcile diff, where the daemon's memory peaks (issue 10, BENCHMARKS.md
//! "Memory"). Here the ids are one string in sorted order with their end offsets, and each
//! distinct reason is held once. The four method checks list the same users for the same
//! reasons: a list equal to the one built just before shares it ([`shared`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

/// Resource ids with the reason each was not evaluated, sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unevaluated(Arc<Entries>);

/// The ids and reasons of an [`Unevaluated`].
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

impl Unevaluated {
    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.ends.len()
    }

    /// True when every resource was evaluated.
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

    /// Why `id` was not evaluated; `None` when it was.
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

    /// True when `id` was not evaluated.
    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
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

    /// How many ids each reason left unevaluated.
    pub fn count_by_reason(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, reason) in self.iter() {
            *counts.entry(reason.to_owned()).or_insert(0) += 1;
        }
        counts
    }
}

impl From<BTreeMap<String, String>> for Unevaluated {
    fn from(map: BTreeMap<String, String>) -> Self {
        let mut ids = String::with_capacity(map.keys().map(String::len).sum());
        let mut ends = Vec::with_capacity(map.len());
        let mut reason_of = Vec::with_capacity(map.len());
        let mut reasons: Vec<Box<str>> = Vec::new();
        for (id, reason) in &map {
            let index = match reasons.iter().position(|r| **r == **reason) {
                Some(index) => index,
                None => {
                    reasons.push(reason.as_str().into());
                    reasons.len() - 1
                }
            };
            ids.push_str(id);
            ends.push(ids.len());
            reason_of.push(u32::try_from(index).unwrap_or(u32::MAX));
        }
        Self(shared(Entries {
            ids: ids.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            reason_of: reason_of.into_boxed_slice(),
            reasons: reasons.into_boxed_slice(),
        }))
    }
}

/// `entries`, or the list built just before on this thread when it is equal and still held:
/// the method checks' four lists of about 80,000 users at 100,000 are then one (the checks run
/// one after another on one thread). Only a weak reference is kept, so nothing outlives the
/// outcomes that hold it.
fn shared(entries: Entries) -> Arc<Entries> {
    thread_local! {
        static LAST: RefCell<Weak<Entries>> = const { RefCell::new(Weak::new()) };
    }
    if entries.ends.is_empty() {
        return Arc::new(entries);
    }
    LAST.with(|last| {
        if let Some(previous) = last.borrow().upgrade() {
            if *previous == entries {
                return previous;
            }
        }
        let new = Arc::new(entries);
        *last.borrow_mut() = Arc::downgrade(&new);
        new
    })
}

impl FromIterator<(String, String)> for Unevaluated {
    /// Later reasons of a repeated id replace earlier ones, as in a map.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        iter.into_iter().collect::<BTreeMap<_, _>>().into()
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
        let compact = Unevaluated::from(source.clone());
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
        let again = Unevaluated::from(source);
        assert!(Arc::ptr_eq(&compact.0, &again.0), "an equal list is shared");
        let other = Unevaluated::from(map(&[("u1", "user_not_found")]));
        assert!(!Arc::ptr_eq(&compact.0, &other.0) && other != compact);
    }

    #[test]
    fn counts_by_reason_and_empty_is_empty() {
        let compact: Unevaluated = [
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
        assert!(Unevaluated::default().is_empty());
        assert_eq!(Unevaluated::default().get(""), None);
    }
}
