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
use super::per_user::{queue_auth_methods, Job};
use super::sweep::{registration_key, ReportRow, Sweep};
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::{Section, Unavailable, UserId, UserRegistrationDetails};
use futures::channel::mpsc;
use futures::StreamExt;
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

/// Hands listed user ids to the fallback path.
pub(crate) struct RegistrationFeed(mpsc::UnboundedSender<UserId>);

impl RegistrationFeed {
    /// Records a listed user (dropped when the report made the fallback unnecessary).
    pub(crate) fn user_listed(&self, id: &UserId) {
        let _ = self.0.unbounded_send(id.clone());
    }
}

/// The feed the user pager writes and the receiver the fallback reads.
pub(crate) fn feed() -> (RegistrationFeed, mpsc::UnboundedReceiver<UserId>) {
    let (tx, rx) = mpsc::unbounded();
    (RegistrationFeed(tx), rx)
}

/// Reads the report page by page, queueing authentication-method reads for relevant users;
/// falls back to every user from `listed` when the report is unavailable. Returns the
/// report section (relevant entries only) and whether the fallback ran.
/// With a `sweep`, only the reads its rules call due are queued, plus (after a complete report)
/// users with stored methods the report no longer lists; a sweep that continues from a held
/// report ([`super::held_report`]) queues from it and reads no page.
pub(crate) async fn registration_and_auth_jobs(
    client: &GraphClient,
    mut queue: mpsc::Sender<Job>,
    listed: mpsc::UnboundedReceiver<UserId>,
    sweep: Option<&Sweep>,
) -> (Section<ReportRows>, bool) {
    let mut queued = HashSet::new();
    let report = match sweep.and_then(Sweep::held_report) {
        Some(rows) => {
            let mut fresh = Vec::new();
            for entry in rows.iter() {
                queue_if_due(entry, &mut queued, sweep, &mut fresh);
            }
            queue_auth_methods(&mut queue, fresh).await;
            Ok(rows)
        }
        None => read_report_any_query(client, &mut queue, &mut queued, sweep)
            .await
            .map(Arc::new),
    };
    match report {
        Ok(entries) => {
            if let Some(sweep) = sweep {
                queue_unexplained(sweep, &queued, listed, &mut queue).await;
            }
            (Ok(entries), false)
        }
        Err(err) => {
            tracing::info!(error = %err, "Registration report unavailable; reading every user's methods");
            queue_every_due_user(sweep, &mut queued, listed, &mut queue).await;
            (Err(err.to_unavailable("AuditLog.Read.All")), true)
        }
    }
}

/// After a complete report: queues the users with stored methods the report no longer lists,
/// if they are still listed (a deleted user's stored methods are forgotten).
async fn queue_unexplained(
    sweep: &Sweep,
    queued: &HashSet<UserId>,
    mut listed: mpsc::UnboundedReceiver<UserId>,
    queue: &mut mpsc::Sender<Job>,
) {
    let mut unexplained: HashSet<&str> = sweep
        .users_with_stored_methods()
        .filter(|user| !queued.contains(*user))
        .collect();
    let mut still_listed = Vec::new();
    while let Some(id) = listed.next().await {
        if unexplained.remove(&*id) {
            still_listed.push(id);
        }
    }
    queue_auth_methods(queue, still_listed).await;
}

/// Without the report: queues every listed user whose methods are due by age (every user
/// without a sweep).
async fn queue_every_due_user(
    sweep: Option<&Sweep>,
    queued: &mut HashSet<UserId>,
    mut listed: mpsc::UnboundedReceiver<UserId>,
    queue: &mut mpsc::Sender<Job>,
) {
    let mut fresh = Vec::new();
    while let Some(id) = listed.next().await {
        let due = sweep.map_or(true, |s| s.methods_due(&id, ReportRow::Unavailable));
        if due && queued.insert(id.clone()) {
            fresh.push(id);
        }
        if fresh.len() >= 20 {
            queue_auth_methods(queue, fresh.drain(..)).await;
        }
    }
    queue_auth_methods(queue, fresh).await;
}

/// Reads the report with `$top=999`, or without it when Graph refuses the query.
async fn read_report_any_query(
    client: &GraphClient,
    queue: &mut mpsc::Sender<Job>,
    queued: &mut HashSet<UserId>,
    sweep: Option<&Sweep>,
) -> Result<Vec<UserRegistrationDetails>, GraphError> {
    // Graph documents only $filter and $orderby here; $top=999 is what many clients send and
    // saves pages in the 5-requests-per-10-s reports bucket. A 400 drops it.
    let attempts = [format!("{REPORT}?$top=999"), REPORT.to_owned()];
    let mut report = Err(GraphError::Cancelled);
    for relative in attempts {
        report = read_report(client, client.url(&relative), queue, queued, sweep).await;
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
    queue: &mut mpsc::Sender<Job>,
    queued: &mut HashSet<UserId>,
    sweep: Option<&Sweep>,
) -> Result<Vec<UserRegistrationDetails>, GraphError> {
    let mut pager = Pager::new(client, url, Pool::Reports);
    let mut entries = Vec::new();
    while let Some(page) = pager.next_page().await? {
        let mut fresh = Vec::new();
        for value in page {
            let entry: UserRegistrationDetails = serde_json::from_value(value)
                .map_err(|e| GraphError::Malformed(format!("registration entry: {e}")))?;
            if has_relevant_method(&entry) {
                queue_if_due(&entry, queued, sweep, &mut fresh);
                entries.push(entry);
            }
        }
        queue_auth_methods(queue, fresh).await;
    }
    Ok(entries)
}

/// Adds a relevant report row's user to `fresh` when their methods are due.
fn queue_if_due(
    entry: &UserRegistrationDetails,
    queued: &mut HashSet<UserId>,
    sweep: Option<&Sweep>,
    fresh: &mut Vec<UserId>,
) {
    let key = registration_key(entry);
    let due = sweep.map_or(true, |s| s.methods_due(&entry.id, ReportRow::Listed(&key)));
    // A user listed but not due is still "queued": the report explains them.
    if queued.insert(entry.id.clone()) && due {
        fresh.push(entry.id.clone());
    }
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
