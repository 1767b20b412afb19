//! Admission of one Graph call under the simulated limits: the identity resource-unit budget
//! (with `x-ms-throttle-limit-percentage` past 0.8 of it), the identity reports bucket and
//! Exchange's per-mailbox concurrency and request limits, each refused with the 429 Graph
//! sends for it.

use std::sync::Arc;
use std::time::Instant;

use super::odata::Query;
use super::routes::{DeltaSet, Resource, Workload};
use super::throttle::{self, Reason, Throttled};
use super::token::TokenInfo;
use super::GraphError;
use crate::state::{lock, Shared};

/// Identity resource units of one request (graph-client.md section 2.6).
pub(super) fn cost(resource: &Resource, query: &Query) -> u32 {
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
pub(super) const LIMIT_WARNING_SHARE: f64 = 0.8;

/// What admission gave a request: a mailbox slot held until the answer is sent, and for
/// identity requests the share of the client's resource-unit budget used.
pub(super) struct Admitted {
    _slot: Option<MailboxSlot>,
    pub(super) limit_used: Option<f64>,
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

pub(super) fn admit(
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
