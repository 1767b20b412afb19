//! Graph path resolution: concrete `/v1.0/...` paths to resources, path templates and the
//! permissions each needs.
//!
//! Segment names compare case-insensitively (Graph accepts `mailfolders/Inbox/messagerules`);
//! ids are percent-decoded so a user may be addressed by id or by userPrincipalName.

use percent_encoding::percent_decode_str;

pub(crate) use crate::changes::DeltaSet;

/// The kinds of authentication method lists under `/users/{id}/authentication/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodList {
    All,
    Typed(&'static str),
}

/// A Graph resource the simulator serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource {
    Organization,
    Domains,
    Domain(String),
    Users,
    User(String),
    Applications,
    Application(String),
    ServicePrincipals,
    ServicePrincipal(String),
    /// `/users/delta`, `/applications/delta`, `/servicePrincipals/delta` (also as
    /// `microsoft.graph.delta` or `delta()`).
    Delta(DeltaSet),
    RegistrationDetails,
    AuthMethods(String, MethodList),
    CalendarPermissions(String),
    MessageRules(String),
    MailboxSettings(String),
}

/// Throttling and error families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    Directory,
    Reports,
    Exchange,
}

/// `(segment, @odata.type suffix, template)` of the typed method lists.
const METHOD_LISTS: &[(&str, &str, &str)] = &[
    (
        "fido2methods",
        "fido2AuthenticationMethod",
        "/v1.0/users/{id}/authentication/fido2Methods",
    ),
    (
        "windowshelloforbusinessmethods",
        "windowsHelloForBusinessAuthenticationMethod",
        "/v1.0/users/{id}/authentication/windowsHelloForBusinessMethods",
    ),
    (
        "temporaryaccesspassmethods",
        "temporaryAccessPassAuthenticationMethod",
        "/v1.0/users/{id}/authentication/temporaryAccessPassMethods",
    ),
    (
        "microsoftauthenticatormethods",
        "microsoftAuthenticatorAuthenticationMethod",
        "/v1.0/users/{id}/authentication/microsoftAuthenticatorMethods",
    ),
    (
        "phonemethods",
        "phoneAuthenticationMethod",
        "/v1.0/users/{id}/authentication/phoneMethods",
    ),
    (
        "emailmethods",
        "emailAuthenticationMethod",
        "/v1.0/users/{id}/authentication/emailMethods",
    ),
    (
        "softwareoathmethods",
        "softwareOathAuthenticationMethod",
        "/v1.0/users/{id}/authentication/softwareOathMethods",
    ),
    (
        "passwordmethods",
        "passwordAuthenticationMethod",
        "/v1.0/users/{id}/authentication/passwordMethods",
    ),
    (
        "platformcredentialmethods",
        "platformCredentialAuthenticationMethod",
        "/v1.0/users/{id}/authentication/platformCredentialMethods",
    ),
];

