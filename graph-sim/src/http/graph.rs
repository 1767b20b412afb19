//! One Graph v1.0 GET, in the order the real service checks things: bearer token (401), path
//! (400), method (405), permission (403), query options (400/501), throttling (429), then the
//! resource itself (404 or 200). Used for plain requests and for each `$batch` member.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::admission::{admit, cost, LIMIT_WARNING_SHARE};
use super::odata::{self, Collection, PageContext, Query};
use super::routes::{self, MethodList, Resource, Workload};
use super::token::{self, TokenInfo};
use super::{GraphError, Reply, RequestIds};
use crate::latency::{self, RequestKind};
use crate::schema_props as props;
use crate::state::{Shared, TenantData};

/// One Graph call as the handler needs it.
pub(crate) struct GraphCall<'a> {
    pub method: &'a str,
    /// Path below `/v1.0`, still percent-encoded (`/users/abc`).
    pub path: &'a str,
    pub raw_query: &'a str,
    pub bearer: Option<&'a str>,
    /// `ConsistencyLevel: eventual` was sent.
    pub eventual: bool,
    pub ids: RequestIds,
    /// Injected latency, spent while holding any mailbox slot.
    pub latency: Option<Duration>,
}

const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

const USER_NOT_ON_COLLECTION: &[&str] = &[
    "mailboxSettings",
    "aboutMe",
    "birthday",
    "hireDate",
    "interests",
    "mySite",
    "pastProjects",
    "preferredName",
    "responsibilities",
    "schools",
    "skills",
    "print",
];

/// Handles one call and returns the answer (never fails; errors are Graph error replies).
pub(crate) async fn handle(shared: &Arc<Shared>, call: GraphCall<'_>) -> Reply {
    match handle_inner(shared, &call).await {
        Ok(reply) => reply,
        Err(error) => Reply::graph_error(error, &call.ids),
    }
}

async fn handle_inner(shared: &Arc<Shared>, call: &GraphCall<'_>) -> Result<Reply, GraphError> {
    let token = token::authorize(shared, call.bearer)?;
    let resource = routes::resolve(call.path).map_err(|segment| {
        GraphError::new(
            400,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    })?;
    if !call.method.eq_ignore_ascii_case("GET") {
        return Err(GraphError::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.".into(),
        ));
    }
    check_permission(&token, &resource)?;
    let query = odata::parse_query(call.raw_query)?;
    let admitted = admit(shared, &token, &resource, &query)?;
    if let Some(latency) = call.latency {
        tokio::time::sleep(latency).await;
    }
    let context = PageContext {
        base_url: &shared.base_url,
        path: &format!("/v1.0{}", call.path),
        raw_query: call.raw_query,
        eventual: call.eventual,
    };
    let answered = answer(&shared.read(), &resource, &query, &context);
    // An admitted request takes its time whether it finds the resource or not.
    latency::wait(shared, latency_kind(&resource, answered.as_ref().ok())).await;
    let body = as_seen_by_delegate(&token, &resource, answered?);
    let mut reply = Reply::json(200, body).header("OData-Version", "4.0");
    if resource.workload() == Workload::Directory {
        reply = reply.header("x-ms-resource-unit", cost(&resource, &query).to_string());
    }
    if let Some(used) = admitted
        .limit_used
        .filter(|used| *used > LIMIT_WARNING_SHARE)
    {
        reply = reply.header("x-ms-throttle-limit-percentage", format!("{used:.2}"));
    }
    drop(admitted);
    Ok(reply)
}

/// The latency model's kind of this answer: Exchange, or a directory page by its items.
fn latency_kind(resource: &Resource, body: Option<&Value>) -> RequestKind {
    match resource.workload() {
        Workload::Exchange => RequestKind::Exchange,
        _ => RequestKind::Directory {
            items: body
                .and_then(|b| b.get("value"))
                .and_then(Value::as_array)
                .map_or(0, Vec::len),
        },
    }
}

fn denied(resource: &Resource, exchange_message: &str) -> GraphError {
    match resource.workload() {
        Workload::Exchange => GraphError::new(403, "ErrorAccessDenied", exchange_message.into()),
        _ => GraphError::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.".into(),
        ),
    }
}

fn check_permission(token: &TokenInfo, resource: &Resource) -> Result<(), GraphError> {
    let granted = token.has_role(resource.accepted_roles())
        || token.has_scope(resource.accepted_roles())
        || token.has_scope(resource.accepted_scopes());
    if !granted {
        return Err(denied(
            resource,
            "Access is denied. Check credentials and try again.",
        ));
    }
    let listing_calendar = matches!(resource, Resource::CalendarPermissions(_));
    if is_someone_elses_mailbox(token, resource) && !listing_calendar {
        return Err(denied(
            resource,
            "Access is denied. Check credentials and try again.",
        ));
    }
    Ok(())
}

/// True for a delegated token reading another user's mailbox path.
fn is_someone_elses_mailbox(token: &TokenInfo, resource: &Resource) -> bool {
    let Some(signed_in) = &token.user_id else {
        return false;
    };
    resource.workload() == Workload::Exchange
        && resource
            .user_key()
            .is_some_and(|key| !key.eq_ignore_ascii_case(signed_in))
}

/// "Getting the calendar permissions of a calendar on behalf of a recipient or delegate
/// returns an empty calendar permissions collection" (calendarPermission resource type,
/// learn.microsoft.com/graph/api/resources/calendarpermission): 200 with no items, not 403.
fn as_seen_by_delegate(token: &TokenInfo, resource: &Resource, mut body: Value) -> Value {
    if matches!(resource, Resource::CalendarPermissions(_))
        && is_someone_elses_mailbox(token, resource)
    {
        if let Some(map) = body.as_object_mut() {
            map.insert("value".into(), Value::Array(Vec::new()));
        }
    }
    body
}

