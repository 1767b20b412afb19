//! Per-user collection: users are paged with `$top=999` and each page is streamed into two
//! `$batch` queues of 20 — Exchange (calendar permissions and inbox rules of users with a
//! mailbox) and directory (authentication methods of users the registration report shows with
//! FIDO2, Windows Hello or a TAP; of every user when the report is refused).
//!
//! Only users with `mail` are asked for mailbox data (a user without mail has no mailbox). A
//! 404 on a per-user call is [`Unavailable::NotReadable`], never an empty answer: Exchange's
//! `MailboxNotEnabledForRESTAPI` means the mailbox is inactive, soft-deleted or hosted on
//! premises (hybrid Exchange; learn.microsoft.com/graph/api/resources/mailbox-api-overview), so
//! nothing was read. Other failures stay with that user; a section fails as a whole only when
//! the user list failed or every user asked was refused (the permission is missing).

mod outcome;

use super::delta::UserPages;
use super::listed::ListingFeed;
use super::permissions;
use super::progress::ScanProgress;
use super::sweep::Sweep;
use crate::config::{TenantAuth, TenantConfig};
use crate::graph::batch::{get_batch, MAX_BATCH};
use crate::graph::paging::{split_page, Pager};
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::{
    AuthMethod, CalendarPermission, MessageRule, PerUser, Section, Unavailable, User, UserId,
};
use chrono::{DateTime, Utc};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
pub(crate) use outcome::{section_of, NOT_READABLE_REASONS};
use outcome::{store, Failed};
use serde_json::Value;
use tokio::time::Instant;

/// Jobs buffered between the user pager and a batch queue.
const QUEUE_DEPTH: usize = 4 * MAX_BATCH;

/// One per-user read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `/users/{id}/authentication/methods`.
    AuthMethods,
    /// `/users/{id}/calendar/calendarPermissions`.
    Calendar,
    /// `/users/{id}/mailFolders/inbox/messageRules`.
    Rules,
}

impl Kind {
    /// The name stored in the state file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::AuthMethods => "auth_methods",
            Self::Calendar => "calendar",
            Self::Rules => "rules",
        }
    }

    /// The kind of a stored name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Self::AuthMethods, Self::Calendar, Self::Rules]
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    fn path(self, user: &str) -> String {
        match self {
            Self::AuthMethods => format!("/users/{user}/authentication/methods"),
            Self::Calendar => format!("/users/{user}/calendar/calendarPermissions"),
            Self::Rules => format!("/users/{user}/mailFolders/inbox/messageRules"),
        }
    }

    /// The permission a 403 on this read means is missing.
    pub(crate) fn permission(self) -> &'static str {
        match self {
            Self::AuthMethods => permissions::AUTH_METHODS,
            Self::Calendar => permissions::CALENDARS,
            Self::Rules => permissions::MAILBOX_SETTINGS,
        }
    }
}

/// A per-user read waiting in a queue.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    user: UserId,
    kind: Kind,
}

/// What the per-user phase collected.
#[derive(Debug, Default)]
pub(crate) struct PerUserData {
    pub auth_methods: PerUser<AuthMethod>,
    pub calendar: PerUser<CalendarPermission>,
    pub rules: PerUser<MessageRule>,
}

/// Whose calendar permissions the token can list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CalendarReader {
    /// Application permissions: every mailbox.
    Application,
    /// Delegated: Graph lists calendar permissions "on behalf of only the calendar owner", and
    /// answers a delegate with an empty collection (calendarPermission resource type,
    /// learn.microsoft.com/graph/api/resources/calendarpermission). Only the signed-in user's
    /// own calendar is read; an empty answer for anyone else would be no evidence.
    Delegate {
        /// The signed-in user's object id (`oid` of the token), when known.
        owner: Option<String>,
    },
}

/// Why a delegated scan did not read a calendar.
const DELEGATE_REASON: &str = "delegated_not_calendar_owner";

