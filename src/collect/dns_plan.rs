//! Which DNS names a scan resolves: every checked domain, its `_dmarc.` name, the
//! organizational domain's `_dmarc.` name when the domain has no DMARC record (Public Suffix
//! List, never for `*.onmicrosoft.com`), and `include:`/`redirect=` targets of SPF records, up
//! to RFC 7208's ten lookups per domain. Kept small: a simple term scan that the SPF/DMARC
//! checks' own "names still needed" function can replace.

use crate::snapshot::{DnsAnswers, Domain};
use std::collections::BTreeSet;

/// SPF lookups followed per domain (RFC 7208 section 4.6.4).
const MAX_SPF_LOOKUPS: usize = 10;

/// Domains whose SPF and DMARC are checked: verified, except `*.mail.onmicrosoft.com`;
/// lower case, no trailing dot.
pub fn checked_domains(domains: &[Domain]) -> Vec<String> {
    let mut names: Vec<String> = domains
        .iter()
        .filter(|d| d.is_verified == Some(true))
        .map(|d| d.id.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.ends_with(".mail.onmicrosoft.com"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Names not yet in `answers` that the checks of `domains` need, given what is known so far.
/// Call again after resolving them until it returns nothing.
pub fn names_to_resolve(domains: &[String], answers: &DnsAnswers) -> Vec<String> {
    let mut needed = BTreeSet::new();
    for domain in domains {
        needed.insert(domain.clone());
        let dmarc = format!("_dmarc.{domain}");
        if let Some(Ok(records)) = answers.get(&dmarc) {
            if !records.iter().any(|r| is_dmarc(r)) {
                if let Some(org) = organizational_domain(domain) {
                    needed.insert(format!("_dmarc.{org}"));
                }
            }
        }
        needed.insert(dmarc);
        needed.extend(spf_targets(domain, answers));
    }
    needed
        .into_iter()
        .filter(|name| !answers.contains_key(name))
        .collect()
}

/// The organizational domain of `domain` when it differs from it; `None` for
/// `*.onmicrosoft.com` and names the Public Suffix List does not know.
pub fn organizational_domain(domain: &str) -> Option<String> {
    if domain == "onmicrosoft.com" || domain.ends_with(".onmicrosoft.com") {
        return None;
    }
    let org = psl::domain_str(domain)?;
    (org != domain).then(|| org.to_owned())
}

fn is_dmarc(record: &str) -> bool {
    let trimmed = record.trim_start();
    trimmed
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("v=DMARC1"))
}

fn spf_record(records: &[String]) -> Option<&str> {
    let mut spf = records.iter().filter(|r| {
        let lower = r.trim().to_ascii_lowercase();
        lower == "v=spf1" || lower.starts_with("v=spf1 ")
    });
    let first = spf.next()?;
    spf.next().is_none().then_some(first.as_str())
}

/// `include:` and `redirect=` targets reachable from `domain`'s SPF record through answers
/// known so far, breadth first, at most [`MAX_SPF_LOOKUPS`].
fn spf_targets(domain: &str, answers: &DnsAnswers) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut queue = vec![domain.to_owned()];
    while let Some(name) = queue.pop() {
        let Some(Ok(records)) = answers.get(&name) else {
            continue;
        };
        let Some(record) = spf_record(records) else {
            continue;
        };
        for target in terms(record) {
            if seen.len() >= MAX_SPF_LOOKUPS {
                break;
            }
            if seen.insert(target.clone()) {
                queue.push(target);
            }
        }
    }
    seen.into_iter().collect()
}

fn terms(record: &str) -> Vec<String> {
    record
        .split_ascii_whitespace()
        .filter_map(|term| {
            let lower = term.to_ascii_lowercase();
            let lower = lower.trim_start_matches(['+', '-', '~', '?']);
            lower
                .strip_prefix("include:")
                .or_else(|| lower.strip_prefix("redirect="))
                .map(|t| t.trim_end_matches('.').to_owned())
        })
        .filter(|t| !t.is_empty() && !t.contains('%'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(&str, &[&str])]) -> DnsAnswers {
        pairs
            .iter()
            .map(|(n, r)| (n.to_string(), Ok(r.iter().map(|s| s.to_string()).collect())))
            .collect()
    }

    #[test]
    fn first_round_asks_domain_and_dmarc() {
        let names = names_to_resolve(&["contoso.com".into()], &DnsAnswers::new());
        assert_eq!(names, vec!["_dmarc.contoso.com", "contoso.com"]);
    }

    #[test]
    fn follows_includes_redirects_and_org_fallback() {
        let known = answers(&[
            (
                "mail.contoso.co.uk",
                &["v=spf1 include:_spf.example.net redirect=_spf.contoso.co.uk"],
            ),
            ("_dmarc.mail.contoso.co.uk", &[]),
        ]);
        let names = names_to_resolve(&["mail.contoso.co.uk".into()], &known);
        assert_eq!(
            names,
            vec![
                "_dmarc.contoso.co.uk",
                "_spf.contoso.co.uk",
                "_spf.example.net"
            ]
        );
        let mut known = known;
        known.insert(
            "_spf.example.net".into(),
            Ok(vec!["v=spf1 include:deep.example.org -all".into()]),
        );
        let names = names_to_resolve(&["mail.contoso.co.uk".into()], &known);
        assert!(names.contains(&"deep.example.org".to_string()), "{names:?}");
    }

    #[test]
    fn onmicrosoft_never_falls_back_and_mail_subdomain_is_skipped() {
        assert_eq!(organizational_domain("contoso.onmicrosoft.com"), None);
        assert_eq!(
            organizational_domain("a.b.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(organizational_domain("example.com"), None);
        let domains = [
            Domain {
                id: "Contoso.com".into(),
                is_verified: Some(true),
                ..Domain::default()
            },
            Domain {
                id: "contoso.mail.onmicrosoft.com".into(),
                is_verified: Some(true),
                ..Domain::default()
            },
            Domain {
                id: "unverified.example".into(),
                is_verified: Some(false),
                ..Domain::default()
            },
        ];
        assert_eq!(checked_domains(&domains), vec!["contoso.com"]);
    }

    #[test]
    fn lookups_are_bounded() {
        let record = (0..30)
            .map(|i| format!("include:n{i}.example"))
            .collect::<Vec<_>>()
            .join(" ");
        let known = answers(&[("loop.example", &[&format!("v=spf1 {record} -all")])]);
        let names = names_to_resolve(&["loop.example".into()], &known);
        assert_eq!(names.len(), 1 + MAX_SPF_LOOKUPS, "{names:?}");
    }
}
