//! SPF evaluation over the TXT answers in the snapshot (RFC 7208), without a client IP.
//!
//! Owns the structural question "does this domain's SPF policy let any IP address send?"
//! (`domain.spf_allows_any`) and "is there exactly one SPF record?" (`domain.spf_missing`).
//! The walk follows RFC 7208 order: directives up to the first `all`, then `redirect=` only when
//! the record has no `all`; `include:` matches only when its target passes for every address.
//! Every `include`, `a`, `mx`, `ptr`, `exists` and `redirect` costs one of
//! [`MAX_DNS_LOOKUPS`]; more is a permerror, and so is an include/redirect loop. Macros are not
//! expanded: such terms are listed as unevaluable and never fire.
//!
//! Invariant: a name the walk needs that is absent from the answers is an error
//! (`not_collected`), never "no record"; a failed lookup is [`SpfVerdict::DnsError`].

mod domain_spec;
mod record;
mod verdict;

pub use domain_spec::DomainSpec;
pub use record::{
    is_spf_record, parse, Directive, Mechanism, Qualifier, SpfRecord, SpfSyntaxError,
};

pub use verdict::{AllowsAny, AllowsAnyReason, MissingReason, SpfError, SpfVerdict};

use crate::snapshot::Unavailable;

/// RFC 7208 section 4.6.4: at most 10 DNS-querying terms per evaluation.
pub const MAX_DNS_LOOKUPS: usize = 10;

/// One TXT answer as the snapshot keeps it (see [`crate::snapshot::DnsAnswers`]).
pub type TxtAnswer = Result<Vec<String>, Unavailable>;

/// Looks a TXT name up in the collected answers; `None` means "not looked up".
pub type TxtLookup<'a> = dyn Fn(&str) -> Option<&'a TxtAnswer> + 'a;

/// Evaluates the SPF policy of `domain` over the collected TXT answers.
pub fn evaluate_spf<'a>(domain: &str, lookup: &TxtLookup<'a>) -> SpfVerdict {
    let name = normalize(domain);
    let texts = match lookup(&name) {
        None => return SpfVerdict::DnsError(not_collected(&name)),
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
    let mut walker = Walker::new(lookup, false);
    let outcome = parse(record)
        .map_err(|source| {
            Stop::Perm(SpfError::Syntax {
                domain: name.clone(),
                source,
            })
        })
        .and_then(|parsed| walker.walk(&name, &parsed));
    match outcome {
        Ok(reach) => SpfVerdict::Evaluated {
            record: record.clone(),
            allows_any: reach.into_allows_any(),
            unevaluable: walker.unevaluable,
        },
        Err(Stop::Perm(error)) => SpfVerdict::PermError {
            record: record.clone(),
            error,
        },
        Err(Stop::Dns(failure)) => SpfVerdict::DnsError(failure),
    }
}

/// The TXT names SPF evaluation of `domain` still needs that are absent from the answers:
/// the domain itself first, then every include/redirect target the walk reaches given the
/// answers so far. Absent targets are assumed not to match so that sibling targets are found
/// in the same round. Names that failed are answered and not listed again.
pub fn spf_names_needed<'a>(domain: &str, lookup: &TxtLookup<'a>) -> Vec<String> {
    let name = normalize(domain);
    let texts = match lookup(&name) {
        None => return vec![name],
        Some(Err(_)) => return Vec::new(),
        Some(Ok(texts)) => texts,
    };
    let mut records = texts.iter().filter(|t| is_spf_record(t));
    let (Some(record), None) = (records.next(), records.next()) else {
        return Vec::new();
    };
    let mut walker = Walker::new(lookup, true);
    if let Ok(parsed) = parse(record) {
        // Errors end discovery; the names found before them are still needed.
        let _ = walker.walk(&name, &parsed);
    }
    walker.undiscovered
}

/// Lower-case without a trailing dot: the key form of [`crate::snapshot::DnsAnswers`].
pub fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn not_collected(name: &str) -> Unavailable {
    Unavailable::NotCollected {
        detail: format!("no txt answer for {name}"),
    }
}

/// Where a walk over one record ends up.
enum Reach {
    /// Some addresses pass (or get neutral) unconditionally. `complete` is false when only one
    /// address family is covered (a `/0` range), so the walk of a caller continues.
    Any { found: AllowsAny, complete: bool },
    /// A `-all`/`~all` (or equivalent) closes the policy; or the outcome is unevaluable.
    Closed,
}

impl Reach {
    fn into_allows_any(self) -> Option<AllowsAny> {
        match self {
            Self::Any { found, .. } => Some(found),
            Self::Closed => None,
        }
    }

    /// True when the policy passes (not merely neutral) every address of some family, which is
    /// what makes an `include:` of it match.
    fn passes(&self) -> bool {
        matches!(self, Self::Any { found, .. } if !found.reason.is_neutral())
    }
}

/// Why a walk stopped without an outcome.
enum Stop {
    Perm(SpfError),
    Dns(Unavailable),
}

/// The recursive walk, with the lookup budget and the loop guard.
struct Walker<'l, 'a> {
    lookup: &'l TxtLookup<'a>,
    lookups: usize,
    path: Vec<String>,
    unevaluable: Vec<String>,
    /// In discovery mode absent names are collected here instead of stopping the walk.
    discover: bool,
    undiscovered: Vec<String>,
}

impl<'l, 'a> Walker<'l, 'a> {
    fn new(lookup: &'l TxtLookup<'a>, discover: bool) -> Self {
        Self {
            lookup,
            lookups: 0,
            path: Vec::new(),
            unevaluable: Vec::new(),
            discover,
            undiscovered: Vec::new(),
        }
    }