impl CalendarReader {
    /// The reader for `tenant`, with the signed-in user from the access token.
    pub(crate) fn of(tenant: &TenantConfig, token: &str) -> Self {
        match tenant.auth {
            TenantAuth::Delegated => Self::Delegate {
                owner: permissions::signed_in_user(token),
            },
            _ => Self::Application,
        }
    }

    pub(crate) fn reads(&self, user: &str) -> bool {
        match self {
            Self::Application => true,
            Self::Delegate { owner } => owner.as_deref() == Some(user),
        }
    }

    /// The calendar section: in delegated mode every other mailbox user is unevaluated, and the
    /// check is skipped when the signed-in user's own calendar was not read either.
    pub(crate) fn complete(
        &self,
        listed: &[User],
        mut calendar: PerUser<CalendarPermission>,
    ) -> Section<PerUser<CalendarPermission>> {
        if *self == Self::Application {
            return Ok(calendar);
        }
        for user in listed
            .iter()
            .filter(|u| has_mailbox(u) && !self.reads(&u.id))
        {
            let reason = DELEGATE_REASON.to_owned();
            let unread = Err(Unavailable::NotReadable { reason });
            calendar.insert(user.id.clone(), unread);
        }
        if !calendar.values().any(Result::is_ok) {
            return Err(Unavailable::NotApplicable {
                detail: "delegated mode: Graph lists a calendar's permissions only to its owner (a delegate gets an empty list), and the signed-in user's own calendar was not read".to_owned(),
            });
        }
        Ok(calendar)
    }
}

/// Users whose mailbox data is asked for: members with `mail`. Guests have no mailbox in this
/// tenant (their `mail` is their home address) and the mailbox checks skip them.
pub(crate) fn has_mailbox(user: &User) -> bool {
    user.mail.is_some() && !user.is_guest()
}

/// Pages the users (`/users`, or the delta-synchronised list), feeding mailbox users to the Exchange queue and every user id to `feed`
/// (method reads go to listed users only). With a `sweep`, only due mailbox
/// reads are queued: never-read users as they are listed, aged ones oldest first after it.
pub(crate) async fn page_users(
    mut pages: UserPages<'_>,
    mut exchange: mpsc::Sender<Job>,
    feed: ListingFeed,
    (sweep, calendars): (Option<&Sweep>, &CalendarReader),
    progress: &ScanProgress,
) -> Section<Vec<User>> {
    let mut users = Vec::new();
    let mut aged = Vec::new();
    loop {
        let page = match pages.next_page().await {
            Ok(Some(page)) => page,
            Ok(None) => break,
            Err(err) => return Err(err.to_unavailable("User.Read.All")),
        };
        progress.users_listed(page.len());
        // The page's users are handed over before its mailbox reads are queued: the Exchange
        // queue is bounded, and method reads waiting for a listed user must not move at
        // Exchange's pace (a delta round hands over every user in this one page).
        for user in &page {
            feed.user_listed(&user.id);
        }
        if pages.exhausted() {
            feed.complete();
        }
        queue_mailbox_reads(&page, &mut exchange, (sweep, calendars), &mut aged).await;
        // A delta round hands over every user in one page: it becomes the list as it is,
        // rather than be copied into another 26 MB at 100,000 users.
        if users.is_empty() {
            users = page;
        } else {
            users.extend(page);
        }
    }
    feed.complete();
    aged.sort_by_key(|(read_at, _)| *read_at);
    for (_, job) in aged {
        let _ = exchange.send(job).await;
    }
    Ok(users)
}

