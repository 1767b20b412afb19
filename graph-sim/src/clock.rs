//! The simulator's only wall-clock read (the workspace bans clock reads elsewhere).

use chrono::{DateTime, Utc};

/// Current UTC time; used for token claims, error `date` fields and generated timestamps.
#[allow(clippy::disallowed_methods)]
pub(crate) fn now_utc() -> DateTime<Utc> {
    Utc::now()
}
