//! The 29 checks: pure functions from a [`TenantSnapshot`] and a given `now` to findings.
//!
//! No I/O, no clock, no async. One file per category. A check whose input section is
//! unavailable returns [`Outcome::Skipped`] with the reason; inside a check, resources whose
//! data failed (one mailbox's 403, one domain's SERVFAIL) are listed in
//! [`Evaluation::failed_resources`] so reconcile keeps their instances as they were.

pub mod apps;
pub mod calendar;
pub mod dmarc;
pub mod domains;
pub mod forwarding;
pub mod internal;
pub mod options;
pub mod resource_reasons;
pub mod spf;
pub mod users;

#[cfg(test)]
mod test_fixtures;

use crate::findings::{Finding, FindingId};
use crate::snapshot::{SectionName, TenantSnapshot};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

pub use options::CheckOptions;
pub use resource_reasons::{ReasonsBuilder, ResourceReasons};

/// What a check is given besides the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct EvalCtx<'a> {
    /// The scan's start time; the only clock a check sees.
    pub now: DateTime<Utc>,
    /// Thresholds and switches from config.
    pub options: &'a CheckOptions,
}

/// The result of one check that ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Instances found.
    pub findings: Vec<Finding>,
    /// Resource-id prefixes whose data failed: instances whose resource id equals one of these
    /// or starts with it followed by `/` keep their stored state. Each entry comes with the reason.
    pub failed_resources: ResourceReasons,
    /// Resource-id prefixes (user ids) the check could not evaluate although their data source
    /// worked, with the reason: a mailbox Graph cannot read (`mailbox_not_enabled_for_rest_api`),
    /// a user whose methods were not read because the registration report listed no relevant
    /// method. Their instances keep their stored state, as under failed resources, but the
    /// check is not in error; the scan JSON counts them by reason.
    pub unevaluated: ResourceReasons,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The check ran (possibly with some failed resources).
    Evaluated(Evaluation),
    /// The check's input did not arrive; nothing may be resolved. The reason is for humans and
    /// the `checks[].reason` field (`permission_denied: MailboxSettings.Read`).
    Skipped {
        /// Why.
        reason: String,
    },
}

/// Runs every check on the snapshot, in catalogue order.
pub fn evaluate_all(snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Vec<(FindingId, Outcome)> {
    FindingId::ALL
        .iter()
        .map(|id| (*id, evaluate(*id, snapshot, ctx)))
        .collect()
}

/// The per-user sections [`evaluate_releasing`] frees once no check is left to read them, in
/// the order their checks run: together they are most of a large tenant's snapshot.
const RELEASED_EARLY: [SectionName; 4] = [
    SectionName::RegistrationDetails,
    SectionName::AuthMethods,
    SectionName::CalendarPermissions,
    SectionName::MessageRules,
];

/// Runs every check as [`evaluate_all`] does, with the same outcomes in catalogue order, but
/// takes the snapshot and frees each per-user section after the last check that reads it
/// ([`inputs`]). The checks that read them run first, so at 100,000 users the findings of the
/// user-list checks never share memory with the methods, calendars and rules (issue 10).
pub fn evaluate_releasing(
    mut snapshot: TenantSnapshot,
    ctx: &EvalCtx<'_>,
) -> Vec<(FindingId, Outcome)> {
    let first_released = |id: &FindingId| {
        RELEASED_EARLY
            .iter()
            .position(|section| inputs(*id).contains(section))
            .unwrap_or(RELEASED_EARLY.len())
    };
    let mut order: Vec<FindingId> = FindingId::ALL.to_vec();
    order.sort_by_key(first_released);
    let mut readers: BTreeMap<SectionName, usize> = BTreeMap::new();
    for section in order.iter().flat_map(|id| inputs(*id)) {
        *readers.entry(*section).or_default() += 1;
    }
    let mut outcomes: Vec<(FindingId, Outcome)> = Vec::with_capacity(order.len());
    for id in order {
        outcomes.push((id, evaluate(id, &snapshot, ctx)));
        for section in inputs(id) {
            let left = readers.entry(*section).or_default();
            *left = left.saturating_sub(1);
            if *left == 0 && RELEASED_EARLY.contains(section) {
                snapshot.release(*section);
            }
        }
    }
    outcomes.sort_by_key(|(id, _)| *id);
    outcomes
}

/// Runs one check.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    use FindingId::*;
    match id {
        Fido2Unattested
        | OnpremProvisioningError
        | PasswordExpirationDisabled
        | PasswordNotChanged
        | StrongPasswordDisabled
        | OnpremSyncDisabled
        | WhfbWeakKey
        | OnpremSyncStale
        | NotLegalAdult
        | ProxyAddressesConfigured
        | AccountDisabled
        | TapReusable
        | TapLongLived => users::evaluate(id, snapshot, ctx),
        CalendarSharedExternally => calendar::evaluate(id, snapshot, ctx),
        AppNotMicrosoftCertified
        | AppNotPublisherAttested
        | AppDisabledByMicrosoft
        | AppCertificationExpiring => apps::evaluate(id, snapshot, ctx),
        SpfAllowsAny
        | SpfMissing
        | SpfInvalid
        | DmarcMissing
        | DmarcNotEnforced
        | DmarcSubdomainsNotEnforced
        | DmarcPartial
        | DomainNotVerified => domains::evaluate(id, snapshot, ctx),
        RuleForwardsExternalAttachment | RuleForwardsExternal | RuleRedirectsExternal => {
            forwarding::evaluate(id, snapshot, ctx)
        }
    }
}

/// The snapshot sections a check reads; its data is as old as the oldest of them
/// ([`TenantSnapshot::oldest_read`]).
pub fn inputs(id: FindingId) -> &'static [SectionName] {
    use FindingId::*;
    use SectionName::*;
    match id {
        OnpremProvisioningError
        | PasswordExpirationDisabled
        | PasswordNotChanged
        | StrongPasswordDisabled
        | OnpremSyncDisabled
        | NotLegalAdult
        | ProxyAddressesConfigured
        | AccountDisabled => &[Users],
        OnpremSyncStale => &[Users, Organization],
        Fido2Unattested | WhfbWeakKey | TapReusable | TapLongLived => {
            &[Users, RegistrationDetails, AuthMethods]
        }
        CalendarSharedExternally => &[Users, Domains, CalendarPermissions],
        AppNotMicrosoftCertified | AppNotPublisherAttested | AppDisabledByMicrosoft => {
            &[Organization, Applications, ServicePrincipals]
        }
        AppCertificationExpiring => &[Applications],
        SpfAllowsAny
        | SpfMissing
        | SpfInvalid
        | DmarcMissing
        | DmarcNotEnforced
        | DmarcSubdomainsNotEnforced
        | DmarcPartial => &[Domains, Dns],
        DomainNotVerified => &[Domains],
        RuleForwardsExternalAttachment | RuleForwardsExternal | RuleRedirectsExternal => {
            &[Users, Domains, MessageRules]
        }
    }
}

/// The outcome of a check that is not written yet.
pub(crate) fn not_implemented() -> Outcome {
    Outcome::Skipped {
        reason: "not_implemented".to_owned(),
    }
}
