//! Every Graph object the simulator emits (fixture and generated tenants, every endpoint the
//! agent reads) matches the v1.0 schema subset: property names, JSON types, enum values,
//! nullability.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::*;
use graph_sim::SimHandle;
use serde_json::Value;

const SCHEMA: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/graph-v1-schema-subset.json"
));

struct Schema(Value);

impl Schema {
    fn props(&self, type_name: &str) -> Vec<(String, String, bool)> {
        let mut out = Vec::new();
        let mut current = Some(type_name.to_string());
        while let Some(name) = current {
            let t = self.0["types"]
                .get(&name)
                .unwrap_or_else(|| panic!("type {name} not in schema"));
            for (prop, spec) in t["props"].as_object().unwrap() {
                out.push((
                    prop.clone(),
                    spec["type"].as_str().unwrap().to_string(),
                    spec["nullable"].as_bool().unwrap(),
                ));
            }
            current = t["base"].as_str().map(str::to_string);
        }
        out
    }

    fn check_object(&self, type_name: &str, object: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(map) = object.as_object() else {
            errors.push(format!(
                "{at}: expected an object of {type_name}, got {object}"
            ));
            return;
        };
        let props = self.props(type_name);
        for (key, value) in map {
            if key.starts_with("@odata.") {
                continue;
            }
            match props.iter().find(|(p, _, _)| p == key) {
                Some((_, edm, nullable)) => {
                    self.check_value(edm, *nullable, value, &format!("{at}.{key}"), errors)
                }
                None => errors.push(format!("{at}: property {key} is not on {type_name}")),
            }
        }
    }

