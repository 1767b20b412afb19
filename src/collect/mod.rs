//! Collection: builds one tenant's [`TenantSnapshot`] from Graph and DNS, at the lowest
//! request count Graph allows (findings-spec.md section 2.2, graph-client.md section 5.2).
//!
//! Every data source succeeds, fails or is refused on its own; a failure becomes an
//! [`Unavailable`](crate::snapshot::Unavailable) reason in the snapshot, never an empty "all
//! clear". Only a failed token (or cancellation) fails the whole scan. Token caches live in
//! the [`CollectContext`] across scans.

mod context;
pub mod delta;
pub mod directory;
pub mod dns;
pub mod held_report;
mod listed;
pub mod own_credential;
mod per_user;
pub mod permissions;
pub mod probe;
pub mod progress;
mod read_times;
mod registration;
pub mod source;
pub mod sweep;

use crate::config::TenantConfig;
use crate::graph::{AuthError, GraphClient, Pool};
use crate::snapshot::{Section, TenantSnapshot, Unavailable};
use delta::{DeltaCollection, DirectoryCache, UserPages};
use per_user::{page_users, queue, run_queue, section_of, CalendarReader, Kind, PerUserData};
use progress::ScanProgress;
use std::collections::BTreeMap;
use sweep::Sweep;
use tokio_util::sync::CancellationToken;

pub use context::{CollectContext, CollectError};
pub use registration::has_relevant_method;

/// The result of collecting one tenant.
#[derive(Debug, Clone)]
pub struct CollectReport {
    /// What was collected; failed sections carry their reason.
    pub snapshot: TenantSnapshot,
    /// A whole-scan failure such as authentication, in words with the AADSTS code; no secrets.
    pub error: Option<String>,
}

/// What a swept collection read, for the state file.
#[derive(Debug, Clone, Default)]
pub struct SweepWrites {
    /// This scan's successful per-user reads (their items are in the snapshot).
    pub reads: Vec<sweep::FreshRead>,
    /// Users gone from a complete listing, whose stored reads are forgotten.
    pub deleted: Vec<String>,
    /// How current each per-user section is.
    pub coverage: Vec<sweep::Coverage>,
}

/// Collects one tenant, reading every user's per-user data (the `scan` command). Never
/// fails: problems are in the snapshot's sections, or in `error` when the scan could not run
/// at all.
pub async fn collect_tenant(
    ctx: &CollectContext,
    tenant: &TenantConfig,
    cancel: &CancellationToken,
) -> CollectReport {
    collect_tenant_swept(ctx, tenant, cancel, None, None)
        .await
        .0
}

/// Collects one tenant; with a `sweep` (the daemon), per-user data is read only where the
/// sweep's rules call for it and merged with the stored reads. With a `cache` of the directory (the
/// daemon), users, applications and service principals come through delta queries
/// ([`delta`]); its completed rounds are left in it for the state file. The writes are `None`
/// when the user list did not arrive complete.
pub async fn collect_tenant_swept(
    ctx: &CollectContext,
    tenant: &TenantConfig,
    cancel: &CancellationToken,
    sweep: Option<&mut Sweep>,
    cache: Option<&DirectoryCache>,
) -> (CollectReport, Option<SweepWrites>) {
    let failed = |err: String| {
        tracing::warn!(tenant = %tenant.name, error = %err, "Collection failed");
        let report = CollectReport {
            snapshot: TenantSnapshot::empty(&tenant.tenant_id, &err),
            error: Some(err),
        };
        (report, None)
    };
    let provider = match ctx.token_provider(tenant) {
        Ok(p) => p,
        Err(err) => return failed(err.to_string()),
    };
    let first_token = tokio::select! {
        () = cancel.cancelled() => Err(AuthError::Cancelled),
        token = provider.token() => token,
    };
    let calendars = match first_token {
        Ok(token) => CalendarReader::of(tenant, token.bearer()),
        Err(err) => {
            ctx.forget(tenant);
            return failed(err.to_string());
        }
    };
    let scan_cancel = cancel.child_token();
    let hint = provider.secret_hint();
    let client = ctx.client(tenant, provider, scan_cancel.clone());
    let started = crate::scan::clock_now();
    let (mut snapshot, writes) = collect_sections(
        ctx,
        tenant,
        &client,
        &scan_cancel,
        (sweep, cache, &calendars),
    )
    .await;
    let coverage = writes.as_ref().map_or(&[][..], |w| &w.coverage[..]);
    read_times::stamp(&mut snapshot, started, coverage);
    record_secret_expiry(ctx, tenant, &snapshot, hint.as_deref());
    if cancel.is_cancelled() {
        return failed("scan cancelled".to_owned());
    }
    let report = CollectReport {
        snapshot,
        error: None,
    };
    (report, writes)
}

