//! Structural pass: turns the merged key tree (file + environment) into a [`RawConfig`],
//! reporting every unknown key and every badly typed value with its key path.
//!
//! serde stops at the first error of a struct, so each key of a table is deserialized on its
//! own into the raw struct (all raw fields are optional or defaulted), and the table is then
//! built from the keys that passed. Unknown keys are found by comparing against the field
//! names serde itself declares for the struct, so the raw shapes stay the single source.

use super::error::Problems;
use super::raw::{RawConfig, RawSink, RawSuppression, RawTenant, RawTls};
use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Builds the raw config from the merged tree; problems found on the way go to `problems`.
pub(crate) fn raw_from_tree(tree: &Value, problems: &mut Problems) -> RawConfig {
    let Some(root) = tree.as_object() else {
        problems.push("", "the config must be a TOML table");
        return RawConfig::default();
    };
    let sections = field_names::<RawConfig>();
    for key in sorted_keys(root) {
        if !sections.contains(&key) {
            problems.push(key, unknown_key_message(key, sections));
        }
    }
    let section = |name: &str| root.get(name);
    RawConfig {
        tenants: array_of("tenants", section("tenants"), problems, table::<RawTenant>),
        dns: section("dns").map_or_else(Default::default, |v| table("dns", v, problems)),
        scan: section("scan").map_or_else(Default::default, |v| table("scan", v, problems)),
        state: section("state").map_or_else(Default::default, |v| table("state", v, problems)),
        metrics: section("metrics")
            .map_or_else(Default::default, |v| table("metrics", v, problems)),
        sinks: array_of("sinks", section("sinks"), problems, sink),
        checks: section("checks").map_or_else(Default::default, |v| table("checks", v, problems)),
        severity_overrides: section("severity_overrides")
            .map_or_else(BTreeMap::new, |v| severity_overrides(v, problems)),
        suppressions: array_of(
            "suppressions",
            section("suppressions"),
            problems,
            table::<RawSuppression>,
        ),
    }
}

/// Every key the config accepts, as dotted paths without indexes (`tenants.name`,
/// `sinks.tls.ca_file`, `checks.tap_usable_only`), in file order. The keys of
/// `severity_overrides` are finding ids and are not listed.
pub fn known_keys() -> Vec<String> {
    fn keys_of<T: DeserializeOwned>(section: &str, nested: &[&str]) -> Vec<String> {
        field_names::<T>()
            .iter()
            .filter(|key| !nested.contains(key))
            .map(|key| format!("{section}.{key}"))
            .collect()
    }
    let mut keys = Vec::new();
    for section in field_names::<RawConfig>() {
        let mut section_keys = match *section {
            "tenants" => keys_of::<RawTenant>(section, &[]),
            "dns" => keys_of::<super::raw::RawDns>(section, &[]),
            "scan" => keys_of::<super::raw::RawScan>(section, &[]),
            "state" => keys_of::<super::raw::RawState>(section, &[]),
            "metrics" => keys_of::<super::raw::RawMetrics>(section, &[]),
            "sinks" => [
                keys_of::<RawSink>(section, &["tls"]),
                keys_of::<RawTls>("sinks.tls", &[]),
            ]
            .concat(),
            "checks" => keys_of::<crate::checks::CheckOptions>(section, &[]),
            "suppressions" => keys_of::<RawSuppression>(section, &[]),
            other => vec![other.to_owned()],
        };
        keys.append(&mut section_keys);
    }
    keys
}

/// The key path of a severity override, quoted because finding ids contain dots.
pub(crate) fn override_path(finding: &str) -> String {
    format!("severity_overrides.\"{finding}\"")
}

fn sink(path: &str, value: &Value, problems: &mut Problems) -> RawSink {
    let mut sink: RawSink = table_except(path, value, &["tls"], problems);
    if let Some(tls) = value.get("tls") {
        sink.tls = Some(table::<RawTls>(&format!("{path}.tls"), tls, problems));
    }
    sink
}

/// `[[name]]`: an array of tables, each walked by `item` with path `name[index]`.
fn array_of<T>(
    name: &str,
    value: Option<&Value>,
    problems: &mut Problems,
    item: impl Fn(&str, &Value, &mut Problems) -> T,
) -> Vec<T> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, value)| item(&format!("{name}[{index}]"), value, problems))
            .collect(),
        Some(other) => {
            problems.push(
                name,
                format!(
                    "must be an array of tables ([[{name}]]), got {}",
                    kind(other)
                ),
            );
            Vec::new()
        }
    }
}

/// A table deserialized key by key into `T`.
fn table<T: DeserializeOwned + Default>(path: &str, value: &Value, problems: &mut Problems) -> T {
    table_except(path, value, &[], problems)
}

