//! What counts as inside the organization, shared by the user, calendar and forwarding checks.
//!
//! Owns the internal-domain set (verified tenant domains, the `<initial>.mail.onmicrosoft.com`
//! routing domain and `extra_internal_domains`), the classification of one e-mail address as
//! internal, external or unresolved (`findings-spec.md` section 3, `isExternal`), the
//! `exclude_users` match, and small helpers every check file uses to build findings.
//! Domains are compared lower-case without a trailing dot.

use super::{CheckOptions, Evaluation, Outcome, ReasonsBuilder};
use crate::findings::{Finding, FindingId};
use crate::snapshot::{Domain, PerUser, Section, Unavailable, User};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Suffix of the initial (MOERA) tenant domain.
const ONMICROSOFT_SUFFIX: &str = ".onmicrosoft.com";

/// The set of domains whose addresses are internal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InternalDomains {
    domains: BTreeSet<String>,
    subdomains_internal: bool,
}

/// How one address relates to the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressClass {
    /// The domain is internal.
    Internal,
    /// The domain (normalized) is not internal.
    External {
        /// The recipient domain, lower-case without a trailing dot.
        domain: String,
    },
    /// No address, or no domain (legacyExchangeDN, X500): counted as internal but reported.
    Unresolved,
}

impl InternalDomains {
    /// Builds the set from `/domains` (verified ones only) and the check options.
    ///
    /// The initial domain `<x>.onmicrosoft.com` also makes `<x>.mail.onmicrosoft.com` internal,
    /// since Exchange Online routes through it.
    pub fn new(domains: &[Domain], options: &CheckOptions) -> Self {
        let mut set = BTreeSet::new();
        for domain in domains.iter().filter(|d| d.is_verified == Some(true)) {
            let name = normalize_domain(&domain.id);
            if domain.is_initial == Some(true) {
                if let Some(tenant) = name.strip_suffix(ONMICROSOFT_SUFFIX) {
                    set.insert(format!("{tenant}.mail{ONMICROSOFT_SUFFIX}"));
                }
            }
            set.insert(name);
        }
        set.extend(
            options
                .extra_internal_domains
                .iter()
                .map(|d| normalize_domain(d)),
        );
        set.remove("");
        Self {
            domains: set,
            subdomains_internal: options.subdomains_internal,
        }
    }

    /// True when `domain` (any case, trailing dot allowed) is internal.
    pub fn contains(&self, domain: &str) -> bool {
        let domain = normalize_domain(domain);
        if self.domains.contains(&domain) {
            return true;
        }
        self.subdomains_internal
            && self
                .domains
                .iter()
                .any(|parent| domain.ends_with(&format!(".{parent}")))
    }

    /// Classifies an SMTP address; the domain is the text after the last `@`.
    pub fn classify(&self, address: Option<&str>) -> AddressClass {
        let Some(address) = address.map(str::trim).filter(|a| !a.is_empty()) else {
            return AddressClass::Unresolved;
        };
        let Some((_, domain)) = address.rsplit_once('@') else {
            return AddressClass::Unresolved;
        };
        let domain = normalize_domain(domain);
        if domain.is_empty() {
            AddressClass::Unresolved
        } else if self.contains(&domain) {
            AddressClass::Internal
        } else {
            AddressClass::External { domain }
        }
    }
}

/// Lower-cases a domain name and removes surrounding space and one trailing dot.
pub fn normalize_domain(domain: &str) -> String {
    let trimmed = domain.trim();
    trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase()
}

/// True when the user is listed in `exclude_users` by UPN or id (exact, case-insensitive).
pub fn is_excluded(user: &User, options: &CheckOptions) -> bool {
    is_excluded_id(&user.id, Some(user), options)
}

/// Like [`is_excluded`] for a per-user section entry whose user may be missing from `/users`.
pub fn is_excluded_id(user_id: &str, user: Option<&User>, options: &CheckOptions) -> bool {
    let upn = user.and_then(|u| u.user_principal_name.as_deref());
    options.exclude_users.iter().any(|excluded| {
        let excluded = excluded.trim();
        excluded.eq_ignore_ascii_case(user_id)
            || upn.is_some_and(|upn| excluded.eq_ignore_ascii_case(upn))
    })
}

/// Users by object id, for per-user sections.
pub fn users_by_id(users: &[User]) -> BTreeMap<&str, &User> {
    users.iter().map(|u| (&*u.id, u)).collect()
}

/// The users of a per-user section that gave no evidence: failed reads, and reads Graph
/// answered with 404 ([`Unavailable::NotReadable`]) or that were never made.
#[derive(Debug, Default)]
pub struct Unread {
    /// `(user_id, reason)` of failed reads: the check is in error for them.
    pub failed: ReasonsBuilder,
    /// User id to reason of users not evaluated (see [`Evaluation::unevaluated`]).
    pub unevaluated: ReasonsBuilder,
}

impl Unread {
    /// Records a user whose read did not succeed.
    pub fn add(&mut self, user_id: &str, reason: &Unavailable) {
        match reason {
            Unavailable::NotReadable { reason } => self.unevaluated.insert(user_id, reason),
            other => self.failed.insert_display(user_id, other),
        }
    }
}

