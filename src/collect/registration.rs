//! The userRegistrationDetails pre-filter: read the registration report (every row; a
//! `$filter` on the labels would hide labels Microsoft adds later) and queue
//! authentication-method reads for users whose `methodsRegistered` holds a label the user
//! checks care about, or a label this agent does not know. When the report is refused or
//! fails, every listed user is queued instead.
//!
//! The vocabulary is Microsoft's: `methodsRegistered` of the userRegistrationDetails resource
//! (v1.0 and beta, learn.microsoft.com/graph/api/resources/userregistrationdetails) takes the
//! values of the `usageAuthMethod` enum listed with userSignInUsageByAuthMethodActivity
//! (learn.microsoft.com/graph/api/resources/usersigninusagebyauthmethodactivity?view=graph-rest-beta).
//! `fido2` became `passKeyDeviceBound` in 2023; both are still met in tenants.

use super::held_report::ReportRows;
use super::listed::ListedUsers;
use super::per_user::{queue_auth_methods, Job};
use super::sweep::{registration_key, ReportRow, Sweep};
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::{Section, Unavailable, UserId, UserRegistrationDetails};
use futures::channel::mpsc;
use std::collections::HashSet;
use std::sync::Arc;

const REPORT: &str = "/reports/authenticationMethods/userRegistrationDetails";

/// Labels of FIDO2 keys, passkeys, Windows Hello and temporary access passes: the methods
/// the `user.*` method checks read (lower-case).
const RELEVANT_LABELS: &[&str] = &[
    "fido2",
    "fido2securitykey",
    "passkeydevicebound",
    "passkeydeviceboundauthenticator",
    "passkeydeviceboundwindowshello",
    "passkeysynced",
    "windowshelloforbusiness",
    "temporaryaccesspass",
];

/// Labels Microsoft documents for methods no check reads (lower-case). Anything in neither
/// list (including `unknownFutureValue`) is treated as relevant.
const IRRELEVANT_LABELS: &[&str] = &[
    "none",
    "email",
    "mobilephone",
    "alternatemobilephone",
    "officephone",
    "sms",
    "mobilesms",
    "mobilecall",
    "alternatemobilecall",
    "voicemobile",
    "voicealternatemobile",
    "voiceoffice",
    "securityquestion",
    "apppassword",
    "appnotification",
    "appcode",
    "microsoftauthenticatorpush",
    "microsoftauthenticatorpasswordless",
    "softwareonetimepasscode",
    "hardwareonetimepasscode",
    "onetimepasscode",
    "externalauthmethod",
    "macossecureenclavekey",
    "qrcode",
];

/// True when a user with this label gets their authentication methods read: a relevant
/// label, or one this agent does not know.
fn is_relevant(method: &str) -> bool {
    let m = method.trim().to_ascii_lowercase();
    RELEVANT_LABELS.contains(&m.as_str()) || !IRRELEVANT_LABELS.contains(&m.as_str())
}

/// True when a registration entry shows a method the user checks read.
pub fn has_relevant_method(details: &UserRegistrationDetails) -> bool {
    details.methods_registered.iter().any(|m| is_relevant(m))
}

/// Reads the report page by page, queueing authentication-method reads for relevant users;
/// falls back to every listed user when the report is unavailable. Returns the report section
/// (relevant entries only) and whether the fallback ran. Only users the directory lists are
/// read ([`super::listed`]).
/// With a `sweep`, only the reads its rules call due are queued, plus (after a complete report)
/// users with stored methods the report no longer lists; a sweep that continues from a held
/// report ([`super::held_report`]) queues from it and reads no page.
pub(crate) async fn registration_and_auth_jobs(
    client: &GraphClient,
    queue: mpsc::Sender<Job>,
    listed: ListedUsers,
    sweep: Option<&Sweep>,
) -> (Section<ReportRows>, bool) {
    let mut reads = MethodReads {
        queue,
        queued: HashSet::new(),
        waiting: Vec::new(),
        listed,
        sweep,
    };
    let report = match sweep.and_then(Sweep::held_report) {
        Some(rows) => {
            reads.offer(rows.iter()).await;
            Ok(rows)
        }
        None => read_report_any_query(client, &mut reads)
            .await
            .map(Arc::new),
    };
    match report {
        Ok(entries) => {
            reads.after_report().await;
            (Ok(entries), false)
        }
        Err(err) => {
            tracing::info!(error = %err, "Registration report unavailable; reading every user's methods");
            reads.every_due_user().await;
            (Err(err.to_unavailable("AuditLog.Read.All")), true)
        }
    }
}

/// The method reads of one scan: where they go, the users queued or explained by the report,
/// report rows waiting for their user to be listed, and the listing.
struct MethodReads<'a> {
    queue: mpsc::Sender<Job>,
    queued: HashSet<UserId>,
    waiting: Vec<UserId>,
    listed: ListedUsers,
    sweep: Option<&'a Sweep>,
}