/// Sets the credential-expiry metric of a client-secret tenant from its own application's
/// secrets ([`own_credential`]); leaves it alone when that cannot be seen.
fn record_secret_expiry(
    ctx: &CollectContext,
    tenant: &TenantConfig,
    snapshot: &TenantSnapshot,
    hint: Option<&str>,
) {
    let (Some(hint), Ok(applications)) = (hint, &snapshot.applications) else {
        return;
    };
    if let Some(end) = own_credential::secret_expiry(applications, &tenant.client_id, hint) {
        ctx.metrics
            .credential_expiry
            .with_label_values(&[&tenant.name])
            .set(end.timestamp());
    }
}

async fn collect_sections(
    ctx: &CollectContext,
    tenant: &TenantConfig,
    client: &GraphClient,
    cancel: &CancellationToken,
    (sweep, cache, calendars): (Option<&mut Sweep>, Option<&DirectoryCache>, &CalendarReader),
) -> (TenantSnapshot, Option<SweepWrites>) {
    let progress = ctx.progress(&tenant.name);
    let domains_and_dns = async {
        let domains = directory::domains(client).await;
        let config = ctx.config();
        let dns = dns::dns_answers(&config.dns, &config.checks, &domains, cancel).await;
        (domains, dns)
    };
    let (organization, (domains, dns), applications, service_principals, users) = tokio::join!(
        directory::organization(client),
        domains_and_dns,
        apps_section(
            (client, cache),
            DeltaCollection::Applications,
            directory::applications(client)
        ),
        apps_section(
            (client, cache),
            DeltaCollection::ServicePrincipals,
            directory::service_principals(client)
        ),
        users_and_per_user(ctx, client, (sweep, cache), calendars, &progress),
    );
    let mut snapshot = TenantSnapshot::empty(&tenant.tenant_id, "not collected");
    snapshot.organization = organization;
    snapshot.domains = domains;
    (snapshot.dns, snapshot.dns_hosts) = dns;
    snapshot.applications = applications;
    snapshot.service_principals = service_principals;
    snapshot.users = users.users;
    snapshot.registration_details = users.registration;
    snapshot.auth_methods = users.auth_methods;
    snapshot.calendar_permissions = users.calendar;
    snapshot.message_rules = users.rules;
    count_unreadable_mailboxes(ctx, tenant, &snapshot);
    (snapshot, users.writes)
}

/// Applications or service principals: through the delta cache when there is one, else the
/// `listing`.
async fn apps_section<T: serde::de::DeserializeOwned + delta::DirectoryObject>(
    (client, cache): (&GraphClient, Option<&DirectoryCache>),
    collection: DeltaCollection,
    listing: impl std::future::Future<Output = Section<Vec<T>>>,
) -> Section<Vec<T>> {
    match cache {
        Some(cache) => cache
            .list(client, collection)
            .await
            .map_err(|e| e.to_unavailable(directory::APPLICATION_PERMISSION)),
        None => listing.await,
    }
}