/// Walks a per-user mailbox section: skips excluded users and guests (guests have no mailbox
/// in the tenant), calls `visit(user_id, resource_name, items)` for every user that was read,
/// and returns the users whose read failed or gave no answer.
pub fn each_mailbox<T>(
    section: &PerUser<T>,
    users: &[User],
    options: &CheckOptions,
    mut visit: impl FnMut(&str, &str, &[T]),
) -> Unread {
    let users = users_by_id(users);
    let mut unread = Unread::default();
    for (user_id, result) in section {
        let user = users.get(&**user_id).copied();
        if is_excluded_id(user_id, user, options) || user.is_some_and(User::is_guest) {
            continue;
        }
        match result {
            Ok(items) => visit(user_id, user.map_or(&**user_id, User::name), items),
            Err(reason) => unread.add(user_id, reason),
        }
    }
    unread
}

/// The section's data, or the [`Outcome::Skipped`] that a check returns when it is unavailable.
pub fn available<T>(section: &Section<T>) -> Result<&T, Outcome> {
    section.as_ref().map_err(|reason| Outcome::Skipped {
        reason: reason.to_string(),
    })
}

/// Turns a `json!({...})` value into a details map (anything else gives an empty map).
pub fn details(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Builds a finding.
pub fn finding(
    id: FindingId,
    resource_id: String,
    resource_name: &str,
    details: Map<String, Value>,
) -> Finding {
    Finding {
        finding: id,
        resource_id,
        resource_name: resource_name.to_owned(),
        details: details.into(),
    }
}

/// The evaluated outcome, findings sorted by resource id and failed resources by user id.
pub fn evaluated(mut findings: Vec<Finding>, unread: Unread) -> Outcome {
    findings.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
    Outcome::Evaluated(Evaluation {
        findings,
        failed_resources: unread.failed.build(),
        unevaluated: unread.unevaluated.build(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(id: &str, verified: bool, initial: bool) -> Domain {
        Domain {
            id: id.to_owned(),
            is_verified: Some(verified),
            is_initial: Some(initial),
            ..Domain::default()
        }
    }

    fn tenant_domains(options: &CheckOptions) -> InternalDomains {
        let domains = [
            domain("contoso.onmicrosoft.com", true, true),
            domain("Contoso.com", true, false),
            domain("pending.example", false, false),
        ];
        InternalDomains::new(&domains, options)
    }

    #[test]
    fn verified_domains_and_mail_routing_domain_are_internal() {
        let internal = tenant_domains(&CheckOptions::default());
        assert_eq!(
            internal.classify(Some("a@contoso.com")),
            AddressClass::Internal
        );
        assert_eq!(
            internal.classify(Some("a@CONTOSO.com.")),
            AddressClass::Internal
        );
        assert_eq!(
            internal.classify(Some("a@contoso.mail.onmicrosoft.com")),
            AddressClass::Internal
        );
        assert_eq!(
            internal.classify(Some("a@pending.example")),
            AddressClass::External {
                domain: "pending.example".to_owned()
            }
        );
    }

    #[test]
    fn subdomains_are_external_unless_the_option_is_on() {
        let default = tenant_domains(&CheckOptions::default());
        assert!(matches!(
            default.classify(Some("a@eu.contoso.com")),
            AddressClass::External { .. }
        ));
        let options = CheckOptions {
            subdomains_internal: true,
            ..CheckOptions::default()
        };
        let lenient = tenant_domains(&options);
        assert_eq!(
            lenient.classify(Some("a@eu.contoso.com")),
            AddressClass::Internal
        );
        assert!(matches!(
            lenient.classify(Some("a@notcontoso.com")),
            AddressClass::External { .. }
        ));
    }

    #[test]
    fn extra_domains_count_and_addresses_without_domain_are_unresolved() {
        let options = CheckOptions {
            extra_internal_domains: vec!["Partner.Example.".to_owned()],
            ..CheckOptions::default()
        };
        let internal = tenant_domains(&options);
        assert_eq!(
            internal.classify(Some("x@partner.example")),
            AddressClass::Internal
        );
        let x500 = "/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=bob";
        assert_eq!(internal.classify(Some(x500)), AddressClass::Unresolved);
        assert_eq!(internal.classify(None), AddressClass::Unresolved);
        assert_eq!(internal.classify(Some("bob@")), AddressClass::Unresolved);
    }

    #[test]
    fn exclusion_matches_upn_or_id_case_insensitively() {
        let user = User {
            id: "u-1".into(),
            user_principal_name: Some("Svc@Contoso.com".into()),
            ..User::default()
        };
        let by_upn = CheckOptions {
            exclude_users: vec!["svc@contoso.com".to_owned()],
            ..CheckOptions::default()
        };
        let by_id = CheckOptions {
            exclude_users: vec!["U-1".to_owned()],
            ..CheckOptions::default()
        };
        assert!(is_excluded(&user, &by_upn));
        assert!(is_excluded(&user, &by_id));
        assert!(!is_excluded(&user, &CheckOptions::default()));
        assert!(is_excluded_id("u-1", None, &by_id));
        assert!(!is_excluded_id("u-1", None, &by_upn));
    }
}
