//! The userRegistrationDetails pre-filter: read the registration report filtered to users with
//! FIDO2/passkey, Windows Hello or a temporary access pass registered (unfiltered and filtered
//! here if Graph rejects the filter), and queue authentication-method reads only for them.
//! When the report is refused or fails, every listed user is queued instead.

use super::per_user::{queue_auth_methods, Job};
use super::sweep::{registration_key, ReportRow, Sweep};
use crate::graph::paging::Pager;
use crate::graph::{GraphClient, GraphError, Pool};
use crate::snapshot::{Section, Unavailable, UserRegistrationDetails};
use futures::channel::mpsc;
use futures::StreamExt;
use std::collections::HashSet;

const REPORT: &str = "/reports/authenticationMethods/userRegistrationDetails";
const FILTER: &str = "methodsRegistered/any(m:m eq 'fido2') \
or methodsRegistered/any(m:m eq 'passKeyDeviceBound') \
or methodsRegistered/any(m:m eq 'passKeySynced') \
or methodsRegistered/any(m:m eq 'windowsHelloForBusiness') \
or methodsRegistered/any(m:m eq 'temporaryAccessPass')";

/// Method labels whose users get their authentication methods read.
fn is_relevant(method: &str) -> bool {
    let m = method.to_ascii_lowercase();
    m == "fido2"
        || m.starts_with("passkey")
        || m == "windowshelloforbusiness"
        || m == "temporaryaccesspass"
}

/// True when a registration entry shows a method the user checks read.
pub fn has_relevant_method(details: &UserRegistrationDetails) -> bool {
    details.methods_registered.iter().any(|m| is_relevant(m))
}

/// Hands listed user ids to the fallback path.
pub(crate) struct RegistrationFeed(mpsc::UnboundedSender<String>);

impl RegistrationFeed {
    /// Records a listed user (dropped when the report made the fallback unnecessary).
    pub(crate) fn user_listed(&self, id: &str) {
        let _ = self.0.unbounded_send(id.to_owned());
    }
}

/// The feed the user pager writes and the receiver the fallback reads.
pub(crate) fn feed() -> (RegistrationFeed, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded();
    (RegistrationFeed(tx), rx)
}

/// Reads the report page by page, queueing authentication-method reads for relevant users;
/// falls back to every user from `listed` when the report is unavailable. Returns the
/// report section (relevant entries only) and whether the fallback ran.
/// With a `sweep`, only the reads its rules call due are queued, plus (after a complete report)
/// users with stored methods the report no longer lists.
pub(crate) async fn registration_and_auth_jobs(
    client: &GraphClient,
    mut queue: mpsc::Sender<Job>,
    mut listed: mpsc::UnboundedReceiver<String>,
    sweep: Option<&Sweep>,
) -> (Section<Vec<UserRegistrationDetails>>, bool) {
    let mut queued = HashSet::new();
    // Graph documents only $filter and $orderby here; $top=999 is what many clients send and
    // saves pages in the 5-requests-per-10-s reports bucket. Each 400 drops one refinement.
    let attempts = [
        format!("{REPORT}?$filter={FILTER}&$top=999"),
        format!("{REPORT}?$filter={FILTER}"),
        REPORT.to_owned(),
    ];
    let mut report = Err(GraphError::Cancelled);
    for relative in attempts {
        report = read_report(
            client,
            client.url(&relative),
            &mut queue,
            &mut queued,
            sweep,
        )
        .await;
        if !matches!(report, Err(GraphError::Http { status: 400, .. })) {
            break;
        }
        tracing::info!("Registration report rejected the query; simplifying it");
    }
    match report {
        Ok(entries) => {
            if let Some(sweep) = sweep {
                let unexplained = sweep
                    .users_with_stored_methods()
                    .filter(|user| !queued.contains(*user))
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                queue_auth_methods(&mut queue, unexplained).await;
            }
            (Ok(entries), false)
        }
        Err(err) => {
            tracing::info!(error = %err, "Registration report unavailable; reading every user's methods");
            let mut fresh = Vec::new();
            while let Some(id) = listed.next().await {
                let due = sweep.map_or(true, |s| s.methods_due(&id, ReportRow::Unavailable));
                if due && queued.insert(id.clone()) {
                    fresh.push(id);
                }
                if fresh.len() >= 20 {
                    queue_auth_methods(&mut queue, fresh.drain(..)).await;
                }
            }
            queue_auth_methods(&mut queue, fresh).await;
            (Err(err.to_unavailable("AuditLog.Read.All")), true)
        }
    }
}

async fn read_report(
    client: &GraphClient,
    url: String,
    queue: &mut mpsc::Sender<Job>,
    queued: &mut HashSet<String>,
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
                let key = registration_key(&entry);
                let due = sweep.map_or(true, |s| s.methods_due(&entry.id, ReportRow::Listed(&key)));
                // A user listed but not due is still "queued": the report explains them.
                if queued.insert(entry.id.clone()) && due {
                    fresh.push(entry.id.clone());
                }
                entries.push(entry);
            }
        }
        queue_auth_methods(queue, fresh).await;
    }
    Ok(entries)
}

/// The registration section's reason when it failed, for logs.
pub(crate) fn describe(section: &Section<Vec<UserRegistrationDetails>>) -> String {
    match section {
        Ok(entries) => format!("{} users with relevant methods", entries.len()),
        Err(Unavailable::PermissionDenied { .. }) => "refused".to_owned(),
        Err(other) => other.to_string(),
    }
}
