//! One Graph v1.0 GET, in the order the real service checks things: bearer token (401), path
//! (400), method (405), permission (403), query options (400/501), throttling (429), then the
//! resource itself (404 or 200). Used for plain requests and for each `$batch` member.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::odata::{self, Collection, PageContext, Query};
use super::routes::{self, DeltaSet, MethodList, Resource, Workload};
use super::throttle::{self, Reason, Throttled};
use super::token::{self, TokenInfo};
use super::{GraphError, Reply, RequestIds};
use crate::latency::{self, RequestKind};
use crate::schema_props as props;
use crate::state::{lock, Shared, TenantData};

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

/// Identity resource units of one request (graph-client.md section 2.6).
fn cost(resource: &Resource, query: &Query) -> u32 {
    let base: u32 = match resource {
        // A delta page costs what a page of the listing costs (no separate figure is published).
        Resource::Users
        | Resource::Applications
        | Resource::Delta(DeltaSet::Users | DeltaSet::Applications) => 2,
        _ => 1,
    };
    let select = u32::from(query.select.is_some());
    let small_top = query
        .top
        .as_deref()
        .and_then(|t| t.parse::<u32>().ok())
        .is_some_and(|t| t < 20);
    base.saturating_sub(select + u32::from(small_top)).max(1)
}

/// Share of the identity budget past which answers carry `x-ms-throttle-limit-percentage`:
/// "Returned only when the application consumed more than 0.8 of its limit. The value ranges
/// from 0.8 to 1.8 and is a percentage of the use of the limit"
/// (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>,
/// "Regular responses requests").
const LIMIT_WARNING_SHARE: f64 = 0.8;

/// What admission gave a request: a mailbox slot held until the answer is sent, and for
/// identity requests the share of the client's resource-unit budget used.
struct Admitted {
    _slot: Option<MailboxSlot>,
    limit_used: Option<f64>,
}

/// Releases a mailbox concurrency slot when the request ends.
struct MailboxSlot {
    shared: Arc<Shared>,
    client: String,
    mailbox: String,
}

impl Drop for MailboxSlot {
    fn drop(&mut self) {
        lock(&self.shared.throttle).release(&self.client, &self.mailbox);
    }
}

fn admit(
    shared: &Arc<Shared>,
    token: &TokenInfo,
    resource: &Resource,
    query: &Query,
) -> Result<Admitted, GraphError> {
    let (settings, budget, tenant_id) = {
        let data = shared.read();
        (
            data.file.faults.throttle.clone(),
            data.identity_budget(),
            data.file.tenant_id.clone(),
        )
    };
    if !settings.enabled {
        return Ok(Admitted {
            _slot: None,
            limit_used: None,
        });
    }
    let now = Instant::now();
    let mut state = lock(&shared.throttle);
    let reports_bucket = matches!(resource, Resource::RegistrationDetails)
        || (settings.auth_methods_use_reports_bucket
            && matches!(resource, Resource::AuthMethods(..)));
    let client = token.client_id.as_str();
    let outcome = match resource.workload() {
        Workload::Exchange => {
            let mailbox = resource.user_key().unwrap_or_default().to_ascii_lowercase();
            state
                .mailbox(client, &mailbox, &settings, now)
                .map(|()| Admitted {
                    _slot: Some(MailboxSlot {
                        shared: Arc::clone(shared),
                        client: client.to_string(),
                        mailbox,
                    }),
                    limit_used: None,
                })
        }
        _ if reports_bucket => state
            .reports(client, settings.reports_per_10s, &settings, now)
            .map(|()| Admitted {
                _slot: None,
                limit_used: None,
            }),
        _ => state
            .identity(client, budget, cost(resource, query), &settings, now)
            .map(|used| Admitted {
                _slot: None,
                limit_used: settings.limit_percentage_header.then_some(used),
            }),
    };
    drop(state);
    outcome.map_err(|refused| throttled(refused, client, &tenant_id, &settings, shared))
}

fn throttled(
    refused: Throttled,
    client: &str,
    tenant_id: &str,
    settings: &crate::faults::ThrottleSettings,
    shared: &Shared,
) -> GraphError {
    let fractional = settings.fractional_retry_after && {
        use rand::Rng;
        let n = shared.occurrence("throttle-format");
        crate::faults::decision_rng(0, "retry-after", n).gen_bool(0.3)
    };
    let retry_after = throttle::retry_after_header(refused.retry_after, fractional);
    let error = match refused.reason {
        Reason::ResourceUnits => GraphError::new(
            429,
            "TooManyRequests",
            format!("Too many requests from Identifier:{client}+{tenant_id} under category:aadgraph.app.tenant_large. Please try again later."),
        )
        .with_header("x-ms-throttle-scope", format!("Tenant_Application/Read/{client}/{tenant_id}"))
        .with_header("x-ms-throttle-information", "ResourceUnitLimitExceeded".into()),
        Reason::Reports => GraphError::new(429, "TooManyRequests", "Please retry again later.".into()),
        Reason::MailboxConcurrency => GraphError::new(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.".into(),
        ),
        Reason::MailboxRequests => GraphError::new(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxRequest limit.".into(),
        ),
    };
    error.with_header("Retry-After", retry_after)
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