/// Queues the due mailbox reads of a page's users: never-read ones now, aged ones into `aged`.
async fn queue_mailbox_reads(
    page: &[User],
    exchange: &mut mpsc::Sender<Job>,
    (sweep, calendars): (Option<&Sweep>, &CalendarReader),
    aged: &mut Vec<(DateTime<Utc>, Job)>,
) {
    for user in page.iter().filter(|u| has_mailbox(u)) {
        let calendar = calendars.reads(&user.id).then_some(Kind::Calendar);
        for kind in calendar.into_iter().chain([Kind::Rules]) {
            let job = Job {
                user: user.id.clone(),
                kind,
            };
            match sweep.map_or(Some(None), |s| s.mailbox_due(&user.id, kind)) {
                // A closed queue means the scan is ending; the section reports it.
                Some(None) => {
                    let _ = exchange.send(job).await;
                }
                Some(Some(read_at)) => aged.push((read_at, job)),
                None => {}
            }
        }
    }
}

/// Queues authentication-method reads for `users`.
pub(crate) async fn queue_auth_methods(
    queue: &mut mpsc::Sender<Job>,
    users: impl IntoIterator<Item = UserId>,
) {
    for user in users {
        let _ = queue
            .send(Job {
                user,
                kind: Kind::AuthMethods,
            })
            .await;
    }
}

/// A bounded job queue.
pub(crate) fn queue() -> (mpsc::Sender<Job>, mpsc::Receiver<Job>) {
    mpsc::channel(QUEUE_DEPTH)
}

/// Drains a job queue in batches of 20 (of the reports bucket's window for that pool),
/// `concurrency` batches in flight, into `data`. Jobs still queued at `until` are not sent:
/// they are stored as not collected (pending in the sweep), which resolves nothing.
pub(crate) async fn run_queue(
    client: &GraphClient,
    jobs: mpsc::Receiver<Job>,
    (pool, concurrency): (Pool, usize),
    until: Option<Instant>,
    progress: &ScanProgress,
) -> PerUserData {
    let mut data = PerUserData::default();
    let mut batches = jobs
        .chunks(client.batch_limit(pool, MAX_BATCH))
        .inspect(|jobs| progress.reads_taken(jobs.len()))
        .map(|jobs| async move {
            let pending = |jobs: Vec<Job>| -> Vec<(Job, Result<Vec<Value>, Failed>)> {
                jobs.into_iter()
                    .map(|job| (job, Err(Failed::Pending)))
                    .collect()
            };
            let Some(until) = until else {
                return read_batch(client, jobs, pool).await;
            };
            if Instant::now() >= until {
                return pending(jobs);
            }
            // A batch waiting for the reports bucket past the sweep's end is dropped unsent.
            let keep = jobs.clone();
            tokio::time::timeout_at(until, read_batch(client, jobs, pool))
                .await
                .unwrap_or_else(|_| pending(keep))
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(done) = batches.next().await {
        progress.reads_done(done.len());
        for (job, items) in done {
            store(&mut data, job, items);
        }
    }
    data
}

/// Reads one batch of jobs and the further pages of each answer.
async fn read_batch(
    client: &GraphClient,
    jobs: Vec<Job>,
    pool: Pool,
) -> Vec<(Job, Result<Vec<Value>, Failed>)> {
    let urls: Vec<String> = jobs.iter().map(|j| j.kind.path(&j.user)).collect();
    let answers = get_batch(client, &urls, pool).await;
    let mut out = Vec::with_capacity(jobs.len());
    for (job, answer) in jobs.into_iter().zip(answers) {
        let items = match answer {
            Ok(body) => follow_pages(client, body, pool).await,
            Err(err) => Err(err),
        }
        .map_err(Failed::Graph);
        out.push((job, items));
    }
    out
}

/// The items of a per-user answer, following `@odata.nextLink` if the answer is paged.
async fn follow_pages(
    client: &GraphClient,
    first: Value,
    pool: Pool,
) -> Result<Vec<Value>, GraphError> {
    let (mut items, next) = split_page(first)?;
    if let Some(next) = next {
        let mut pager = Pager::new(client, next, pool);
        while let Some(page) = pager.next_page().await? {
            items.extend(page);
        }
    }
    Ok(items)
}
