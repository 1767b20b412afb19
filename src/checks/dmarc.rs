//! DMARC policy discovery and record parsing over the TXT answers in the snapshot (RFC 7489).
//!
//! Owns record parsing (section 6.3/6.4: `v=DMARC1` must be the first tag, value exact; tag
//! names and policy values are case-insensitive; `p`, `sp`, `pct`, `rua`, DMARCbis `t` are
//! read, `np` and other tags are ignored), the section 6.6.3 discovery (`_dmarc.<domain>`,
//! then `_dmarc.<organizational domain>` when the first holds no DMARC record; several records
//! stop discovery), and the judgements behind `domain.dmarc_*`. The organizational domain comes
//! from the Public Suffix List (crate `psl`); `*.onmicrosoft.com` never falls back, since
//! `onmicrosoft.com` itself is not a public suffix and belongs to Microsoft.
//!
//! Invariant: a name absent from the answers is `not_collected`, never "no record".

mod record;

pub use record::{is_dmarc_record, parse, DmarcError, DmarcRecord, Policy};

use super::spf::{normalize, TxtLookup};
use crate::snapshot::Unavailable;

/// Where the record that applies was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcSource {
    /// At `_dmarc.<domain>`.
    Domain,
    /// At `_dmarc.<organizational domain>`.
    Organizational,
}

impl DmarcSource {
    /// `domain` or `organizational`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Domain => "domain",
            Self::Organizational => "organizational",
        }
    }
}

/// The DMARC record that applies to a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDmarc {
    /// The record.
    pub record: DmarcRecord,
    /// Where it came from.
    pub source: DmarcSource,
    /// The `_dmarc.` name it was found at.
    pub location: String,
}

/// Why `domain.dmarc_partial` fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialReason {
    /// `pct` below 100.
    Pct,
    /// DMARCbis `t=y` (option `dmarc_t_flag_counts`).
    TestingFlag,
    /// `quarantine` (option `dmarc_quarantine_is_partial`).
    Quarantine,
}

impl PartialReason {
    /// `pct`, `t_flag` or `quarantine`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pct => "pct",
            Self::TestingFlag => "t_flag",
            Self::Quarantine => "quarantine",
        }
    }
}

impl AppliedDmarc {
    /// The policy for the domain: `p` at the domain, `sp` (else `p`) from the organizational domain.
    pub fn effective_policy(&self) -> Policy {
        match self.source {
            DmarcSource::Domain => self.record.policy,
            DmarcSource::Organizational => {
                self.record.subdomain_policy.unwrap_or(self.record.policy)
            }
        }
    }

    /// The policy for subdomains (`sp`, else `p`); only for a record found at the domain itself.
    pub fn subdomain_policy(&self) -> Option<Policy> {
        (self.source == DmarcSource::Domain)
            .then(|| self.record.subdomain_policy.unwrap_or(self.record.policy))
    }

    /// Why the enforced policy is only partly applied, if it is.
    pub fn partial(
        &self,
        t_flag_counts: bool,
        quarantine_is_partial: bool,
    ) -> Option<PartialReason> {
        match self.effective_policy() {
            Policy::None => None,
            _ if self.record.pct < 100 => Some(PartialReason::Pct),
            _ if t_flag_counts && self.record.testing => Some(PartialReason::TestingFlag),
            Policy::Quarantine if quarantine_is_partial => Some(PartialReason::Quarantine),
            _ => None,
        }
    }
}

/// Why no DMARC policy applies (the `reason` of `domain.dmarc_missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcMissingReason {
    /// No TXT record at either location.
    Missing,
    /// Several `v=DMARC1` records at the location where discovery stopped.
    Multiple,
    /// One `v=DMARC1` record with a missing or invalid `p`/`sp` and no valid `rua`, or only TXT
    /// records that are not DMARC records (`p=reject; v=DMARC1`, `v=dmarc1`).
    Invalid,
}

impl DmarcMissingReason {
    /// `missing`, `multiple` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Multiple => "multiple",
            Self::Invalid => "invalid",
        }
    }
}

/// The DMARC verdict for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcVerdict {
    /// A record applies.
    Applied(AppliedDmarc),
    /// No record applies (fires `domain.dmarc_missing`).
    Missing {
        /// Why.
        reason: DmarcMissingReason,
        /// The last `_dmarc.` name looked at.
        location: String,
        /// The `v=DMARC1` texts found there.
        records: Vec<String>,
    },
    /// A lookup the verdict needs failed or was not collected.
    DnsError(Unavailable),
}

