//! [`Details`]: the evidence of a finding instance (recipients, the SPF term, DMARC tags, ...),
//! a JSON object carried by findings, stored instances and events.
//!
//! It is a list of `(key, value)` pairs sorted by key, not a `serde_json::Map`: the map is a
//! B-tree that allocates a node of about 600 bytes however few its keys, and a 100,000-user
//! tenant carries about 100,000 findings of two or three keys each, held as findings, stored
//! instances and events at once (issue 10, BENCHMARKS.md "large_tenant"). Keys sorted as the
//! map sorts them, the JSON text is byte for byte what the map wrote. The pairs are shared
//! (`Arc`): a finding, the instance stored from it and its event hold one copy, not three. The
//! keys are interned ([`key`]): the checks write a few dozen distinct keys, so 100,000 findings
//! of about four keys each hold them once, not 400,000 times.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// A finding's evidence: a JSON object with its keys in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details(Arc<[(Key, Value)]>);

/// A key, shared with every other use of the same text.
type Key = Arc<str>;

/// How many distinct keys are interned; past that (never, with the checks' keys) each key is
/// its own copy, so no input can grow the table without bound.
const MAX_INTERNED_KEYS: usize = 1024;

/// `text` as the process's shared key of that text.
fn key(text: &str) -> Key {
    static KEYS: OnceLock<Mutex<BTreeSet<Key>>> = OnceLock::new();
    let Ok(mut keys) = KEYS.get_or_init(Mutex::default).lock() else {
        return Key::from(text);
    };
    if let Some(known) = keys.get(text) {
        return Arc::clone(known);
    }
    let new = Key::from(text);
    if keys.len() < MAX_INTERNED_KEYS {
        keys.insert(Arc::clone(&new));
    }
    new
}

impl Details {
    /// No evidence.
    pub fn new() -> Self {
        Self(Arc::from(Vec::new()))
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key)
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v)
    }

    /// True when `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`; returns the value it replaced. The pairs are copied when shared.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        let position = self.position(&name);
        let mut pairs = self.0.to_vec();
        let replaced = match position {
            Ok(i) => pairs
                .get_mut(i)
                .map(|(_, old)| std::mem::replace(old, value)),
            Err(i) => {
                pairs.insert(i, (key(&name), value));
                None
            }
        };
        self.0 = Arc::from(pairs);
        replaced
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.position(key).ok()?;
        let mut pairs = self.0.to_vec();
        let removed = pairs.remove(i).1;
        self.0 = Arc::from(pairs);
        Some(removed)
    }

    /// Keys and values in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }

    /// From pairs in any order; of a key given twice, the last value is kept (as a map keeps it).
    fn from_unsorted(mut pairs: Vec<(Key, Value)>) -> Self {
        // Stable: equal keys stay in arrival order, so the last of each run is the newest.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(Key, Value)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        Self(Arc::from(unique))
    }

    /// As a JSON object value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// As a `serde_json::Map`.
    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// `details["key"]`: the value, or `null` when the key is absent (as indexing a `Value` does).
impl std::ops::Index<&str> for Details {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl From<Map<String, Value>> for Details {
    fn from(map: Map<String, Value>) -> Self {
        // A map iterates in key order: the list is sorted as it is collected.
        let pairs: Vec<(Key, Value)> = map.into_iter().map(|(k, v)| (key(&k), v)).collect();
        Self(Arc::from(pairs))
    }
}

impl FromIterator<(String, Value)> for Details {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self::from_unsorted(iter.into_iter().map(|(k, v)| (key(&k), v)).collect())
    }
}

impl Serialize for Details {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0.iter() {
            map.serialize_entry(&**key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DetailsVisitor;
        impl<'de> Visitor<'de> for DetailsVisitor {
            type Value = Details;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Details, A::Error> {
                let mut pairs = Vec::new();
                while let Some((name, value)) = access.next_entry::<String, Value>()? {
                    pairs.push((key(&name), value));
                }
                Ok(Details::from_unsorted(pairs))
            }
        }
        deserializer.deserialize_map(DetailsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_json_text_is_what_a_map_writes_whatever_the_insertion_order() {
        let mut details = Details::new();
        details.insert("zeta".into(), json!(1));
        details.insert("alpha".into(), json!({"b": 2, "a": [1, "x"]}));
        details.insert("mid".into(), json!(null));
        let map = details.to_map();
        assert_eq!(
            serde_json::to_string(&details).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(details.keys().collect::<Vec<_>>(), ["alpha", "mid", "zeta"]);
        let back: Details = serde_json::from_str(&serde_json::to_string(&map).unwrap()).unwrap();
        assert_eq!(back, details);
        assert_eq!(Details::from(map), details);
    }

    #[test]
    fn a_key_is_held_once_however_many_details_carry_it() {
        let parsed: Details = serde_json::from_str(r#"{"sharee_address": "a@x"}"#).unwrap();
        let built = Details::from(
            json!({"sharee_address": "b@y"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let (Some((first, _)), Some((second, _))) = (parsed.0.first(), built.0.first()) else {
            panic!("both have the key");
        };
        assert!(Arc::ptr_eq(first, second));
        assert_eq!(parsed["sharee_address"], json!("a@x"));
    }

    #[test]
    fn insert_replaces_and_remove_takes_a_key() {
        let mut details = Details::new();
        assert_eq!(details.insert("k".into(), json!(1)), None);
        assert_eq!(details.insert("k".into(), json!(2)), Some(json!(1)));
        assert_eq!(details.get("k"), Some(&json!(2)));
        assert!(details.contains_key("k") && !details.contains_key("j"));
        assert_eq!(details.remove("k"), Some(json!(2)));
        assert!(details.is_empty() && details.get("k").is_none());
        assert_eq!(details["k"], Value::Null);
        assert!(serde_json::from_str::<Details>("[1]").is_err());
    }
}