/// Sets `m365_posture_mailboxes_unreadable` from this scan's mailbox sections: each user
/// counted once, under the reason of their first unreadable mailbox read.
fn count_unreadable_mailboxes(ctx: &CollectContext, tenant: &TenantConfig, snap: &TenantSnapshot) {
    let mut reasons: BTreeMap<&str, &str> = BTreeMap::new();
    let calendar = snap.calendar_permissions.iter().flatten();
    let rules = snap.message_rules.iter().flatten();
    let results = calendar
        .map(|(user, r)| (user, r.as_ref().err()))
        .chain(rules.map(|(user, r)| (user, r.as_ref().err())));
    for (user, err) in results {
        if let Some(Unavailable::NotReadable { reason }) = err {
            reasons.entry(&**user).or_insert(reason.as_str());
        }
    }
    for reason in per_user::NOT_READABLE_REASONS {
        let count = reasons.values().filter(|r| **r == reason).count();
        ctx.metrics
            .mailboxes_unreadable
            .with_label_values(&[&tenant.name, reason])
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

struct UserSections {
    users: Section<Vec<crate::snapshot::User>>,
    registration: Section<held_report::ReportRows>,
    auth_methods: Section<crate::snapshot::PerUser<crate::snapshot::AuthMethod>>,
    calendar: Section<crate::snapshot::PerUser<crate::snapshot::CalendarPermission>>,
    rules: Section<crate::snapshot::PerUser<crate::snapshot::MessageRule>>,
    writes: Option<SweepWrites>,
}

async fn users_and_per_user(
    ctx: &CollectContext,
    client: &GraphClient,
    (sweep, cache): (Option<&mut Sweep>, Option<&DirectoryCache>),
    calendars: &CalendarReader,
    progress: &ScanProgress,
) -> UserSections {
    let (exchange_tx, exchange_rx) = queue();
    let (directory_tx, directory_rx) = queue();
    let (feed, listed) = listed::listing();
    let config = ctx.config();
    let scan = &config.scan;
    let shared = sweep.as_deref();
    let (users, (registration, fallback), exchange, directory) = tokio::join!(
        page_users(
            UserPages::new(client, cache),
            exchange_tx,
            feed,
            (shared, calendars),
            progress
        ),
        registration::registration_and_auth_jobs(client, directory_tx, listed, shared),
        run_queue(
            client,
            exchange_rx,
            (Pool::Exchange, scan.mailbox_concurrency),
            shared.map(Sweep::until),
            progress,
        ),
        run_queue(
            client,
            directory_rx,
            (Pool::Reports, scan.directory_concurrency),
            shared.map(Sweep::until),
            progress,
        ),
    );
    tracing::debug!(registration = %registration::describe(&registration), fallback, "Per-user reads done");
    let mut data = PerUserData {
        auth_methods: directory.auth_methods,
        calendar: exchange.calendar,
        rules: exchange.rules,
    };
    let mut writes = None;
    if let (Some(sweep), Ok(listed)) = (sweep, &users) {
        let report = registration.as_ref().ok().map(|rows| rows.as_slice());
        let merged = sweep::merge(sweep, listed, (report, calendars), data).await;
        data = merged.data;
        writes = Some(SweepWrites {
            reads: merged.writes,
            deleted: merged.deleted,
            coverage: merged.coverage,
        });
    }
    let auth_methods = match (&users, fallback) {
        (Err(err), true) => Err(users_missing(err)),
        _ => section_of(data.auth_methods, Kind::AuthMethods),
    };
    UserSections {
        auth_methods,
        calendar: match &users {
            Ok(listed) => calendars
                .complete(listed, data.calendar)
                .and_then(|map| section_of(map, Kind::Calendar)),
            Err(err) => Err(users_missing(err)),
        },
        rules: match &users {
            Ok(_) => section_of(data.rules, Kind::Rules),
            Err(err) => Err(users_missing(err)),
        },
        users,
        registration,
        writes,
    }
}

/// A per-user section cannot be complete without the user list: it fails with the list's
/// reason.
fn users_missing(err: &Unavailable) -> Unavailable {
    err.clone()
}
