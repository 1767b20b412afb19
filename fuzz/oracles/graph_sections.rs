//! Graph JSON decoding of every snapshot section: the input is one Graph answer body. It is
//! split into a collection page the way paging does, each item is decoded as every section's
//! type (organization, domains, users, registration details, authentication methods, calendar
//! permissions, inbox rules, applications, service principals), the items that decode fill a
//! snapshot, and every check runs on it. A whole stored snapshot is tried too. Nothing may
//! panic: a malformed answer is an error for its section only.

use chrono::{TimeZone, Utc};
use m365_posture::checks::{evaluate_all, CheckOptions, EvalCtx};
use m365_posture::graph::paging::split_page;
use m365_posture::snapshot::{
    Application, AuthMethod, CalendarPermission, Domain, MessageRule, Organization, PerUser,
    ServicePrincipal, TenantSnapshot, User, UserRegistrationDetails,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

const TYPED_HINTS: [Option<&str>; 2] = [None, Some("#microsoft.graph.fido2AuthenticationMethod")];

fn decoded<T: DeserializeOwned>(items: &[Value]) -> Vec<T> {
    items
        .iter()
        .filter_map(|item| serde_json::from_value(item.clone()).ok())
        .collect()
}

fn per_user<T>(items: Vec<T>) -> PerUser<T> {
    PerUser::from([("u1".into(), Ok(items))])
}

fn check_all(snapshot: &TenantSnapshot) {
    let options = CheckOptions::default();
    let now = Utc
        .timestamp_opt(1_772_701_200, 0)
        .single()
        .unwrap_or_default();
    let ctx = EvalCtx {
        now,
        options: &options,
    };
    let _ = evaluate_all(snapshot, &ctx);
}

/// One input: panics (assertion failures included) are the findings.
pub fn run(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(stored) = serde_json::from_value::<TenantSnapshot>(body.clone()) {
        check_all(&stored);
    }
    let Ok((items, _next)) = split_page(body) else {
        return;
    };
    let mut snapshot = TenantSnapshot::empty("tenant", "not in this input");
    if let Some(org) = decoded::<Organization>(&items).pop() {
        snapshot.organization = Ok(org);
    }
    snapshot.domains = Ok(decoded::<Domain>(&items));
    snapshot.users = Ok(decoded::<User>(&items));
    snapshot.registration_details = Ok(std::sync::Arc::new(decoded::<UserRegistrationDetails>(
        &items,
    )));
    let methods = TYPED_HINTS
        .iter()
        .flat_map(|hint| {
            items
                .iter()
                .filter_map(|item| AuthMethod::from_graph(item.clone(), *hint).ok())
        })
        .collect();
    snapshot.auth_methods = Ok(per_user(methods));
    snapshot.calendar_permissions = Ok(per_user(decoded::<CalendarPermission>(&items)));
    snapshot.message_rules = Ok(per_user(decoded::<MessageRule>(&items)));
    snapshot.applications = Ok(decoded::<Application>(&items));
    snapshot.service_principals = Ok(decoded::<ServicePrincipal>(&items));
    check_all(&snapshot);
}
