//! Change tracking for the delta endpoints (`/users/delta`, `/applications/delta`,
//! `/servicePrincipals/delta`): every tenant change is diffed per object and per top-level
//! property against the tenant before it, and stamped with a change sequence number.
//!
//! Graph tracks only the properties in `$select` ("If a change occurs to a property that is not
//! selected, the resource for which that property changed does not appear in the delta
//! response", <https://learn.microsoft.com/graph/delta-query-overview>), so the stamp is kept
//! per property. A removed object keeps its id and the sequence of its removal, to be answered
//! as `{"id": ..., "@removed": {"reason": "changed"}}`: Entra keeps deleted users, applications
//! and service principals restorable in `deletedItems` for 30 days, which is what `changed`
//! means ("`changed` indicates the item was deleted and can be restored from deletedItems").
//!
//! Tokens carry the sequence they were issued at. The control API can expire every token
//! issued so far (Graph: `syncStateNotFound`) or reset them (Graph: 410 Gone), by raising a
//! watermark: a token at or below it is refused.

use std::collections::HashMap;

use serde_json::Value;

use crate::tenant::{object_id, TenantFile};

/// The collections that have a delta function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DeltaSet {
    Users,
    Applications,
    ServicePrincipals,
}

impl DeltaSet {
    pub const ALL: [DeltaSet; 3] = [
        DeltaSet::Users,
        DeltaSet::Applications,
        DeltaSet::ServicePrincipals,
    ];

    pub fn objects(self, file: &TenantFile) -> &[Value] {
        match self {
            DeltaSet::Users => &file.users,
            DeltaSet::Applications => &file.applications,
            DeltaSet::ServicePrincipals => &file.service_principals,
        }
    }
}

/// What changed about one object since the simulator started.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectChanges {
    /// Sequence at which the object (re)appeared; 0 when it was there from the start.
    pub created: u64,
    /// Sequence of the last change of each top-level property that changed.
    pub properties: HashMap<String, u64>,
    /// Sequence of the removal while the object is absent.
    pub removed: Option<u64>,
}

impl ObjectChanges {
    /// True when the object changed after `since` in one of `tracked` (`None`: any property).
    pub fn changed_after(&self, since: u64, tracked: Option<&[&str]>) -> bool {
        if self.created > since {
            return true;
        }
        match tracked {
            None => self.properties.values().any(|at| *at > since),
            Some(names) => names
                .iter()
                .any(|name| self.properties.get(*name).is_some_and(|at| *at > since)),
        }
    }
}

/// Change stamps of every tracked collection.
#[derive(Debug, Default)]
pub(crate) struct ChangeLog {
    /// The latest sequence number handed out.
    pub sequence: u64,
    /// Tokens issued at or below this sequence answer `syncStateNotFound`.
    pub expired_through: Option<u64>,
    /// Tokens issued at or below this sequence answer 410 Gone.
    pub reset_through: Option<u64>,
    objects: HashMap<(DeltaSet, String), ObjectChanges>,
}

/// The tracked collections before a change, to diff against.
pub(crate) struct Before(Vec<(DeltaSet, Vec<Value>)>);

impl Before {
    pub fn of(file: &TenantFile) -> Before {
        Before(
            DeltaSet::ALL
                .iter()
                .map(|set| (*set, set.objects(file).to_vec()))
                .collect(),
        )
    }
}

impl ChangeLog {
    /// What is known about one object's changes.
    pub fn get(&self, set: DeltaSet, id: &str) -> Option<&ObjectChanges> {
        self.objects.get(&(set, id.to_owned()))
    }

    /// Ids of objects of `set` removed after `since`, sorted.
    pub fn removed_after(&self, set: DeltaSet, since: u64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .objects
            .iter()
            .filter(|((s, _), c)| *s == set && c.removed.is_some_and(|at| at > since))
            .map(|((_, id), _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Expires every token issued so far (`syncStateNotFound` on its next use).
    pub fn expire_tokens(&mut self) {
        self.expired_through = Some(self.sequence);
        self.sequence += 1;
    }

    /// Resets every token issued so far (410 Gone on its next use).
    pub fn reset_tokens(&mut self) {
        self.reset_through = Some(self.sequence);
        self.sequence += 1;
    }

    /// Stamps what differs between `before` and `after` with a new sequence number.
    pub fn record(&mut self, before: Before, after: &TenantFile) {
        let stamp = self.sequence + 1;
        let mut changed = false;
        for (set, old) in before.0 {
            let old: HashMap<&str, &Value> = old
                .iter()
                .filter_map(|o| Some((object_id(o)?, o)))
                .collect();
            let mut seen = std::collections::HashSet::with_capacity(old.len());
            for object in set.objects(after) {
                let Some(id) = object_id(object) else {
                    continue;
                };
                seen.insert(id);
                changed |= self.compare(set, id, old.get(id).copied(), object, stamp);
            }
            for id in old.keys().filter(|id| !seen.contains(*id)) {
                let entry = self.objects.entry((set, (*id).to_owned())).or_default();
                entry.removed = Some(stamp);
                changed = true;
            }
        }
        if changed {
            self.sequence = stamp;
        }
    }

    fn compare(
        &mut self,
        set: DeltaSet,
        id: &str,
        old: Option<&Value>,
        new: &Value,
        stamp: u64,
    ) -> bool {
        let Some(old) = old else {
            let entry = self.objects.entry((set, id.to_owned())).or_default();
            entry.created = stamp;
            entry.removed = None;
            return true;
        };
        if old == new {
            return false;
        }
        let empty = serde_json::Map::new();
        let old_map = old.as_object().unwrap_or(&empty);
        let new_map = new.as_object().unwrap_or(&empty);
        let entry = self.objects.entry((set, id.to_owned())).or_default();
        for key in old_map.keys().chain(new_map.keys()) {
            if old_map.get(key) != new_map.get(key) {
                entry.properties.insert(key.clone(), stamp);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant(users: Value) -> TenantFile {
        TenantFile::from_json(&json!({"tenant_id": "t", "users": users}).to_string()).unwrap()
    }

    #[test]
    fn stamps_properties_creations_and_removals() {
        let mut log = ChangeLog::default();
        let old = tenant(json!([{"id": "a", "mail": "x"}, {"id": "b"}]));
        let new = tenant(json!([{"id": "a", "mail": "y"}, {"id": "c"}]));
        log.record(Before::of(&old), &new);
        assert_eq!(log.sequence, 1);
        let a = log.get(DeltaSet::Users, "a").unwrap();
        assert!(a.changed_after(0, Some(&["mail"])));
        assert!(!a.changed_after(0, Some(&["displayName"])));
        assert!(log
            .get(DeltaSet::Users, "c")
            .unwrap()
            .changed_after(0, None));
        assert_eq!(log.removed_after(DeltaSet::Users, 0), vec!["b".to_string()]);
        assert!(log.removed_after(DeltaSet::Users, 1).is_empty());
    }

    #[test]
    fn no_change_no_sequence() {
        let mut log = ChangeLog::default();
        let same = tenant(json!([{"id": "a"}]));
        log.record(Before::of(&same), &same);
        assert_eq!(log.sequence, 0);
    }
}
