//! `check-config --probe`: get a token, read its `roles` claim, then one cheap request per
//! application permission the token holds, naming each permission that is missing and the
//! checks it disables.

use super::permissions::{self, REQUIRED};
use super::CollectContext;
use crate::config::TenantConfig;
use crate::graph::{GraphClient, GraphError, Pool};
use serde_json::Value;
use std::fmt::Write as _;
use tokio_util::sync::CancellationToken;

/// The outcome of probing one permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionStatus {
    /// Graph answered the probe.
    Granted,
    /// Graph answered 403: the permission is missing (or not admin-consented).
    Missing(String),
    /// The probe could not tell (no user to probe with, no mailbox, a failure other than 403).
    Unknown(String),
}

/// One permission and its probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionProbe {
    /// `User.Read.All`, `MailboxSettings.Read`, ...
    pub permission: &'static str,
    /// What the probe found.
    pub status: PermissionStatus,
}

/// The probe of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Tenant name.
    pub tenant: String,
    /// The token request's failure, in words with the AADSTS code.
    pub token_error: Option<String>,
    /// One entry per permission (empty when no token).
    pub permissions: Vec<PermissionProbe>,
}

impl ProbeReport {
    /// True when a token was issued and no permission is missing.
    pub fn ok(&self) -> bool {
        self.token_error.is_none()
            && self
                .permissions
                .iter()
                .all(|p| !matches!(p.status, PermissionStatus::Missing(_)))
    }

    /// Human-readable lines, one per check.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let name = &self.tenant;
        match &self.token_error {
            Some(err) => {
                let _ = writeln!(out, "{name}: token FAILED: {err}");
            }
            None => {
                let _ = writeln!(out, "{name}: token ok");
            }
        }
        for p in &self.permissions {
            let _ = match &p.status {
                PermissionStatus::Granted => writeln!(out, "{name}: {} ok", p.permission),
                PermissionStatus::Missing(why) => writeln!(
                    out,
                    "{name}: {} MISSING ({why}; disables {})",
                    p.permission,
                    disabled_by(p.permission)
                ),
                PermissionStatus::Unknown(why) => {
                    writeln!(out, "{name}: {} not verified ({why})", p.permission)
                }
            };
        }
        out
    }
}

/// The checks a missing permission disables, in words.
fn disabled_by(permission: &str) -> &'static str {
    REQUIRED
        .iter()
        .find(|r| r.permission == permission)
        .map_or("unknown checks", |r| r.disables)
}

/// Probes one tenant: the token, then the token's `roles` (every permission missing there is
/// named without a request), then one cheap request per remaining permission.
pub async fn probe_tenant(
    ctx: &CollectContext,
    tenant: &TenantConfig,
    cancel: &CancellationToken,
) -> ProbeReport {
    let mut report = ProbeReport {
        tenant: tenant.name.clone(),
        token_error: None,
        permissions: Vec::new(),
    };
    let provider = match ctx.token_provider(tenant) {
        Ok(p) => p,
        Err(err) => {
            report.token_error = Some(err.to_string());
            return report;
        }
    };
    let roles = match provider.token().await {
        Ok(token) => permissions::token_roles(token.bearer()),
        Err(err) => {
            ctx.forget(tenant);
            report.token_error = Some(err.to_string());
            return report;
        }
    };
    let client = ctx.client(tenant, provider, cancel.child_token());
    let mut user = None;
    for requirement in REQUIRED {
        let probe = match &roles {
            Some(roles) if !requirement.is_met_by(roles) => PermissionProbe {
                permission: requirement.permission,
                status: PermissionStatus::Missing("not in the token's roles".to_owned()),
            },
            _ => request_probe(&client, requirement.permission, &mut user).await,
        };
        report.permissions.push(probe);
    }
    report
}

/// The request that shows whether `permission` works; the user list also picks the user the
/// per-user probes ask for.
async fn request_probe(
    client: &GraphClient,
    permission: &'static str,
    user: &mut Option<String>,
) -> PermissionProbe {
    let (path, pool) = match permission {
        permissions::USERS => {
            let url = client.url("/users?$select=id,mail&$top=10");
            let users = client.get(&url, Pool::Directory).await;
            *user = users.as_ref().ok().and_then(pick_user);
            return probe(permission, users.map(|_| ()));
        }
        permissions::AUTH_METHODS => ("authentication/methods", Pool::Directory),
        permissions::CALENDARS => ("calendar/calendarPermissions", Pool::Exchange),
        permissions::MAILBOX_SETTINGS => ("mailFolders/inbox/messageRules", Pool::Exchange),
        other => {
            let path = match other {
                "Organization.Read.All" => "/organization?$select=id",
                "Domain.Read.All" => "/domains?$select=id",
                "Application.Read.All" => "/servicePrincipals?$select=id&$top=1",
                _ => "/reports/authenticationMethods/userRegistrationDetails",
            };
            let answer = client.get(&client.url(path), Pool::Directory).await;
            return report_probe(permission, answer);
        }
    };
    per_user_probe(client, user.as_deref(), permission, path, pool).await
}

fn pick_user(page: &Value) -> Option<String> {
    let users = page.get("value")?.as_array()?;
    let with_mail = users
        .iter()
        .find(|u| u.get("mail").is_some_and(Value::is_string));
    with_mail
        .or(users.first())?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

async fn per_user_probe(
    client: &GraphClient,
    user: Option<&str>,
    permission: &'static str,
    path: &str,
    pool: Pool,
) -> PermissionProbe {
    let Some(user) = user else {
        return PermissionProbe {
            permission,
            status: PermissionStatus::Unknown("no user to probe with".to_owned()),
        };
    };
    let answer = client
        .get(&client.url(&format!("/users/{user}/{path}")), pool)
        .await;
    match answer {
        Err(err) if err.is_not_found() => PermissionProbe {
            permission,
            status: PermissionStatus::Unknown("the probed user has no mailbox".to_owned()),
        },
        other => probe(permission, other.map(|_| ())),
    }
}

fn report_probe(permission: &'static str, answer: Result<Value, GraphError>) -> PermissionProbe {
    match answer {
        Err(GraphError::Http { status: 403, code })
            if code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant" =>
        {
            PermissionProbe {
                permission,
                status: PermissionStatus::Unknown(
                    "tenant has no Entra ID P1/P2; authentication methods are read per user"
                        .to_owned(),
                ),
            }
        }
        other => probe(permission, other.map(|_| ())),
    }
}

fn probe(permission: &'static str, answer: Result<(), GraphError>) -> PermissionProbe {
    let status = match answer {
        Ok(()) => PermissionStatus::Granted,
        Err(GraphError::Http { status: 403, code }) => {
            PermissionStatus::Missing(format!("403 {code}").trim_end().to_owned())
        }
        Err(err) => PermissionStatus::Unknown(err.to_string()),
    };
    PermissionProbe { permission, status }
}