    fn check_value(
        &self,
        edm: &str,
        nullable: bool,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        if value.is_null() {
            if !nullable {
                errors.push(format!("{at}: null for non-nullable {edm}"));
            }
            return;
        }
        if let Some(inner) = edm
            .strip_prefix("Collection(")
            .and_then(|s| s.strip_suffix(')'))
        {
            match value.as_array() {
                Some(items) => items.iter().enumerate().for_each(|(i, item)| {
                    self.check_value(inner, false, item, &format!("{at}[{i}]"), errors)
                }),
                None => errors.push(format!("{at}: expected an array")),
            }
            return;
        }
        let ok = match edm {
            "Edm.String" => value.is_string(),
            "Edm.Boolean" => value.is_boolean(),
            "Edm.Int32" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "Edm.Guid" => value
                .as_str()
                .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
            "Edm.DateTimeOffset" => value
                .as_str()
                .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
            "Edm.TimeOfDay" => value
                .as_str()
                .is_some_and(|s| chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.f").is_ok()),
            "Edm.Binary" | "Edm.Stream" => value.is_string(),
            graph => {
                let name = graph.trim_start_matches("graph.");
                if let Some(values) = self.0["enums"].get(name) {
                    let allowed = values.as_array().unwrap().iter().any(|v| v == value);
                    if !allowed {
                        errors.push(format!("{at}: {value} is not a {name} value"));
                    }
                    return;
                }
                self.check_object(name, value, at, errors);
                return;
            }
        };
        if !ok {
            errors.push(format!("{at}: {value} is not {edm}"));
        }
    }
}

fn method_type(object: &Value) -> String {
    object["@odata.type"]
        .as_str()
        .unwrap()
        .trim_start_matches("#microsoft.graph.")
        .to_string()
}

async fn collect_all(sim: &SimHandle, token: &str, path: &str) -> Vec<Value> {
    let mut next = Some(format!("{}{path}", sim.base_url()));
    let mut out = Vec::new();
    while let Some(url) = next {
        let (status, _, body) = get(sim, token, &url).await;
        assert_eq!(status, 200, "{url}: {body}");
        out.extend(body["value"].as_array().unwrap().iter().cloned());
        next = body
            .get("@odata.nextLink")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    out
}

const USER_SELECT: &str = "id,userPrincipalName,displayName,mail,userType,creationType,accountEnabled,passwordPolicies,lastPasswordChangeDateTime,onPremisesSyncEnabled,onPremisesLastSyncDateTime,onPremisesImmutableId,onPremisesProvisioningErrors,ageGroup,consentProvidedForMinor,legalAgeGroupClassification,proxyAddresses,createdDateTime";
const APP_SELECT: &str = "id,appId,displayName,publisherDomain,signInAudience,verifiedPublisher,certification,disabledByMicrosoftStatus,keyCredentials,passwordCredentials";
const SP_SELECT: &str = "id,appId,displayName,appDisplayName,servicePrincipalType,appOwnerOrganizationId,accountEnabled,verifiedPublisher,disabledByMicrosoftStatus,appRoleAssignmentRequired,keyCredentials,passwordCredentials";

async fn check_tenant(mut tenant: graph_sim::TenantFile, at_least: usize) {
    // This test reads every object's shape, not the limits: the reports bucket (which the
    // per-user method reads share by default) would only slow it down.
    tenant.faults.throttle.auth_methods_use_reports_bucket = false;
    let schema = Schema(serde_json::from_str(SCHEMA).unwrap());
    let all_user_props: Vec<String> = tenant
        .users
        .iter()
        .flat_map(|u| u.as_object().unwrap().keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let sim = sim(tenant).await;
    let token = token(&sim).await;
    let mut errors = Vec::new();
    let mut checked = 0;
    let mut check = |type_name: &str, objects: &[Value], errors: &mut Vec<String>| {
        for o in objects {
            schema.check_object(type_name, o, type_name, errors);
            checked += 1;
        }
    };
    let (_, _, org) = get(&sim, &token, "/v1.0/organization").await;
    check(
        "organization",
        org["value"].as_array().unwrap(),
        &mut errors,
    );
    check(
        "domain",
        &collect_all(&sim, &token, "/v1.0/domains").await,
        &mut errors,
    );
    let users = collect_all(
        &sim,
        &token,
        &format!("/v1.0/users?$top=999&$select={}", all_user_props.join(",")),
    )
    .await;
    check("user", &users, &mut errors);
    check(
        "user",
        &collect_all(
            &sim,
            &token,
            &format!("/v1.0/users?$top=999&$select={USER_SELECT}"),
        )
        .await,
        &mut errors,
    );
    check(
        "user",
        &collect_all(&sim, &token, "/v1.0/users").await,
        &mut errors,
    );
    check(
        "application",
        &collect_all(&sim, &token, "/v1.0/applications").await,
        &mut errors,
    );
    check(
        "application",
        &collect_all(
            &sim,
            &token,
            &format!("/v1.0/applications?$select={APP_SELECT}"),
        )
        .await,
        &mut errors,
    );
    check(
        "servicePrincipal",
        &collect_all(&sim, &token, "/v1.0/servicePrincipals").await,
        &mut errors,
    );
    check(
        "servicePrincipal",
        &collect_all(
            &sim,
            &token,
            &format!("/v1.0/servicePrincipals?$select={SP_SELECT}"),
        )
        .await,
        &mut errors,
    );
    check(
        "userRegistrationDetails",
        &collect_all(
            &sim,
            &token,
            "/v1.0/reports/authenticationMethods/userRegistrationDetails?$top=999",
        )
        .await,
        &mut errors,
    );
    for user in users.iter().take(150) {
        let id = user["id"].as_str().unwrap();
        for method in collect_all(
            &sim,
            &token,
            &format!("/v1.0/users/{id}/authentication/methods"),
        )
        .await
        {
            check(&method_type(&method), &[method], &mut errors);
        }
        for path in [
            "calendar/calendarPermissions",
            "mailFolders/inbox/messageRules",
            "mailboxSettings",
        ] {
            let (status, _, body) = get(&sim, &token, &format!("/v1.0/users/{id}/{path}")).await;
            match (status, path) {
                (404, _) => assert_eq!(body["error"]["code"], "MailboxNotEnabledForRESTAPI"),
                (200, "mailboxSettings") => check("mailboxSettings", &[body], &mut errors),
                (200, "calendar/calendarPermissions") => check(
                    "calendarPermission",
                    body["value"].as_array().unwrap(),
                    &mut errors,
                ),
                (200, _) => check(
                    "messageRule",
                    body["value"].as_array().unwrap(),
                    &mut errors,
                ),
                other => panic!("unexpected {other:?}: {body}"),
            }
        }
    }
    let (_, _, single) = get(
        &sim,
        &token,
        &format!(
            "/v1.0/users/{}?$select={USER_SELECT}",
            users[0]["id"].as_str().unwrap()
        ),
    )
    .await;
    check("user", &[single], &mut errors);
    sim.shutdown().await;
    assert!(
        errors.is_empty(),
        "{} schema violations, first: {:#?}",
        errors.len(),
        &errors[..errors.len().min(20)]
    );
    assert!(checked >= at_least, "only {checked} objects checked");
}

#[tokio::test]
async fn fixture_tenant_matches_the_schema() {
    check_tenant(fixture(), 50).await;
}

#[tokio::test]
async fn generated_tenant_matches_the_schema() {
    check_tenant(graph_sim::generate(600, 3), 3000).await;
}

#[test]
fn validator_reports_wrong_names_types_and_enum_values() {
    let schema = Schema(serde_json::from_str(SCHEMA).unwrap());
    let mut errors = Vec::new();
    let bad = serde_json::json!({"id": "x", "role": "owner", "bogus": 1, "isRemovable": "yes", "emailAddress": {"address": 5}});
    schema.check_object(
        "calendarPermission",
        &bad,
        "calendarPermission",
        &mut errors,
    );
    assert_eq!(errors.len(), 4, "{errors:#?}");
}
