//! The recursive SPF walk over one record and its include/redirect targets: the 10-lookup and
//! 2-void-lookup budgets, the 10-exchange `mx` limit, the loop guard, and what each directive
//! does to "can any address pass?". In discovery mode absent names are collected instead of
//! stopping the walk, and assumed to neither match nor be void.

use super::coverage::Coverage;
use super::verdict::{AllowsAny, AllowsAnyReason, SpfError};
use super::{
    is_spf_record, not_collected, parse, Directive, DnsNeeded, DomainSpec, Mechanism, Qualifier,
    SpfAnswers, SpfRecord, MAX_DNS_LOOKUPS, MAX_MX_NAMES, MAX_VOID_LOOKUPS,
};
use crate::snapshot::Unavailable;
use std::net::IpAddr;

/// Where a walk over one record ends up.
pub(super) enum Reach {
    /// Some addresses pass (or get neutral) unconditionally. `complete` is false when only one
    /// address family is covered (a `/0` range), so the walk of a caller continues.
    Any { found: AllowsAny, complete: bool },
    /// A `-all`/`~all` (or equivalent) closes the policy.
    Closed,
    /// The outcome is decided by a term the walk cannot evaluate: a `redirect=` whose target
    /// has a macro. Neither "any" nor "closed": findings-spec.md E1 says not to fire on a
    /// macro term, and it is no evidence that the policy is closed either.
    Undecided,
}

impl Reach {
    pub(super) fn into_allows_any(self) -> Option<AllowsAny> {
        match self {
            Self::Any { found, .. } => Some(found),
            Self::Closed | Self::Undecided => None,
        }
    }

    /// True when the policy passes (not merely neutral) every address of some family, which is
    /// what makes an `include:` of it match.
    fn passes(&self) -> bool {
        matches!(self, Self::Any { found, .. } if !found.reason.is_neutral())
    }
}

/// A permerror with the term and the record it is in.
pub(super) struct PermFailure {
    pub(super) error: SpfError,
    pub(super) term: Option<String>,
    pub(super) record_domain: String,
}

/// Why a walk stopped without an outcome.
pub(super) enum Stop {
    Perm(PermFailure),
    Dns(Unavailable),
}

/// A permerror stop.
fn perm(error: SpfError, term: Option<&str>, record_domain: &str) -> Stop {
    Stop::Perm(PermFailure {
        error,
        term: term.map(str::to_owned),
        record_domain: record_domain.to_owned(),
    })
}

/// The walk state: budgets, loop guard, and what discovery still needs.
pub(super) struct Walker<'l, 'a> {
    dns: &'l SpfAnswers<'l, 'a>,
    lookups: usize,
    voids: usize,
    path: Vec<String>,
    pub(super) unevaluable: Vec<String>,
    discover: bool,
    pub(super) needed: DnsNeeded,
}

impl<'l, 'a> Walker<'l, 'a> {
    pub(super) fn new(dns: &'l SpfAnswers<'l, 'a>, discover: bool) -> Self {
        Self {
            dns,
            lookups: 0,
            voids: 0,
            path: Vec::new(),
            unevaluable: Vec::new(),
            discover,
            needed: DnsNeeded::default(),
        }
    }

    /// Parses and walks the record of `domain`.
    pub(super) fn walk_text(&mut self, domain: &str, text: &str) -> Result<Reach, Stop> {
        let parsed = parse(text).map_err(|source| {
            let term = source.term().map(str::to_owned);
            perm(
                SpfError::Syntax {
                    domain: domain.to_owned(),
                    source,
                },
                term.as_deref(),
                domain,
            )
        })?;
        self.path.push(domain.to_owned());
        let reach = self.walk_directives(domain, &parsed);
        self.path.pop();
        reach
    }

    fn walk_directives(&mut self, domain: &str, record: &SpfRecord) -> Result<Reach, Stop> {
        let mut coverage = Coverage::default();
        for directive in &record.directives {
            if directive.mechanism.counts_lookup() {
                self.count_lookup(domain, &directive.text)?;
            }
            if let Some(reach) = self.directive_outcome(domain, directive, &mut coverage)? {
                return Ok(reach);
            }
        }
        // RFC 7208 section 6.1: redirect applies only when the record has no `all`.
        match &record.redirect {
            Some(target) => self.follow_redirect(domain, target),
            None => Ok(found(domain, AllowsAnyReason::NoAll, None, true)),
        }
    }

