//! What a per-user read came to: the answer parsed into the user's entry of [`PerUserData`],
//! or why nothing was read (a 404 is [`Unavailable::NotReadable`], never an empty list), and
//! the section of a per-user map.

use super::{Job, Kind, PerUserData};
use crate::graph::GraphError;
use crate::snapshot::{AuthMethod, PerUser, Section, Unavailable};
use serde_json::Value;

/// Exchange's 404 code for a mailbox that is inactive, soft-deleted or on premises.
const MAILBOX_NOT_ENABLED: &str = "MailboxNotEnabledForRESTAPI";

/// A per-user read that gave no items.
pub(super) enum Failed {
    /// Graph answered with an error.
    Graph(GraphError),
    /// The sweep's time for this scan ran out before the read was sent.
    Pending,
}

/// The reasons of [`Unavailable::NotReadable`] (metric label values).
pub(crate) const NOT_READABLE_REASONS: [&str; 2] =
    ["mailbox_not_enabled_for_rest_api", "user_not_found"];

/// The reason of a per-user 404: Exchange's code for a mailbox Graph cannot reach, else the
/// user is gone (deleted since the user list was read).
fn not_readable(err: &GraphError) -> Unavailable {
    let [mailbox, gone] = NOT_READABLE_REASONS;
    let reason = match err {
        GraphError::Http { code, .. } if code.eq_ignore_ascii_case(MAILBOX_NOT_ENABLED) => mailbox,
        _ => gone,
    };
    Unavailable::NotReadable {
        reason: reason.to_owned(),
    }
}

pub(super) fn store(data: &mut PerUserData, job: Job, items: Result<Vec<Value>, Failed>) {
    let items = items.map_err(|failed| match failed {
        Failed::Graph(err) if err.is_not_found() => not_readable(&err),
        Failed::Graph(err) => err.to_unavailable(job.kind.permission()),
        Failed::Pending => crate::collect::sweep::pending(),
    });
    match job.kind {
        Kind::AuthMethods => {
            let parsed = items.and_then(|v| parse_each(v, |x| AuthMethod::from_graph(x, None)));
            data.auth_methods.insert(job.user, parsed.map(judged_only));
        }
        Kind::Calendar => {
            let parsed = items.and_then(|v| parse_each(v, serde_json::from_value));
            data.calendar.insert(job.user, parsed);
        }
        Kind::Rules => {
            let parsed = items.and_then(|v| parse_each(v, serde_json::from_value));
            data.rules.insert(job.user, parsed);
        }
    }
}

/// The methods a check judges (FIDO2, Windows Hello, temporary access pass). The others
/// (password, phone, Authenticator, ...) are parsed, so a malformed one still fails the read,
/// but not kept: most users have two or three, and no check reads them (issue 10).
fn judged_only(mut methods: Vec<AuthMethod>) -> Vec<AuthMethod> {
    methods.retain(|method| !matches!(method, AuthMethod::Other { .. }));
    methods.shrink_to_fit();
    methods
}

fn parse_each<T>(
    values: Vec<Value>,
    parse: impl Fn(Value) -> Result<T, serde_json::Error>,
) -> Result<Vec<T>, Unavailable> {
    let mut parsed = values
        .into_iter()
        .map(|v| {
            parse(v).map_err(|e| Unavailable::Malformed {
                detail: e.to_string(),
            })
        })
        .collect::<Result<Vec<T>, _>>()?;
    // Without spare capacity: a collected list of one has room for four (issue 10).
    parsed.shrink_to_fit();
    Ok(parsed)
}

/// The section of a per-user map: failed as a whole when every user asked was refused with
/// the same permission (the permission is missing, not one mailbox excluded).
pub(crate) fn section_of<T>(map: PerUser<T>, kind: Kind) -> Section<PerUser<T>> {
    let denied = Unavailable::PermissionDenied {
        permission: kind.permission().to_owned(),
    };
    if !map.is_empty() && map.values().all(|r| r.as_ref().err() == Some(&denied)) {
        return Err(denied);
    }
    Ok(map)
}
