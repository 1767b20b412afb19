//! Checks for domain verification, SPF and DMARC (`domain.*`), and the list of TXT names
//! collection must resolve for them.
//!
//! Domain set for SPF and DMARC (findings-spec E1-E6): verified domains except
//! `*.mail.onmicrosoft.com`; with `only_email_domains`, only those whose `supportedServices`
//! include `Email`; DMARC skips `*.onmicrosoft.com` when `dmarc_include_moera` is off. Resource
//! id and name of every instance are the domain, lower-case without a trailing dot.
//!
//! Invariants: `/domains` unavailable skips all eight checks; a domain whose DNS data failed or
//! was not collected is listed in `failed_resources` (reason like `dns_servfail: <name>`) and
//! gets no finding, so its stored instances stay as they were. An SPF permerror (syntax, more
//! than 10 lookups or 2 void lookups, loops, targets without SPF) is a definite answer: it
//! fires `domain.spf_invalid` alone. Several `v=spf1` records stay `domain.spf_missing`.
//! `spf_missing` depends only on the domain's own TXT answer, not on include or redirect
//! targets.

use super::dmarc::{self, AppliedDmarc, DmarcVerdict, Policy};
use super::spf::{self, normalize, DnsNeeded, SpfAnswers, SpfVerdict, TxtAnswer};
use super::{CheckOptions, EvalCtx, Evaluation, Outcome, ReasonsBuilder, ResourceReasons};
use crate::findings::{Finding, FindingId};
use crate::snapshot::{DnsAnswers, Domain, HostAnswers, TenantSnapshot, Unavailable};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    let domains = match &snapshot.domains {
        Ok(domains) => domains,
        Err(unavailable) => {
            return Outcome::Skipped {
                reason: unavailable.to_string(),
            }
        }
    };
    let lookup = |name: &str| snapshot.dns.get(name);
    let spf_answers = SpfAnswers {
        txt: &lookup,
        hosts: &snapshot.dns_hosts,
    };
    let options = ctx.options;
    let evaluation = match id {
        FindingId::DomainNotVerified => Evaluation {
            findings: not_verified(domains),
            failed_resources: ResourceReasons::default(),
            ..Evaluation::default()
        },
        FindingId::SpfAllowsAny | FindingId::SpfMissing | FindingId::SpfInvalid => per_domain(
            spf_domains(domains, options),
            |name| match spf::evaluate_spf(name, &spf_answers) {
                // `spf_missing` needs only the domain's own answer: when that arrived, a failed
                // include or redirect target leaves exactly one record, so "not missing" holds.
                SpfVerdict::DnsError(failure)
                    if id != FindingId::SpfMissing || !matches!(lookup(name), Some(Ok(_))) =>
                {
                    Err(failure)
                }
                // No evidence either way: the domain is unevaluated and its instance keeps its
                // state (findings-spec.md E1: macros are not expanded).
                SpfVerdict::Undecided { .. } if id == FindingId::SpfAllowsAny => {
                    Err(Unavailable::NotApplicable {
                        detail: SPF_REDIRECT_MACRO.to_owned(),
                    })
                }
                verdict => Ok(verdict),
            },
            |name, verdict| spf_finding(id, name, verdict, options),
        ),
        FindingId::DmarcMissing
        | FindingId::DmarcNotEnforced
        | FindingId::DmarcSubdomainsNotEnforced
        | FindingId::DmarcPartial => per_domain(
            dmarc_domains(domains, options),
            |name| match dmarc::evaluate_dmarc(name, &lookup) {
                DmarcVerdict::DnsError(failure) => Err(failure),
                verdict => Ok(verdict),
            },
            |name, verdict| dmarc_finding(id, name, verdict, options),
        ),
        _ => {
            return Outcome::Skipped {
                reason: format!("not_a_domain_check: {id}"),
            }
        }
    };
    Outcome::Evaluated(evaluation)
}

/// The `unevaluated` reason of a domain whose SPF outcome a `redirect=` to a macro decides.
pub const SPF_REDIRECT_MACRO: &str = "spf_redirect_macro";

