//! SPF evaluation over the DNS answers in the snapshot (RFC 7208), without a client IP.
//!
//! Owns the structural questions "does this domain's SPF policy let any IP address send?"
//! (`domain.spf_allows_any`), "is there exactly one SPF record?" (`domain.spf_missing`) and
//! "is the record a permerror for every receiver?" (`domain.spf_invalid`). The walk follows
//! RFC 7208 order: directives up to the first `all`, then `redirect=` only when the record has
//! no `all`; `include:` matches only when its target passes for every address. Every
//! `include`, `a`, `mx`, `ptr`, `exists` and `redirect` costs one of [`MAX_DNS_LOOKUPS`]; more
//! is a permerror, and so are more than [`MAX_VOID_LOOKUPS`] lookups that find nothing, an
//! `mx` with more than [`MAX_MX_NAMES`] exchanges, and an include/redirect loop (section
//! 4.6.4). `a`, `mx` and `exists` read the A/AAAA/MX answers; an `a`/`mx` with a `/0` cidr
//! matches every address of the family only when its name has addresses of that family.
//! Pass ranges whose union covers a family count as a `/0` range. Macros are not expanded:
//! such terms are listed as unevaluable and never fire; `ptr` depends on the client and is
//! only counted.
//!
//! Invariant: a name the walk needs that is absent from the answers is an error
//! (`not_collected`), never "no record"; a failed lookup is [`SpfVerdict::DnsError`].

mod coverage;
mod domain_spec;
mod record;
mod verdict;
mod walk;

pub use domain_spec::DomainSpec;
pub use record::{
    is_spf_record, parse, Directive, Mechanism, Qualifier, SpfRecord, SpfSyntaxError,
};

pub use verdict::{AllowsAny, AllowsAnyReason, MissingReason, SpfError, SpfVerdict};

use crate::snapshot::{HostAnswers, Unavailable};
use walk::{Reach, Stop, Walker};

/// RFC 7208 section 4.6.4: at most 10 DNS-querying terms per evaluation.
pub const MAX_DNS_LOOKUPS: usize = 10;

/// RFC 7208 section 4.6.4: at most two DNS-querying terms may find nothing (NXDOMAIN or no
/// records of the type asked for).
pub const MAX_VOID_LOOKUPS: usize = 2;

/// RFC 7208 section 4.6.4: an `mx` term may meet at most 10 exchanges.
pub const MAX_MX_NAMES: usize = 10;

/// One TXT answer as the snapshot keeps it (see [`crate::snapshot::DnsAnswers`]).
pub type TxtAnswer = Result<Vec<String>, Unavailable>;

/// Looks a TXT name up in the collected answers; `None` means "not looked up".
pub type TxtLookup<'a> = dyn Fn(&str) -> Option<&'a TxtAnswer> + 'a;

/// The DNS answers an SPF evaluation reads: TXT through a lookup, A/AAAA/MX from a map.
pub struct SpfAnswers<'l, 'a> {
    /// TXT answers.
    pub txt: &'l TxtLookup<'a>,
    /// A, AAAA and MX answers.
    pub hosts: &'l HostAnswers,
}

/// The names an SPF evaluation still needs, by record type; sorted, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsNeeded {
    /// TXT names (the domain, include and redirect targets).
    pub txt: Vec<String>,
    /// Names whose A and AAAA records are needed (`a`, `exists`, exchanges of a `/0` `mx`).
    pub addresses: Vec<String>,
    /// Names whose MX records are needed.
    pub mx: Vec<String>,
}

impl DnsNeeded {
    /// True when nothing is needed.
    pub fn is_empty(&self) -> bool {
        self.txt.is_empty() && self.addresses.is_empty() && self.mx.is_empty()
    }

    /// Adds `other`, keeping each list sorted and without duplicates.
    pub fn extend(&mut self, other: DnsNeeded) {
        for (mine, theirs) in [
            (&mut self.txt, other.txt),
            (&mut self.addresses, other.addresses),
            (&mut self.mx, other.mx),
        ] {
            mine.extend(theirs);
            mine.sort();
            mine.dedup();
        }
    }
}

/// Evaluates the SPF policy of `domain` over the collected answers.
pub fn evaluate_spf(domain: &str, dns: &SpfAnswers<'_, '_>) -> SpfVerdict {
    let name = normalize(domain);
    let texts = match (dns.txt)(&name) {
        None => return SpfVerdict::DnsError(not_collected("txt", &name)),
        Some(Err(failure)) => return SpfVerdict::DnsError(failure.clone()),
        Some(Ok(texts)) => texts,
    };
    let records: Vec<String> = texts.iter().filter(|t| is_spf_record(t)).cloned().collect();
    let [record] = records.as_slice() else {
        let reason = if records.is_empty() {
            MissingReason::Missing
        } else {
            MissingReason::Multiple
        };
        return SpfVerdict::Missing { reason, records };
    };
    let mut walker = Walker::new(dns, false);
    match walker.walk_text(&name, record) {
        Ok(Reach::Undecided) => SpfVerdict::Undecided {
            record: record.clone(),
            unevaluable: walker.unevaluable,
        },
        Ok(reach) => SpfVerdict::Evaluated {
            record: record.clone(),
            allows_any: reach.into_allows_any(),
            unevaluable: walker.unevaluable,
        },
        Err(Stop::Perm(failure)) => SpfVerdict::PermError {
            record: record.clone(),
            error: failure.error,
            term: failure.term,
            record_domain: failure.record_domain,
        },
        Err(Stop::Dns(failure)) => SpfVerdict::DnsError(failure),
    }
}

/// The names SPF evaluation of `domain` still needs that are absent from the answers: the
/// domain's TXT first, then every include/redirect target and every A/AAAA/MX name the walk
/// reaches given the answers so far. Absent names are assumed neither to match nor to be
/// void, so that sibling names are found in the same round. Names that failed are answered
/// and not listed again.
pub fn spf_names_needed(domain: &str, dns: &SpfAnswers<'_, '_>) -> DnsNeeded {
    let name = normalize(domain);
    let texts = match (dns.txt)(&name) {
        None => {
            return DnsNeeded {
                txt: vec![name],
                ..DnsNeeded::default()
            }
        }
        Some(Err(_)) => return DnsNeeded::default(),
        Some(Ok(texts)) => texts,
    };
    let mut records = texts.iter().filter(|t| is_spf_record(t));
    let (Some(record), None) = (records.next(), records.next()) else {
        return DnsNeeded::default();
    };
    let mut walker = Walker::new(dns, true);
    // Errors end discovery; the names found before them are still needed.
    let _ = walker.walk_text(&name, record);
    let mut needed = DnsNeeded::default();
    needed.extend(walker.needed);
    needed
}

/// Lower-case without a trailing dot: the key form of [`crate::snapshot::DnsAnswers`].
pub fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn not_collected(kind: &str, name: &str) -> Unavailable {
    Unavailable::NotCollected {
        detail: format!("no {kind} answer for {name}"),
    }
}
