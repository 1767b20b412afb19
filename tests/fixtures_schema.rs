//! Every Graph fixture under `tests/fixtures/graph/` matches the Microsoft Graph v1.0 schema
//! subset in `shared/data/graph-v1-schema-subset.json`: property names exist on the entity type
//! (following `base` inheritance), value types match, enum values are known, and non-nullable
//! properties are not null. The fixture folder names the type; `@odata.type` refines it.

// Test helpers outside `#[test]` functions report failures by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

use graph_schema::Schema;
use serde_json::Value;
use std::path::{Path, PathBuf};

const SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/graph-v1-schema-subset.json"
);
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/graph");

/// A validator for Graph JSON against the schema subset, reusable by any test.
pub mod graph_schema {
    use chrono::{DateTime, NaiveTime};
    use serde::Deserialize;
    use serde_json::{Map, Value};
    use std::collections::BTreeMap;

    /// The Graph namespace prefix of `@odata.type` values and type references.
    const NAMESPACE: &str = "microsoft.graph.";

    /// The loaded schema: entity and complex types with their properties, and enums.
    #[derive(Debug, Deserialize)]
    pub struct Schema {
        types: BTreeMap<String, TypeDef>,
        enums: BTreeMap<String, Vec<String>>,
    }

    #[derive(Debug, Deserialize)]
    struct TypeDef {
        base: Option<String>,
        #[serde(rename = "abstract")]
        is_abstract: bool,
        props: BTreeMap<String, Property>,
    }

    #[derive(Debug, Deserialize)]
    struct Property {
        #[serde(rename = "type")]
        type_ref: String,
        nullable: bool,
    }