impl Resource {
    /// The path template used in stats and fault configuration.
    pub fn template(&self) -> &'static str {
        match self {
            Resource::Organization => "/v1.0/organization",
            Resource::Domains => "/v1.0/domains",
            Resource::Domain(_) => "/v1.0/domains/{id}",
            Resource::Users => "/v1.0/users",
            Resource::User(_) => "/v1.0/users/{id}",
            Resource::Applications => "/v1.0/applications",
            Resource::Application(_) => "/v1.0/applications/{id}",
            Resource::ServicePrincipals => "/v1.0/servicePrincipals",
            Resource::ServicePrincipal(_) => "/v1.0/servicePrincipals/{id}",
            Resource::Delta(DeltaSet::Users) => "/v1.0/users/delta",
            Resource::Delta(DeltaSet::Applications) => "/v1.0/applications/delta",
            Resource::Delta(DeltaSet::ServicePrincipals) => "/v1.0/servicePrincipals/delta",
            Resource::RegistrationDetails => {
                "/v1.0/reports/authenticationMethods/userRegistrationDetails"
            }
            Resource::AuthMethods(_, MethodList::All) => "/v1.0/users/{id}/authentication/methods",
            Resource::AuthMethods(_, MethodList::Typed(kind)) => METHOD_LISTS
                .iter()
                .find(|(_, k, _)| k == kind)
                .map(|(_, _, t)| *t)
                .unwrap_or("/v1.0/users/{id}/authentication/methods"),
            Resource::CalendarPermissions(_) => "/v1.0/users/{id}/calendar/calendarPermissions",
            Resource::MessageRules(_) => "/v1.0/users/{id}/mailFolders/inbox/messageRules",
            Resource::MailboxSettings(_) => "/v1.0/users/{id}/mailboxSettings",
        }
    }

    pub fn workload(&self) -> Workload {
        match self {
            Resource::CalendarPermissions(_)
            | Resource::MessageRules(_)
            | Resource::MailboxSettings(_) => Workload::Exchange,
            Resource::RegistrationDetails => Workload::Reports,
            _ => Workload::Directory,
        }
    }

    /// Application permissions (the token's `roles`) any one of which allows the read: the
    /// "Application" row of each page's permissions table on learn.microsoft.com/graph/api/
    /// (least privileged first, then the higher privileged ones):
    /// organization-get, domain-list, user-list, serviceprincipal-list, application-list,
    /// authenticationmethodsroot-list-userregistrationdetails, authentication-list-methods,
    /// calendar-list-calendarpermissions (its Application column names `Calendars.ReadBasic`,
    /// whose application form in the permissions reference is `Calendars.ReadBasic.All`), and
    /// mailfolder-list-messagerules. The delta functions need what the listing needs ("The same
    /// permissions that are required to read a specific resource are also required to perform
    /// delta query on that resource", learn.microsoft.com/graph/delta-query-overview; user-delta,
    /// application-delta, serviceprincipal-delta).
    pub fn accepted_roles(&self) -> &'static [&'static str] {
        match self {
            Resource::Organization => &[
                "Organization.Read.All",
                "Directory.Read.All",
                "Organization.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            Resource::Domains | Resource::Domain(_) => &[
                "Domain.Read.All",
                "Directory.Read.All",
                "Domain.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            Resource::Users | Resource::User(_) | Resource::Delta(DeltaSet::Users) => &[
                "User.Read.All",
                "Directory.Read.All",
                "User.ReadWrite.All",
                "Directory.ReadWrite.All",
            ],
            Resource::Applications
            | Resource::Application(_)
            | Resource::ServicePrincipals
            | Resource::ServicePrincipal(_)
            | Resource::Delta(_) => &[
                "Application.Read.All",
                "Application.ReadWrite.All",
                "Directory.Read.All",
                "Directory.ReadWrite.All",
            ],
            Resource::RegistrationDetails => {
                &["AuditLog.Read.All", "UserAuthenticationMethod.Read.All"]
            }
            Resource::AuthMethods(..) => &[
                "UserAuthenticationMethod.Read.All",
                "UserAuthenticationMethod.ReadWrite.All",
            ],
            Resource::CalendarPermissions(_) => &[
                "Calendars.ReadBasic.All",
                "Calendars.Read",
                "Calendars.ReadWrite",
            ],
            Resource::MessageRules(_) | Resource::MailboxSettings(_) => {
                &["MailboxSettings.Read", "MailboxSettings.ReadWrite"]
            }
        }
    }

    /// Delegated permissions (the token's `scp`) that allow the read besides
    /// [`Resource::accepted_roles`]: the "Delegated (work or school account)" rows where their
    /// names differ (`User.Read` for the organization, `Calendars.ReadBasic`).
    pub fn accepted_scopes(&self) -> &'static [&'static str] {
        match self {
            Resource::Organization => &["User.Read"],
            Resource::CalendarPermissions(_) => &["Calendars.ReadBasic"],
            _ => &[],
        }
    }

    /// The user a per-user resource belongs to.
    pub fn user_key(&self) -> Option<&str> {
        match self {
            Resource::User(u)
            | Resource::AuthMethods(u, _)
            | Resource::CalendarPermissions(u)
            | Resource::MessageRules(u)
            | Resource::MailboxSettings(u) => Some(u),
            _ => None,
        }
    }
}