    fn walk(&mut self, domain: &str, record: &SpfRecord) -> Result<Reach, Stop> {
        self.path.push(domain.to_owned());
        let reach = self.walk_directives(domain, record);
        self.path.pop();
        reach
    }

    fn walk_directives(&mut self, domain: &str, record: &SpfRecord) -> Result<Reach, Stop> {
        for directive in &record.directives {
            if directive.mechanism.counts_lookup() {
                self.count_lookup()?;
            }
            if let Some(reach) = self.directive_outcome(domain, directive)? {
                return Ok(reach);
            }
        }
        // RFC 7208 section 6.1: redirect applies only when the record has no `all`.
        match &record.redirect {
            Some(target) => self.follow_redirect(target),
            None => Ok(found(domain, AllowsAnyReason::NoAll, None, true)),
        }
    }

    /// `Some` when the directive ends the walk or fires; `None` to go on.
    fn directive_outcome(&mut self, domain: &str, d: &Directive) -> Result<Option<Reach>, Stop> {
        let term = Some(d.text.clone());
        Ok(match &d.mechanism {
            Mechanism::All => Some(terminal(
                domain,
                d.qualifier,
                AllowsAnyReason::PlusAll,
                term,
            )),
            Mechanism::Include(spec) => self.include_outcome(domain, d, spec)?,
            mechanism
                if mechanism.covers_whole_address_family() && d.qualifier == Qualifier::Pass =>
            {
                Some(found(domain, AllowsAnyReason::IpAny, term, false))
            }
            _ => None,
        })
    }

    /// An `include:` matches only when its target passes; then it acts with its own qualifier.
    fn include_outcome(
        &mut self,
        domain: &str,
        d: &Directive,
        spec: &DomainSpec,
    ) -> Result<Option<Reach>, Stop> {
        let Some(target) = self.resolvable(spec, &d.text) else {
            return Ok(None);
        };
        let Some(included) = self.follow(&target)?.filter(Reach::passes) else {
            return Ok(None);
        };
        let complete = matches!(included, Reach::Any { complete: true, .. });
        let reason = AllowsAnyReason::IncludePlusAll(target);
        let term = Some(d.text.clone());
        Ok(if d.qualifier == Qualifier::Pass {
            Some(found(domain, reason, term, complete))
        } else {
            // A non-pass include of a partial pass leaves other addresses to later terms.
            complete.then(|| terminal(domain, d.qualifier, reason, term))
        })
    }

    fn follow_redirect(&mut self, spec: &DomainSpec) -> Result<Reach, Stop> {
        self.count_lookup()?;
        let Some(target) = self.resolvable(spec, &format!("redirect={}", spec.text)) else {
            return Ok(Reach::Closed);
        };
        Ok(match self.follow(&target)? {
            Some(Reach::Any {
                mut found,
                complete,
            }) => {
                found.via_redirect.insert(0, target);
                Reach::Any { found, complete }
            }
            Some(Reach::Closed) | None => Reach::Closed,
        })
    }

    /// The target's lookup name, or `None` (recorded as unevaluable) for a macro.
    fn resolvable(&mut self, spec: &DomainSpec, term: &str) -> Option<String> {
        let name = spec.lookup_name();
        if name.is_none() {
            self.unevaluable.push(term.to_owned());
        }
        name
    }

    /// Walks the record of an include or redirect target; `None` only in discovery mode
    /// for a target not looked up yet.
    fn follow(&mut self, target: &str) -> Result<Option<Reach>, Stop> {
        if self.path.iter().any(|seen| seen == target) {
            return Err(Stop::Perm(SpfError::Loop(target.to_owned())));
        }
        let texts = match (self.lookup)(target) {
            None if self.discover => {
                self.undiscovered.push(target.to_owned());
                return Ok(None);
            }
            None => return Err(Stop::Dns(not_collected(target))),
            Some(Err(failure)) => return Err(Stop::Dns(failure.clone())),
            Some(Ok(texts)) => texts,
        };
        let mut records = texts.iter().filter(|t| is_spf_record(t));
        let record = match (records.next(), records.next()) {
            (None, _) => return Err(Stop::Perm(SpfError::TargetMissing(target.to_owned()))),
            (Some(_), Some(_)) => {
                return Err(Stop::Perm(SpfError::TargetMultiple(target.to_owned())))
            }
            (Some(record), None) => record,
        };
        let parsed = parse(record).map_err(|source| {
            Stop::Perm(SpfError::Syntax {
                domain: target.to_owned(),
                source,
            })
        })?;
        self.walk(target, &parsed).map(Some)
    }

    fn count_lookup(&mut self) -> Result<(), Stop> {
        self.lookups += 1;
        if self.lookups > MAX_DNS_LOOKUPS {
            return Err(Stop::Perm(SpfError::TooManyLookups));
        }
        Ok(())
    }
}

fn found(domain: &str, reason: AllowsAnyReason, term: Option<String>, complete: bool) -> Reach {
    Reach::Any {
        found: AllowsAny {
            reason,
            term,
            record_domain: domain.to_owned(),
            via_redirect: Vec::new(),
        },
        complete,
    }
}

/// A directive that matches every address ends the walk with its qualifier's result.
fn terminal(
    domain: &str,
    qualifier: Qualifier,
    pass: AllowsAnyReason,
    term: Option<String>,
) -> Reach {
    match qualifier {
        Qualifier::Pass => found(domain, pass, term, true),
        Qualifier::Neutral => found(domain, AllowsAnyReason::NeutralAll, term, true),
        Qualifier::Fail | Qualifier::SoftFail => Reach::Closed,
    }
}