/// Judges each domain; a domain whose verdict failed goes to `failed_resources` instead, and
/// one that cannot be judged although its data arrived ([`Unavailable::NotApplicable`]) to
/// `unevaluated`, with the detail as its reason.
fn per_domain<V>(
    names: Vec<String>,
    verdict_of: impl Fn(&str) -> Result<V, Unavailable>,
    finding_of: impl Fn(&str, &V) -> Option<Finding>,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    let mut failed = ReasonsBuilder::default();
    let mut unevaluated = ReasonsBuilder::default();
    for name in names {
        match verdict_of(&name) {
            Ok(verdict) => evaluation.findings.extend(finding_of(&name, &verdict)),
            Err(Unavailable::NotApplicable { detail }) => unevaluated.insert(&name, &detail),
            Err(failure) => failed.insert_display(&name, &failure),
        }
    }
    evaluation.failed_resources = failed.build();
    evaluation.unevaluated = unevaluated.build();
    evaluation
}

/// The domains whose SPF is checked: verified, not `*.mail.onmicrosoft.com`, and with
/// `only_email_domains` only those serving `Email`. Normalized, sorted, without duplicates.
pub fn spf_domains(domains: &[Domain], options: &CheckOptions) -> Vec<String> {
    let names: BTreeSet<String> = domains
        .iter()
        .filter(|d| d.is_verified == Some(true))
        .filter(|d| {
            !options.only_email_domains
                || d.supported_services
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case("Email"))
        })
        .map(|d| normalize(&d.id))
        .filter(|name| !name.is_empty() && !name.ends_with(".mail.onmicrosoft.com"))
        .collect();
    names.into_iter().collect()
}

/// The domains whose DMARC is checked: [`spf_domains`], without `*.onmicrosoft.com` when
/// `dmarc_include_moera` is off.
pub fn dmarc_domains(domains: &[Domain], options: &CheckOptions) -> Vec<String> {
    spf_domains(domains, options)
        .into_iter()
        .filter(|name| options.dmarc_include_moera || !name.ends_with(".onmicrosoft.com"))
        .collect()
}

/// The names collection still has to resolve for the SPF and DMARC checks, given the answers
/// collected so far. TXT: each checked domain, its `_dmarc.` name, the organizational
/// domain's `_dmarc.` name once the first holds no DMARC record, and the `include:`/`redirect=`
/// targets the SPF walk reaches (within the 10-lookup limit, loops cut). A/AAAA and MX: the
/// names of the `a`, `mx` and `exists` terms the walk reaches.
///
/// Call it in a loop: resolve every returned name, store each answer (NXDOMAIN or no records
/// as `Ok(vec![])`, failures as `Err`) under the returned key, and call again until it returns
/// nothing. Names already answered (even as `Err`) are never returned, so the loop ends; an
/// include chain of depth n takes about n rounds. Each list is sorted and has no duplicates;
/// keys are lower-case without a trailing dot, as [`DnsAnswers`] expects.
pub fn dns_names_needed(
    domains: &[Domain],
    options: &CheckOptions,
    answers: &DnsAnswers,
    hosts: &HostAnswers,
) -> DnsNeeded {
    let lookup = |name: &str| -> Option<&TxtAnswer> { answers.get(name) };
    let spf_answers = SpfAnswers {
        txt: &lookup,
        hosts,
    };
    let mut needed = DnsNeeded::default();
    for name in spf_domains(domains, options) {
        needed.extend(spf::spf_names_needed(&name, &spf_answers));
    }
    let dmarc_names = dmarc_domains(domains, options)
        .iter()
        .flat_map(|name| dmarc::dmarc_names_needed(name, &lookup))
        .collect();
    needed.extend(DnsNeeded {
        txt: dmarc_names,
        ..DnsNeeded::default()
    });
    needed.txt.retain(|name| !answers.contains_key(name));
    needed
        .addresses
        .retain(|name| !hosts.addresses.contains_key(name));
    needed.mx.retain(|name| !hosts.mx.contains_key(name));
    needed
}

/// Unverified domains, one finding each, in resource id order like every other check.
fn not_verified(domains: &[Domain]) -> Vec<Finding> {
    let mut names = BTreeSet::new();
    let mut findings: Vec<Finding> = domains
        .iter()
        .filter(|d| d.is_verified == Some(false))
        .filter(|d| names.insert(normalize(&d.id)))
        .map(|d| {
            let mut details = Map::new();
            details.insert("is_default".into(), json!(d.is_default));
            details.insert("authentication_type".into(), json!(d.authentication_type));
            details.insert("supported_services".into(), json!(d.supported_services));
            finding(FindingId::DomainNotVerified, &normalize(&d.id), details)
        })
        .collect();
    findings.sort_by(|a, b| a.resource_id.cmp(&b.resource_id));
    findings
}