impl MethodReads<'_> {
    /// Queues the users of relevant report rows whose methods are due: at once when listed or
    /// known to the sweep ([`Sweep::known_user`]; everyone in `scan` and a first sweep, so the
    /// bucket does not idle while a first listing pages), else once the listing names them.
    async fn offer<'r>(&mut self, rows: impl IntoIterator<Item = &'r UserRegistrationDetails>) {
        self.listed.catch_up();
        let mut fresh = Vec::new();
        for entry in rows {
            let key = registration_key(entry);
            let due = self
                .sweep
                .map_or(true, |s| s.methods_due(&entry.id, ReportRow::Listed(&key)));
            // A user listed but not due is still "queued": the report explains them.
            if self.queued.insert(entry.id.clone()) && due {
                let known = self.sweep.map_or(true, |s| s.known_user(&entry.id));
                match self.listed.get(&entry.id) {
                    Some(id) => fresh.push(id.clone()),
                    None if known => fresh.push(entry.id.clone()),
                    None => self.waiting.push(entry.id.clone()),
                }
            }
        }
        queue_auth_methods(&mut self.queue, fresh).await;
    }

    /// After a complete report: the waiting rows' users as the listing names them, then, once
    /// it completed, the users with stored methods the report no longer lists, if listed (a
    /// deleted user's stored methods are forgotten). A row whose user the listing never names
    /// is not read, nor is anything more after a failed listing: that scan's method reads
    /// are not stored.
    async fn after_report(&mut self) {
        let Some(sweep) = self.sweep else {
            // `scan`: no row waits and nothing is stored; its last batch need not wait for
            // the listing.
            return;
        };
        let listed = &self.listed;
        let (ready, waiting): (Vec<UserId>, Vec<UserId>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|id| listed.get(id).is_some());
        queue_auth_methods(&mut self.queue, ready).await;
        let mut waiting: HashSet<UserId> = waiting.into_iter().collect();
        let mut fresh = Vec::new();
        while let Some(id) = self.listed.next_new().await {
            if waiting.remove(&id) {
                fresh.push(id);
            }
            if fresh.len() >= 20 || (waiting.is_empty() && !fresh.is_empty()) {
                queue_auth_methods(&mut self.queue, fresh.drain(..)).await;
            }
        }
        queue_auth_methods(&mut self.queue, fresh).await;
        if !self.listed.finish().await {
            return;
        }
        let listed = &self.listed;
        let unexplained: Vec<UserId> = sweep
            .users_with_stored_methods()
            .filter(|user| !self.queued.contains(*user))
            .filter_map(|user| listed.get(user))
            .cloned()
            .collect();
        queue_auth_methods(&mut self.queue, unexplained).await;
    }

    /// Without the report: queues every listed user whose methods are due by age (every user
    /// without a sweep), as they are listed.
    async fn every_due_user(&mut self) {
        // Rows of a report that failed part-way were not read yet: they are judged again.
        for id in std::mem::take(&mut self.waiting) {
            self.queued.remove(&id);
        }
        self.listed.catch_up();
        let mut fresh = Vec::new();
        let already: Vec<UserId> = self.listed.seen().cloned().collect();
        for id in already {
            self.queue_if_due_unreported(id, &mut fresh).await;
        }
        while let Some(id) = self.listed.next_new().await {
            self.queue_if_due_unreported(id, &mut fresh).await;
        }
        queue_auth_methods(&mut self.queue, fresh).await;
    }

    async fn queue_if_due_unreported(&mut self, id: UserId, fresh: &mut Vec<UserId>) {
        let due = self
            .sweep
            .map_or(true, |s| s.methods_due(&id, ReportRow::Unavailable));
        if due && self.queued.insert(id.clone()) {
            fresh.push(id);
        }
        if fresh.len() >= 20 {
            queue_auth_methods(&mut self.queue, fresh.drain(..)).await;
        }
    }
}

/// Reads the report with `$top=999`, or without it when Graph refuses the query.
async fn read_report_any_query(
    client: &GraphClient,
    reads: &mut MethodReads<'_>,
) -> Result<Vec<UserRegistrationDetails>, GraphError> {
    // Graph documents only $filter and $orderby here; $top=999 is what many clients send and
    // saves pages in the 5-requests-per-10-s reports bucket. A 400 drops it.
    let attempts = [format!("{REPORT}?$top=999"), REPORT.to_owned()];
    let mut report = Err(GraphError::Cancelled);
    for relative in attempts {
        report = read_report(client, client.url(&relative), reads).await;
        if !matches!(report, Err(GraphError::Http { status: 400, .. })) {
            break;
        }
        tracing::info!("Registration report rejected the query; simplifying it");
    }
    report
}

async fn read_report(
    client: &GraphClient,
    url: String,
    reads: &mut MethodReads<'_>,
) -> Result<Vec<UserRegistrationDetails>, GraphError> {
    let mut pager = Pager::new(client, url, Pool::Reports);
    let mut entries = Vec::new();
    while let Some(page) = pager.next_page().await? {
        let first = entries.len();
        for value in page {
            let entry: UserRegistrationDetails = serde_json::from_value(value)
                .map_err(|e| GraphError::Malformed(format!("registration entry: {e}")))?;
            if has_relevant_method(&entry) {
                entries.push(entry);
            }
        }
        reads.offer(entries.get(first..).unwrap_or_default()).await;
    }
    Ok(entries)
}

/// The registration section's reason when it failed, for logs.
pub(crate) fn describe(section: &Section<ReportRows>) -> String {
    match section {
        Ok(entries) => format!("{} users with relevant methods", entries.len()),
        Err(Unavailable::PermissionDenied { .. }) => "refused".to_owned(),
        Err(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_passkey_label_old_and_new_and_unknown_labels_are_relevant() {
        for label in [
            "fido2",
            "fido2SecurityKey",
            "passKeyDeviceBound",
            "passKeyDeviceBoundAuthenticator",
            "passKeyDeviceBoundWindowsHello",
            "passKeySynced",
            "windowsHelloForBusiness",
            "temporaryAccessPass",
            "unknownFutureValue",
            "somethingMicrosoftAddsNextYear",
        ] {
            assert!(is_relevant(label), "{label}");
        }
    }

    #[test]
    fn documented_labels_of_other_methods_are_not_relevant() {
        for label in [
            "email",
            "mobilePhone",
            "microsoftAuthenticatorPush",
            "softwareOneTimePasscode",
            "macOsSecureEnclaveKey",
        ] {
            assert!(!is_relevant(label), "{label}");
        }
    }
}
