//! Suppressions: which finding instances are accepted, by finding, tenant, exact resource id
//! or a case-insensitive resource name pattern with `*` wildcards, until an optional expiry.
//!
//! A suppressed instance is still evaluated and stored; reconcile only withholds its `new`
//! event and metrics count it apart. Matching is pure: `now` is the scan's start.

use crate::config::Suppression;
use crate::findings::FindingId;
use chrono::{DateTime, Utc};

/// What identifies one instance for suppression matching.
#[derive(Debug, Clone, Copy)]
pub struct InstanceKey<'a> {
    /// Tenant name from config.
    pub tenant: &'a str,
    /// Which finding.
    pub finding: FindingId,
    /// The instance key.
    pub resource_id: &'a str,
    /// UPN, app or domain name.
    pub resource_name: &'a str,
}

/// Whether any suppression that is in force at `now` covers the instance.
pub fn is_suppressed(
    suppressions: &[Suppression],
    key: &InstanceKey<'_>,
    now: DateTime<Utc>,
) -> bool {
    suppressions
        .iter()
        .any(|rule| in_force(rule, now) && covers(rule, key))
}

/// In force: no expiry, or the expiry is still ahead.
pub fn in_force(rule: &Suppression, now: DateTime<Utc>) -> bool {
    rule.expires.map_or(true, |expires| now < expires)
}

/// Whether the rule's finding, tenant, resource id and name pattern all match.
pub fn covers(rule: &Suppression, key: &InstanceKey<'_>) -> bool {
    rule.finding == key.finding
        && rule.tenant.as_deref().map_or(true, |t| t == key.tenant)
        && rule
            .resource_id
            .as_deref()
            .map_or(true, |id| id == key.resource_id)
        && rule
            .resource_name
            .as_deref()
            .map_or(true, |pattern| glob_matches(pattern, key.resource_name))
}

/// Case-insensitive match of `text` against `pattern`, where `*` matches any run of characters.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    // Classic greedy matcher with backtracking to the last star.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match (pattern.get(p), text.get(t)) {
            (Some('*'), _) => {
                star = Some((p, t));
                p += 1;
            }
            (Some(pc), Some(tc)) if pc == tc => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .map_or(true, |rest| rest.iter().all(|c| *c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rule() -> Suppression {
        Suppression {
            finding: FindingId::AccountDisabled,
            tenant: None,
            resource_id: None,
            resource_name: Some("*@contoso.com".to_owned()),
            reason: "shared mailboxes".to_owned(),
            owner: "it@contoso.com".to_owned(),
            expires: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
        }
    }

    fn key<'a>(name: &'a str) -> InstanceKey<'a> {
        InstanceKey {
            tenant: "contoso",
            finding: FindingId::AccountDisabled,
            resource_id: "u1",
            resource_name: name,
        }
    }

    #[test]
    fn glob_is_case_insensitive_with_stars() {
        assert!(glob_matches("*@contoso.com", "Ann@Contoso.com"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("exact", "EXACT"));
        assert!(!glob_matches("*@contoso.com", "ann@contoso.com.evil"));
        assert!(!glob_matches("a*b", "ac"));
        assert!(glob_matches("*b*b", "abab"));
    }

    #[test]
    fn suppression_needs_every_given_part_and_expires() {
        let before = Utc.with_ymd_and_hms(2029, 12, 31, 0, 0, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
        let rules = [rule()];
        assert!(is_suppressed(&rules, &key("ann@contoso.com"), before));
        assert!(!is_suppressed(&rules, &key("ann@contoso.com"), after));
        assert!(!is_suppressed(&rules, &key("ann@fabrikam.com"), before));
        let mut other = key("ann@contoso.com");
        other.finding = FindingId::NotLegalAdult;
        assert!(!is_suppressed(&rules, &other, before));
        let mut by_tenant = rule();
        by_tenant.tenant = Some("fabrikam".to_owned());
        assert!(!is_suppressed(
            &[by_tenant],
            &key("ann@contoso.com"),
            before
        ));
        let mut by_id = rule();
        by_id.resource_name = None;
        by_id.resource_id = Some("u2".to_owned());
        assert!(!is_suppressed(&[by_id.clone()], &key("x"), before));
        by_id.resource_id = Some("u1".to_owned());
        assert!(is_suppressed(&[by_id], &key("x"), before));
    }
}