    /// The entity type of the values in a fixture folder (`tests/fixtures/graph/<folder>/`).
    pub fn type_for_folder(folder: &str) -> Option<&'static str> {
        Some(match folder {
            "users" => "user",
            "auth_methods" => "authenticationMethod",
            "calendar_permissions" => "calendarPermission",
            "message_rules" => "messageRule",
            "applications" => "application",
            "service_principals" => "servicePrincipal",
            "domains" | "domains_checks" => "domain",
            "organization" => "organization",
            "user_registration_details" => "userRegistrationDetails",
            _ => return None,
        })
    }

    impl Schema {
        /// Parses the schema JSON.
        pub fn from_json(text: &str) -> Result<Self, String> {
            serde_json::from_str(text).map_err(|e| format!("bad schema: {e}"))
        }

        /// Validates a response body: a collection (`{"value": [...]}`) or a single entity.
        pub fn validate_document(&self, type_name: &str, document: &Value) -> Vec<String> {
            let mut errors = Vec::new();
            match document {
                Value::Object(root) if root.contains_key("value") => {
                    for key in root.keys().filter(|k| *k != "value" && !is_annotation(k)) {
                        errors.push(format!("$.{key}: unexpected key next to value"));
                    }
                    match root.get("value") {
                        Some(Value::Array(items)) => {
                            for (index, item) in items.iter().enumerate() {
                                let path = format!("$.value[{index}]");
                                self.check_graph_value(type_name, item, &path, &mut errors);
                            }
                        }
                        _ => errors.push("$.value: not an array".to_owned()),
                    }
                }
                other => self.check_graph_value(type_name, other, "$", &mut errors),
            }
            errors
        }

        /// The property `name` of `type_name` or of one of its bases.
        fn property(&self, type_name: &str, name: &str) -> Option<&Property> {
            let mut current = Some(type_name);
            while let Some(type_name) = current {
                let def = self.types.get(type_name)?;
                if let Some(property) = def.props.get(name) {
                    return Some(property);
                }
                current = def.base.as_deref();
            }
            None
        }

        /// True when `type_name` is `ancestor` or derives from it.
        fn derives_from(&self, type_name: &str, ancestor: &str) -> bool {
            let mut current = Some(type_name);
            while let Some(type_name) = current {
                if type_name == ancestor {
                    return true;
                }
                current = self.types.get(type_name).and_then(|d| d.base.as_deref());
            }
            false
        }

        fn check_object(
            &self,
            expected: &str,
            object: &Map<String, Value>,
            path: &str,
            errors: &mut Vec<String>,
        ) {
            let actual = match object.get("@odata.type") {
                Some(Value::String(odata_type)) => {
                    let name = odata_type.trim_start_matches('#');
                    let name = name.strip_prefix(NAMESPACE).unwrap_or(name);
                    if !self.types.contains_key(name) {
                        errors.push(format!("{path}: unknown @odata.type {odata_type}"));
                        return;
                    }
                    if !self.derives_from(name, expected) {
                        errors.push(format!("{path}: {name} is not a {expected}"));
                        return;
                    }
                    name
                }
                Some(other) => {
                    errors.push(format!("{path}.@odata.type: not a string: {other}"));
                    return;
                }
                None => expected,
            };
            if self.types.get(actual).is_some_and(|d| d.is_abstract) {
                errors.push(format!("{path}: abstract {actual} needs an @odata.type"));
            }
            for (key, value) in object.iter().filter(|(k, _)| !is_annotation(k)) {
                let inner = format!("{path}.{key}");
                match self.property(actual, key) {
                    Some(p) => self.check_value(&p.type_ref, p.nullable, value, &inner, errors),
                    None => errors.push(format!("{inner}: no property {key} on {actual}")),
                }
            }
        }

        fn check_value(
            &self,
            type_ref: &str,
            nullable: bool,
            value: &Value,
            path: &str,
            errors: &mut Vec<String>,
        ) {
            if value.is_null() {
                if !nullable {
                    errors.push(format!("{path}: null for non-nullable {type_ref}"));
                }
                return;
            }
            if let Some(element) = type_ref
                .strip_prefix("Collection(")
                .and_then(|rest| rest.strip_suffix(')'))
            {
                match value {
                    Value::Array(items) => {
                        for (index, item) in items.iter().enumerate() {
                            let inner = format!("{path}[{index}]");
                            self.check_value(element, false, item, &inner, errors);
                        }
                    }
                    other => errors.push(format!("{path}: expected array of {element}: {other}")),
                }
                return;
            }
            let graph_name = type_ref
                .strip_prefix("graph.")
                .or_else(|| type_ref.strip_prefix(NAMESPACE));
            if let Some(name) = graph_name {
                self.check_graph_value(name, value, path, errors);
            } else if let Err(problem) = check_primitive(type_ref, value) {
                errors.push(format!("{path}: {problem}"));
            }
        }

        fn check_graph_value(
            &self,
            name: &str,
            value: &Value,
            path: &str,
            errors: &mut Vec<String>,
        ) {
            if let Some(members) = self.enums.get(name) {
                match value.as_str() {
                    Some(text) if members.iter().any(|m| m == text) => {}
                    _ => errors.push(format!("{path}: {value} is not a {name} ({members:?})")),
                }
            } else if self.types.contains_key(name) {
                match value {
                    Value::Object(object) => self.check_object(name, object, path, errors),
                    other => errors.push(format!("{path}: expected {name} object: {other}")),
                }
            } else {
                errors.push(format!("{path}: type {name} is not in the schema"));
            }
        }
    }

    fn is_annotation(key: &str) -> bool {
        key.starts_with("@odata.") || key.contains("@odata.")
    }

    fn check_primitive(type_ref: &str, value: &Value) -> Result<(), String> {
        let text = value.as_str();
        let ok = match type_ref {
            "Edm.String" | "Edm.Stream" => text.is_some(),
            "Edm.Boolean" => value.is_boolean(),
            "Edm.Int32" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "Edm.Int64" => value.is_i64(),
            "Edm.Double" => value.is_number(),
            "Edm.DateTimeOffset" => text.is_some_and(|t| DateTime::parse_from_rfc3339(t).is_ok()),
            "Edm.Guid" => text.is_some_and(is_guid),
            "Edm.Binary" => text.is_some_and(|t| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(t).is_ok()
            }),
            "Edm.TimeOfDay" => {
                text.is_some_and(|t| NaiveTime::parse_from_str(t, "%H:%M:%S%.f").is_ok())
            }
            other => return Err(format!("unsupported type {other}")),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{value} is not a valid {type_ref}"))
        }
    }

    /// `8-4-4-4-12` hexadecimal digits, any case.
    fn is_guid(text: &str) -> bool {
        let groups: Vec<&str> = text.split('-').collect();
        groups.len() == 5
            && groups
                .iter()
                .zip([8, 4, 4, 4, 12])
                .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
    }
}

fn schema() -> Schema {
    let text = std::fs::read_to_string(SCHEMA_PATH).unwrap();
    Schema::from_json(&text).unwrap()
}

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
}

fn errors_of(type_name: &str, text: &str) -> Vec<String> {
    schema().validate_document(type_name, &serde_json::from_str::<Value>(text).unwrap())
}