fn spf_finding(
    id: FindingId,
    name: &str,
    verdict: &SpfVerdict,
    options: &CheckOptions,
) -> Option<Finding> {
    let mut details = Map::new();
    match (id, verdict) {
        (
            FindingId::SpfAllowsAny,
            SpfVerdict::Evaluated {
                record,
                allows_any: Some(any),
                unevaluable,
            },
        ) if options.spf_neutral_counts || !any.reason.is_neutral() => {
            details.insert("spf_record".into(), json!(record));
            details.insert("reason".into(), json!(any.reason.to_string()));
            details.insert("term".into(), json!(any.term));
            details.insert("record_domain".into(), json!(any.record_domain));
            if !any.via_redirect.is_empty() {
                details.insert("via_redirect".into(), json!(any.via_redirect));
            }
            if !unevaluable.is_empty() {
                details.insert("unevaluable_terms".into(), json!(unevaluable));
            }
        }
        (FindingId::SpfMissing, SpfVerdict::Missing { reason, records }) => {
            details.insert("reason".into(), json!(reason.as_str()));
            details.insert("spf_records".into(), json!(records));
        }
        (
            FindingId::SpfInvalid,
            SpfVerdict::PermError {
                record,
                error,
                term,
                record_domain,
            },
        ) => {
            details.insert("spf_record".into(), json!(record));
            details.insert("cause".into(), json!(error.kind()));
            details.insert("term".into(), json!(term));
            details.insert("record_domain".into(), json!(record_domain));
            details.insert("error".into(), json!(error.to_string()));
        }
        _ => return None,
    }
    Some(finding(id, name, details))
}

fn dmarc_finding(
    id: FindingId,
    name: &str,
    verdict: &DmarcVerdict,
    options: &CheckOptions,
) -> Option<Finding> {
    let applied = match (id, verdict) {
        (
            FindingId::DmarcMissing,
            DmarcVerdict::Missing {
                reason,
                location,
                records,
            },
        ) => {
            let mut details = Map::new();
            details.insert("reason".into(), json!(reason.as_str()));
            details.insert("location".into(), json!(location));
            details.insert("dmarc_records".into(), json!(records));
            return Some(finding(id, name, details));
        }
        (_, DmarcVerdict::Applied(applied)) => applied,
        _ => return None,
    };
    let mut details = dmarc_details(applied);
    let fires = match id {
        FindingId::DmarcNotEnforced => applied.effective_policy() == Policy::None,
        FindingId::DmarcSubdomainsNotEnforced => {
            let policy = applied.subdomain_policy();
            details.insert("subdomain_policy".into(), json!(policy.map(Policy::as_str)));
            policy == Some(Policy::None)
        }
        FindingId::DmarcPartial => {
            let reason = applied.partial(
                options.dmarc_t_flag_counts,
                options.dmarc_quarantine_is_partial,
            );
            details.insert("reason".into(), json!(reason.map(|r| r.as_str())));
            reason.is_some()
        }
        _ => false,
    };
    fires.then(|| finding(id, name, details))
}

/// The record and its tags as evidence.
fn dmarc_details(applied: &AppliedDmarc) -> Map<String, Value> {
    let record = &applied.record;
    let mut details = Map::new();
    details.insert("dmarc_record".into(), json!(record.text));
    details.insert("p".into(), json!(record.policy.as_str()));
    details.insert(
        "sp".into(),
        json!(record.subdomain_policy.map(Policy::as_str)),
    );
    details.insert("pct".into(), json!(record.pct));
    details.insert("source".into(), json!(applied.source.as_str()));
    details.insert("location".into(), json!(applied.location));
    details.insert(
        "effective_policy".into(),
        json!(applied.effective_policy().as_str()),
    );
    if record.testing {
        details.insert("t".into(), json!("y"));
    }
    if record.policy_assumed {
        details.insert("policy_assumed".into(), json!(true));
    }
    if !record.warnings.is_empty() {
        details.insert("warnings".into(), json!(record.warnings));
    }
    details
}

fn finding(id: FindingId, name: &str, details: Map<String, Value>) -> Finding {
    Finding {
        finding: id,
        resource_id: name.to_owned(),
        resource_name: name.to_owned(),
        details: details.into(),
    }
}