    /// `Some` when the directive ends the walk or fires; `None` to go on.
    fn directive_outcome(
        &mut self,
        domain: &str,
        d: &Directive,
        coverage: &mut Coverage,
    ) -> Result<Option<Reach>, Stop> {
        let term = Some(d.text.clone());
        let passes = d.qualifier == Qualifier::Pass;
        Ok(match &d.mechanism {
            Mechanism::All => Some(terminal(
                domain,
                d.qualifier,
                AllowsAnyReason::PlusAll,
                term,
            )),
            Mechanism::Include(spec) => self.include_outcome(domain, d, spec)?,
            Mechanism::Ip4 { .. } | Mechanism::Ip6 { .. } => (passes && coverage.add(&d.mechanism))
                .then(|| found(domain, AllowsAnyReason::IpAny, term, false)),
            Mechanism::A {
                domain: spec,
                ip4_prefix,
                ip6_prefix,
            } => {
                let addresses = self.a_addresses(domain, d, spec.as_ref())?;
                any_family(domain, d, &addresses, *ip4_prefix, *ip6_prefix)
            }
            Mechanism::Mx {
                domain: spec,
                ip4_prefix,
                ip6_prefix,
            } => {
                let slash_zero = passes && (*ip4_prefix == Some(0) || *ip6_prefix == Some(0));
                let addresses = self.mx_addresses(domain, d, spec.as_ref(), slash_zero)?;
                any_family(domain, d, &addresses, *ip4_prefix, *ip6_prefix)
            }
            Mechanism::Exists(spec) => {
                // `exists` asks for A records only (section 5.7).
                // A fixed name (no macro) with an A record matches every sender, as `all`
                // does with the same qualifier.
                let Some(name) = self.resolvable(spec, &d.text) else {
                    return Ok(None);
                };
                match self.addresses(&name)? {
                    Some(found) if found.iter().any(IpAddr::is_ipv4) => {
                        Some(terminal(domain, d.qualifier, AllowsAnyReason::IpAny, term))
                    }
                    Some(_) => {
                        self.count_void(domain, &d.text)?;
                        None
                    }
                    None => None,
                }
            }
            Mechanism::Ptr(_) => None,
        })
    }

    /// The addresses of an `a` target (empty when unknown); a name without any is void.
    fn a_addresses(
        &mut self,
        domain: &str,
        d: &Directive,
        spec: Option<&DomainSpec>,
    ) -> Result<Vec<IpAddr>, Stop> {
        let Some(name) = self.target_name(domain, spec, &d.text) else {
            return Ok(Vec::new());
        };
        let addresses = self.addresses(&name)?;
        if addresses.as_ref().is_some_and(Vec::is_empty) {
            self.count_void(domain, &d.text)?;
        }
        Ok(addresses.unwrap_or_default())
    }

    /// The addresses of an `mx` target's exchanges, looked up only when a `/0` pass needs
    /// them; the MX query itself is void without exchanges and a permerror with over 10.
    fn mx_addresses(
        &mut self,
        domain: &str,
        d: &Directive,
        spec: Option<&DomainSpec>,
        needs_addresses: bool,
    ) -> Result<Vec<IpAddr>, Stop> {
        let Some(name) = self.target_name(domain, spec, &d.text) else {
            return Ok(Vec::new());
        };
        let Some(exchanges) = self.mx(&name)? else {
            return Ok(Vec::new());
        };
        if exchanges.is_empty() {
            self.count_void(domain, &d.text)?;
        }
        if exchanges.len() > MAX_MX_NAMES {
            return Err(perm(SpfError::TooManyMxNames(name), Some(&d.text), domain));
        }
        let mut addresses = Vec::new();
        if needs_addresses {
            for exchange in &exchanges {
                addresses.extend(self.addresses(exchange)?.unwrap_or_default());
            }
        }
        Ok(addresses)
    }