#[test]
fn every_graph_fixture_matches_the_v1_schema() {
    let schema = schema();
    let root = Path::new(FIXTURES);
    let mut files = Vec::new();
    json_files(root, &mut files);
    files.sort();
    assert!(files.len() >= 20, "only {} fixtures found", files.len());
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root).unwrap();
        let folder = relative.iter().next().unwrap().to_string_lossy();
        let Some(type_name) = graph_schema::type_for_folder(&folder) else {
            problems.push(format!(
                "{}: no Graph type for folder {folder}",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let document: Value = match serde_json::from_str(&text) {
            Ok(document) => document,
            Err(e) => {
                problems.push(format!("{}: not JSON: {e}", relative.display()));
                continue;
            }
        };
        for error in schema.validate_document(type_name, &document) {
            problems.push(format!("{}: {error}", relative.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_made_up_property_fails() {
    let errors = errors_of(
        "user",
        r#"{"value": [{"id": "u1", "userPrincipalName": "a@contoso.com", "favouriteColour": "blue"}]}"#,
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("favouriteColour"), "{errors:?}");
}

#[test]
fn inherited_properties_and_annotations_are_accepted() {
    let errors = errors_of(
        "user",
        r#"{"@odata.context": "x", "@odata.nextLink": "y", "value": [
            {"id": "u1", "deletedDateTime": null, "accountEnabled": true, "proxyAddresses": ["SMTP:a@contoso.com"],
             "onPremisesProvisioningErrors": [{"category": "PropertyConflict", "occurredDateTime": "2024-04-30T09:12:00.123Z"}]}]}"#,
    );
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn wrong_value_types_fail() {
    let cases = [
        ("user", r#"{"accountEnabled": "yes"}"#, "accountEnabled"),
        (
            "user",
            r#"{"createdDateTime": "yesterday"}"#,
            "createdDateTime",
        ),
        (
            "user",
            r#"{"proxyAddresses": "SMTP:a@b.c"}"#,
            "proxyAddresses",
        ),
        ("user", r#"{"proxyAddresses": null}"#, "non-nullable"),
        (
            "domain",
            r#"{"id": "contoso.com", "isVerified": null}"#,
            "isVerified",
        ),
        (
            "servicePrincipal",
            r#"{"appOwnerOrganizationId": "microsoft"}"#,
            "appOwnerOrganizationId",
        ),
        (
            "calendarPermission",
            r#"{"role": "owner"}"#,
            "calendarRoleType",
        ),
        (
            "calendarPermission",
            r#"{"emailAddress": {"smtp": "a@b.c"}}"#,
            "smtp",
        ),
        ("messageRule", r#"{"sequence": 1.5}"#, "sequence"),
        ("messageRule", r#"{"sequence": 3000000000}"#, "sequence"),
        (
            "messageRule",
            r#"{"actions": {"redirectTo": {"emailAddress": {"address": "z@outlook.com"}}}}"#,
            "redirectTo",
        ),
    ];
    for (type_name, entity, expected) in cases {
        let errors = errors_of(type_name, entity);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{type_name} {entity}: {errors:?}"
        );
    }
}

#[test]
fn odata_type_selects_and_must_derive_from_the_folder_type() {
    let fido = r##"{"value": [{"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": "k1",
        "createdDateTime": "2024-08-10T06:44:09Z", "attestationLevel": "notAttested", "passkeyType": "synced"}]}"##;
    assert!(errors_of("authenticationMethod", fido).is_empty());
    let missing_type = r#"{"value": [{"id": "k1", "attestationLevel": "notAttested"}]}"#;
    let errors = errors_of("authenticationMethod", missing_type);
    assert!(errors.iter().any(|e| e.contains("abstract")), "{errors:?}");
    let wrong_family =
        r##"{"value": [{"@odata.type": "#microsoft.graph.calendarPermission", "id": "p"}]}"##;
    let errors = errors_of("authenticationMethod", wrong_family);
    assert!(errors.iter().any(|e| e.contains("is not a")), "{errors:?}");
    let doc_alias = r##"{"value": [{"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": "k1",
        "creationDateTime": "2020-08-10T06:44:09Z"}]}"##;
    let errors = errors_of("authenticationMethod", doc_alias);
    assert!(
        errors.iter().any(|e| e.contains("creationDateTime")),
        "{errors:?}"
    );
}

#[test]
fn unknown_fixture_folders_have_no_type() {
    assert_eq!(graph_schema::type_for_folder("users"), Some("user"));
    assert_eq!(graph_schema::type_for_folder("dns"), None);
}