/// Resolves a path below `/v1.0` (such as `/users/abc/authentication/methods`). The error is
/// the first segment Graph would not recognise.
pub(crate) fn resolve(path: &str) -> Result<Resource, String> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let words: Vec<&str> = lower.iter().map(String::as_str).collect();
    let id = |position: usize| segments.get(position).cloned().unwrap_or_default();
    let resource = match words.as_slice() {
        ["organization"] => Resource::Organization,
        ["domains"] => Resource::Domains,
        ["domains", _] => Resource::Domain(id(1)),
        ["users"] => Resource::Users,
        ["users", f] if is_delta(f) => Resource::Delta(DeltaSet::Users),
        ["users", _] => Resource::User(id(1)),
        ["applications"] => Resource::Applications,
        ["applications", f] if is_delta(f) => Resource::Delta(DeltaSet::Applications),
        ["applications", _] => Resource::Application(id(1)),
        ["serviceprincipals"] => Resource::ServicePrincipals,
        ["serviceprincipals", f] if is_delta(f) => Resource::Delta(DeltaSet::ServicePrincipals),
        ["serviceprincipals", _] => Resource::ServicePrincipal(id(1)),
        ["reports", "authenticationmethods", "userregistrationdetails"] => {
            Resource::RegistrationDetails
        }
        ["users", _, "authentication", "methods"] => Resource::AuthMethods(id(1), MethodList::All),
        ["users", _, "authentication", list] => {
            let kind = METHOD_LISTS
                .iter()
                .find(|(segment, _, _)| segment == list)
                .map(|(_, kind, _)| *kind)
                .ok_or_else(|| id(3))?;
            Resource::AuthMethods(id(1), MethodList::Typed(kind))
        }
        ["users", _, "calendar", "calendarpermissions"] => Resource::CalendarPermissions(id(1)),
        ["users", _, "mailfolders", "inbox", "messagerules"] => Resource::MessageRules(id(1)),
        ["users", _, "mailboxsettings"] => Resource::MailboxSettings(id(1)),
        _ => return Err(first_unknown(&segments, &words)),
    };
    Ok(resource)
}

/// The delta function segment: "`/delta` is a shortcut for the fully qualified name
/// `/microsoft.graph.delta`" (learn.microsoft.com/graph/delta-query-overview).
fn is_delta(segment: &str) -> bool {
    matches!(
        segment,
        "delta" | "delta()" | "microsoft.graph.delta" | "microsoft.graph.delta()"
    )
}

fn first_unknown(segments: &[String], words: &[&str]) -> String {
    const KNOWN: &[&str] = &[
        "organization",
        "domains",
        "users",
        "applications",
        "serviceprincipals",
        "reports",
        "authenticationmethods",
        "userregistrationdetails",
        "authentication",
        "methods",
        "calendar",
        "calendarpermissions",
        "mailfolders",
        "inbox",
        "messagerules",
        "mailboxsettings",
    ];
    words
        .iter()
        .enumerate()
        .find(|(position, w)| {
            let is_id = position % 2 == 1 && words.first() != Some(&"reports");
            !(KNOWN.contains(w) || is_id)
        })
        .and_then(|(position, _)| segments.get(position).cloned())
        .or_else(|| segments.last().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_agent_path() {
        let cases = [
            ("/organization", "/v1.0/organization"),
            ("/users", "/v1.0/users"),
            ("/users/u1", "/v1.0/users/{id}"),
            (
                "/users/u1/authentication/methods",
                "/v1.0/users/{id}/authentication/methods",
            ),
            (
                "/users/u1/authentication/fido2Methods",
                "/v1.0/users/{id}/authentication/fido2Methods",
            ),
            (
                "/users/u1/mailfolders/Inbox/messagerules",
                "/v1.0/users/{id}/mailFolders/inbox/messageRules",
            ),
            (
                "/users/u1/calendar/calendarPermissions",
                "/v1.0/users/{id}/calendar/calendarPermissions",
            ),
            (
                "/reports/authenticationMethods/userRegistrationDetails",
                "/v1.0/reports/authenticationMethods/userRegistrationDetails",
            ),
            ("/servicePrincipals", "/v1.0/servicePrincipals"),
            ("/users/delta", "/v1.0/users/delta"),
            ("/users/microsoft.graph.delta", "/v1.0/users/delta"),
            ("/applications/delta", "/v1.0/applications/delta"),
            (
                "/servicePrincipals/delta()",
                "/v1.0/servicePrincipals/delta",
            ),
        ];
        for (path, template) in cases {
            assert_eq!(resolve(path).unwrap().template(), template, "{path}");
        }
    }

    #[test]
    fn upn_is_percent_decoded() {
        assert_eq!(
            resolve("/users/a%40contoso.com").unwrap(),
            Resource::User("a@contoso.com".into())
        );
    }

    #[test]
    fn unknown_segment_is_named() {
        assert_eq!(resolve("/users/u1/bogus").unwrap_err(), "bogus");
        assert_eq!(resolve("/groups").unwrap_err(), "groups");
    }
}