    /// The name an `a`/`mx` term looks up: its target, or the current domain.
    fn target_name(
        &mut self,
        domain: &str,
        spec: Option<&DomainSpec>,
        term: &str,
    ) -> Option<String> {
        match spec {
            None => Some(domain.to_owned()),
            Some(spec) => self.resolvable(spec, term),
        }
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
        let Some(included) = self.follow(domain, &d.text, &target)?.filter(Reach::passes) else {
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

    fn follow_redirect(&mut self, domain: &str, spec: &DomainSpec) -> Result<Reach, Stop> {
        let term = format!("redirect={}", spec.text);
        self.count_lookup(domain, &term)?;
        let Some(target) = self.resolvable(spec, &term) else {
            return Ok(Reach::Undecided);
        };
        Ok(match self.follow(domain, &term, &target)? {
            Some(Reach::Any {
                mut found,
                complete,
            }) => {
                found.via_redirect.insert(0, target);
                Reach::Any { found, complete }
            }
            Some(Reach::Undecided) => Reach::Undecided,
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
    fn follow(&mut self, domain: &str, term: &str, target: &str) -> Result<Option<Reach>, Stop> {
        if self.path.iter().any(|seen| seen == target) {
            return Err(perm(SpfError::Loop(target.to_owned()), Some(term), domain));
        }
        let texts = match (self.dns.txt)(target) {
            None if self.discover => {
                self.needed.txt.push(target.to_owned());
                return Ok(None);
            }
            None => return Err(Stop::Dns(not_collected("txt", target))),
            Some(Err(failure)) => return Err(Stop::Dns(failure.clone())),
            Some(Ok(texts)) => texts,
        };
        let mut records = texts.iter().filter(|t| is_spf_record(t));
        let record = match (records.next(), records.next()) {
            (None, _) => {
                let error = SpfError::TargetMissing(target.to_owned());
                return Err(perm(error, Some(term), domain));
            }
            (Some(_), Some(_)) => {
                let error = SpfError::TargetMultiple(target.to_owned());
                return Err(perm(error, Some(term), domain));
            }
            (Some(record), None) => record,
        };
        self.walk_text(target, record).map(Some)
    }

    /// The A and AAAA answer for `name`; `None` in discovery mode when not looked up yet.
    fn addresses(&mut self, name: &str) -> Result<Option<Vec<IpAddr>>, Stop> {
        match self.dns.hosts.addresses.get(name) {
            None if self.discover => {
                self.needed.addresses.push(name.to_owned());
                Ok(None)
            }
            None => Err(Stop::Dns(not_collected("address", name))),
            Some(Err(failure)) => Err(Stop::Dns(failure.clone())),
            Some(Ok(addresses)) => Ok(Some(addresses.clone())),
        }
    }

    /// The MX answer for `name`; `None` in discovery mode when not looked up yet.
    fn mx(&mut self, name: &str) -> Result<Option<Vec<String>>, Stop> {
        match self.dns.hosts.mx.get(name) {
            None if self.discover => {
                self.needed.mx.push(name.to_owned());
                Ok(None)
            }
            None => Err(Stop::Dns(not_collected("mx", name))),
            Some(Err(failure)) => Err(Stop::Dns(failure.clone())),
            Some(Ok(exchanges)) => Ok(Some(exchanges.clone())),
        }
    }

    fn count_lookup(&mut self, domain: &str, term: &str) -> Result<(), Stop> {
        self.lookups += 1;
        if self.lookups > MAX_DNS_LOOKUPS {
            return Err(perm(SpfError::TooManyLookups, Some(term), domain));
        }
        Ok(())
    }

    fn count_void(&mut self, domain: &str, term: &str) -> Result<(), Stop> {
        self.voids += 1;
        if self.voids > MAX_VOID_LOOKUPS {
            return Err(perm(SpfError::TooManyVoidLookups, Some(term), domain));
        }
        Ok(())
    }
}

/// An `a`/`mx` pass whose `/0` cidr meets an address of that family matches every address of
/// the family; without such an address it matches nothing.
fn any_family(
    domain: &str,
    d: &Directive,
    addresses: &[IpAddr],
    ip4_prefix: Option<u8>,
    ip6_prefix: Option<u8>,
) -> Option<Reach> {
    let any_ip4 = ip4_prefix == Some(0) && addresses.iter().any(IpAddr::is_ipv4);
    let any_ip6 = ip6_prefix == Some(0) && addresses.iter().any(IpAddr::is_ipv6);
    (d.qualifier == Qualifier::Pass && (any_ip4 || any_ip6))
        .then(|| found(domain, AllowsAnyReason::IpAny, Some(d.text.clone()), false))
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