/// Like [`table`], leaving out `nested` keys that the caller walks itself.
fn table_except<T: DeserializeOwned + Default>(
    path: &str,
    value: &Value,
    nested: &[&str],
    problems: &mut Problems,
) -> T {
    let Some(map) = value.as_object() else {
        problems.push(path, format!("must be a table, got {}", kind(value)));
        return T::default();
    };
    let known = field_names::<T>();
    let mut good = Map::new();
    for key in sorted_keys(map) {
        let key_path = format!("{path}.{key}");
        let Some(item) = map.get(key) else { continue };
        if !known.contains(&key) {
            problems.push(key_path, unknown_key_message(key, known));
        } else if !nested.contains(&key) {
            let single = Value::Object(Map::from_iter([(key.to_owned(), item.clone())]));
            match serde_json::from_value::<T>(single) {
                Ok(_) => {
                    good.insert(key.to_owned(), item.clone());
                }
                Err(err) => problems.push(key_path, err.to_string()),
            }
        }
    }
    serde_json::from_value(Value::Object(good)).unwrap_or_else(|err| {
        problems.push(path, err.to_string());
        T::default()
    })
}

/// `[severity_overrides]`, flattening TOML dotted keys (`user.account_disabled = "high"`
/// without quotes is a nested table) back into finding ids.
fn severity_overrides(value: &Value, problems: &mut Problems) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match value.as_object() {
        Some(map) => flatten_overrides("", map, &mut out, problems),
        None => problems.push(
            "severity_overrides",
            format!("must be a table, got {}", kind(value)),
        ),
    }
    out
}

fn flatten_overrides(
    prefix: &str,
    map: &Map<String, Value>,
    out: &mut BTreeMap<String, String>,
    problems: &mut Problems,
) {
    for key in sorted_keys(map) {
        let id = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        match map.get(key) {
            Some(Value::String(severity)) => {
                out.insert(id, severity.clone());
            }
            Some(Value::Object(inner)) => flatten_overrides(&id, inner, out, problems),
            Some(other) => problems.push(
                override_path(&id),
                format!("must be a severity name, got {}", kind(other)),
            ),
            None => {}
        }
    }
}

fn sorted_keys(map: &Map<String, Value>) -> Vec<&str> {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn unknown_key_message(key: &str, known: &[&str]) -> String {
    let closest = known
        .iter()
        .map(|candidate| {
            let prefix =
                key.len() >= 4 && (candidate.starts_with(key) || key.starts_with(candidate));
            let distance = if prefix {
                1
            } else {
                edit_distance(key, candidate)
            };
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, candidate)) => format!("unknown key, did you mean \"{candidate}\"?"),
        None => "unknown key".to_owned(),
    }
}

/// Levenshtein distance, for "did you mean" hints on short key names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous
                .get(j)
                .map_or(usize::MAX, |d| d + usize::from(ca != *cb));
            let delete = previous.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let insert = current.get(j).map_or(usize::MAX, |d| d + 1);
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous.last().copied().unwrap_or(0)
}

/// The field names serde declares for a derived struct (empty for anything else).
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut capture = FieldNames(&[]);
    // The capturing deserializer always fails after recording the names.
    let _ = T::deserialize(&mut capture);
    capture.0
}

struct FieldNames(&'static [&'static str]);

impl<'de> de::Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = fields;
        Err(de::Error::custom("field names captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_serde() {
        assert!(field_names::<RawSink>().contains(&"type"));
        assert!(field_names::<RawSink>().contains(&"max_message_bytes"));
        assert!(field_names::<crate::checks::CheckOptions>().contains(&"tap_usable_only"));
    }

    #[test]
    fn known_keys_cover_every_section_and_nested_tls() {
        let keys = known_keys();
        for key in [
            "tenants.client_secret_file",
            "sinks.type",
            "sinks.tls.server_name",
        ] {
            assert!(keys.contains(&key.to_owned()), "{key}");
        }
        assert!(keys.contains(&"severity_overrides".to_owned()));
        assert!(!keys.contains(&"sinks.tls".to_owned()));
    }

    #[test]
    fn unknown_keys_get_a_hint_when_close() {
        assert_eq!(
            unknown_key_message("intervall", &["interval", "timeout"]),
            "unknown key, did you mean \"interval\"?"
        );
        assert_eq!(unknown_key_message("nope", &["interval"]), "unknown key");
        assert_eq!(
            unknown_key_message("password_max_age", &["password_max_age_days"]),
            "unknown key, did you mean \"password_max_age_days\"?"
        );
    }

    #[test]
    fn every_bad_key_of_a_table_is_reported_and_good_keys_kept() {
        let tree = serde_json::json!({
            "scan": {"interval": "1h", "nope": 1, "directory_concurrency": "many"},
            "bogus": {}
        });
        let mut problems = Problems::default();
        let raw = raw_from_tree(&tree, &mut problems);
        let lines: Vec<String> = problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "bogus: unknown key",
                "scan.directory_concurrency: invalid type: string \"many\", expected usize",
                "scan.nope: unknown key",
            ]
        );
        assert_eq!(raw.scan.interval.as_deref(), Some("1h"));
    }

    #[test]
    fn dotted_override_keys_are_flattened() {
        let tree = serde_json::json!({"severity_overrides": {
            "user": {"account_disabled": "high"}, "domain.spf_missing": "low"}});
        let mut problems = Problems::default();
        let raw = raw_from_tree(&tree, &mut problems);
        assert_eq!(problems.len(), 0);
        assert_eq!(
            raw.severity_overrides
                .get("user.account_disabled")
                .map(String::as_str),
            Some("high")
        );
        assert_eq!(raw.severity_overrides.len(), 2);
    }
}