/// The organizational domain to fall back to, or `None` when there is no fallback: the domain
/// is its own organizational domain, is not under a known suffix, or is `*.onmicrosoft.com`.
pub fn fallback_domain(domain: &str) -> Option<String> {
    let name = normalize(domain);
    if name == "onmicrosoft.com" || name.ends_with(".onmicrosoft.com") {
        return None;
    }
    let organizational = psl::domain_str(&name)?.to_owned();
    (organizational != name).then_some(organizational)
}

/// Finds and judges the DMARC record that applies to `domain`.
///
/// A location with TXT records but no `v=DMARC1` one still falls back (RFC 7489 6.6.3 step 4);
/// when nothing applies in the end, such texts make the reason `invalid` rather than `missing`.
pub fn evaluate_dmarc<'a>(domain: &str, lookup: &TxtLookup<'a>) -> DmarcVerdict {
    let name = normalize(domain);
    let at_domain = at_location(&format!("_dmarc.{name}"), DmarcSource::Domain, lookup);
    let (Some(organizational), Found::Nothing { texts, .. }) = (fallback_domain(&name), &at_domain)
    else {
        return at_domain.into_verdict();
    };
    let location = format!("_dmarc.{organizational}");
    match at_location(&location, DmarcSource::Organizational, lookup) {
        Found::Nothing {
            texts: org_texts, ..
        } if org_texts.is_empty() && !texts.is_empty() => at_domain.into_verdict(),
        at_organizational => at_organizational.into_verdict(),
    }
}

/// The `_dmarc.` names DMARC discovery for `domain` still needs that are absent from the
/// answers (at most one per call: the fallback name is known only after the first answer).
pub fn dmarc_names_needed<'a>(domain: &str, lookup: &TxtLookup<'a>) -> Vec<String> {
    let name = normalize(domain);
    let location = format!("_dmarc.{name}");
    let Some(answer) = lookup(&location) else {
        return vec![location];
    };
    let no_record = answer
        .as_ref()
        .is_ok_and(|texts| !texts.iter().any(|t| is_dmarc_record(t)));
    match fallback_domain(&name) {
        Some(organizational) if no_record => {
            let fallback = format!("_dmarc.{organizational}");
            if lookup(&fallback).is_none() {
                vec![fallback]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// What one `_dmarc.` location holds.
enum Found {
    /// A verdict that ends discovery.
    Verdict(DmarcVerdict),
    /// No `v=DMARC1` record; `texts` are the other TXT records there.
    Nothing {
        location: String,
        texts: Vec<String>,
    },
}

impl Found {
    fn into_verdict(self) -> DmarcVerdict {
        match self {
            Self::Verdict(verdict) => verdict,
            Self::Nothing { location, texts } => DmarcVerdict::Missing {
                reason: if texts.is_empty() {
                    DmarcMissingReason::Missing
                } else {
                    DmarcMissingReason::Invalid
                },
                location,
                records: texts,
            },
        }
    }
}

fn at_location(location: &str, source: DmarcSource, lookup: &TxtLookup<'_>) -> Found {
    let texts = match lookup(location) {
        None => {
            return Found::Verdict(DmarcVerdict::DnsError(Unavailable::NotCollected {
                detail: format!("no txt answer for {location}"),
            }))
        }
        Some(Err(failure)) => return Found::Verdict(DmarcVerdict::DnsError(failure.clone())),
        Some(Ok(texts)) => texts,
    };
    let records: Vec<String> = texts
        .iter()
        .filter(|t| is_dmarc_record(t))
        .cloned()
        .collect();
    let missing = |reason| DmarcVerdict::Missing {
        reason,
        location: location.to_owned(),
        records: records.clone(),
    };
    Found::Verdict(match records.as_slice() {
        [] => {
            return Found::Nothing {
                location: location.to_owned(),
                texts: texts.clone(),
            }
        }
        [text] => match parse(text) {
            Ok(record) => DmarcVerdict::Applied(AppliedDmarc {
                record,
                source,
                location: location.to_owned(),
            }),
            Err(_) => missing(DmarcMissingReason::Invalid),
        },
        _ => missing(DmarcMissingReason::Multiple),
    })
}