fn not_found(id: &str) -> GraphError {
    GraphError::new(
        404,
        "Request_ResourceNotFound",
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn answer(
    data: &TenantData,
    resource: &Resource,
    query: &Query,
    context: &PageContext<'_>,
) -> Result<Value, GraphError> {
    let file = &data.file;
    let base = context.base_url;
    match resource {
        Resource::Organization => {
            let select =
                odata::resolve_select(query, props::ORGANIZATION, "microsoft.graph.organization")?;
            Ok(json!({
                "@odata.context": odata::context_url(base, "organization", select.as_deref()),
                "value": [odata::project(&file.organization, select.as_deref())],
            }))
        }
        Resource::Domains => odata::page(&file.domains, &DOMAINS, query, context),
        Resource::Users => odata::page(&file.users, &USERS, query, context),
        Resource::Applications => odata::page(&file.applications, &APPLICATIONS, query, context),
        Resource::ServicePrincipals => odata::page(
            &file.service_principals,
            &SERVICE_PRINCIPALS,
            query,
            context,
        ),
        Resource::Delta(set) => super::delta::answer(data, *set, query, context),
        Resource::RegistrationDetails => {
            if file.faults.non_premium {
                return Err(GraphError::new(
                    403,
                    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                    "Neither tenant is B2C or tenant doesn't have premium license".into(),
                ));
            }
            odata::page(data.registration_rows(), &REGISTRATION, query, context)
        }
        Resource::Domain(id) => {
            let position = data.index.domains.get(&id.to_ascii_lowercase());
            let object = position
                .and_then(|p| file.domains.get(*p))
                .ok_or_else(|| not_found(id))?;
            entity(object, base, &DOMAINS, query)
        }
        Resource::User(key) => {
            let object = data.user(key).ok_or_else(|| not_found(key))?;
            entity(object, base, &USERS, query)
        }
        Resource::Application(id) => {
            let object = data
                .index
                .applications
                .get(id)
                .and_then(|p| file.applications.get(*p));
            entity(
                object.ok_or_else(|| not_found(id))?,
                base,
                &APPLICATIONS,
                query,
            )
        }
        Resource::ServicePrincipal(id) => {
            let object = data
                .index
                .service_principals
                .get(id)
                .and_then(|p| file.service_principals.get(*p));
            entity(
                object.ok_or_else(|| not_found(id))?,
                base,
                &SERVICE_PRINCIPALS,
                query,
            )
        }
        Resource::AuthMethods(key, list) => auth_methods(data, key, *list, base),
        Resource::CalendarPermissions(_)
        | Resource::MessageRules(_)
        | Resource::MailboxSettings(_) => super::graph_mailbox::answer(data, resource, query, base),
    }
}

fn entity(
    object: &Value,
    base: &str,
    collection: &Collection,
    query: &Query,
) -> Result<Value, GraphError> {
    let select = odata::resolve_select(query, collection.props, collection.odata_type)?;
    let projection = select.as_deref().or(collection.default_props);
    let mut body = odata::project(object, projection);
    if let Some(map) = body.as_object_mut() {
        let context = match select.as_deref() {
            Some(s) => format!(
                "{base}/v1.0/$metadata#{}({})/$entity",
                collection.set,
                s.join(",")
            ),
            None => format!("{base}/v1.0/$metadata#{}/$entity", collection.set),
        };
        map.insert("@odata.context".into(), json!(context));
    }
    Ok(body)
}

fn auth_methods(
    data: &TenantData,
    key: &str,
    list: MethodList,
    base: &str,
) -> Result<Value, GraphError> {
    let user = data.user(key).ok_or_else(|| not_found(key))?;
    let id = user.get("id").and_then(Value::as_str).unwrap_or(key);
    let methods = data
        .file
        .authentication_methods
        .get(id)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let wanted = |m: &&Value| match list {
        MethodList::All => true,
        MethodList::Typed(kind) => m
            .get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.trim_start_matches("#microsoft.graph.") == kind),
    };
    let value: Vec<Value> = methods.iter().filter(wanted).cloned().collect();
    let set = match list {
        MethodList::All => "methods".to_string(),
        MethodList::Typed(kind) => kind.replace("AuthenticationMethod", "Methods"),
    };
    Ok(json!({
        "@odata.context": format!("{base}/v1.0/$metadata#users('{id}')/authentication/{set}"),
        "value": value,
    }))
}

pub(crate) const USERS: Collection = Collection {
    set: "users",
    odata_type: "microsoft.graph.user",
    props: props::USER,
    default_props: Some(USER_DEFAULT),
    not_on_collection: USER_NOT_ON_COLLECTION,
    directory: true,
};

const DOMAINS: Collection = Collection {
    set: "domains",
    odata_type: "microsoft.graph.domain",
    props: props::DOMAIN,
    default_props: None,
    not_on_collection: &[],
    directory: true,
};

pub(crate) const APPLICATIONS: Collection = Collection {
    set: "applications",
    odata_type: "microsoft.graph.application",
    props: props::APPLICATION,
    default_props: None,
    not_on_collection: &[],
    directory: true,
};

pub(crate) const SERVICE_PRINCIPALS: Collection = Collection {
    set: "servicePrincipals",
    odata_type: "microsoft.graph.servicePrincipal",
    props: props::SERVICE_PRINCIPAL,
    default_props: None,
    not_on_collection: &[],
    directory: true,
};

const REGISTRATION: Collection = Collection {
    set: "reports/authenticationMethods/userRegistrationDetails",
    odata_type: "microsoft.graph.userRegistrationDetails",
    props: props::USER_REGISTRATION_DETAILS,
    default_props: None,
    not_on_collection: &[],
    directory: false,
};
