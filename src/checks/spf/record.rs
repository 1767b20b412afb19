//! SPF record syntax (RFC 7208 sections 4.5, 4.6, 5, 6 and 7.1): which TXT strings are SPF
//! records and how one record splits into directives and modifiers.
//!
//! Parsing is total and strict where the RFC makes a record a permerror (unknown mechanisms,
//! bad addresses or prefix lengths, a repeated `redirect=` or `exp=`, malformed macros) and
//! lenient only about repeated spaces between terms (section 4.6.1: only spaces). Names are
//! case-insensitive. Macros are recognised and validated but never expanded: a domain-spec that
//! contains one is marked with [`DomainSpec::has_macro`] and the evaluator treats it as
//! unevaluable.

use super::domain_spec::{check_macro_string, domain_spec, DomainSpec};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The result a directive gives when its mechanism matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// `+` or no qualifier.
    Pass,
    /// `-`.
    Fail,
    /// `~`.
    SoftFail,
    /// `?`.
    Neutral,
}

/// An SPF mechanism (RFC 7208 section 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// `all`.
    All,
    /// `include:<domain-spec>`.
    Include(DomainSpec),
    /// `a[:<domain-spec>][/<ip4-cidr>][//<ip6-cidr>]`.
    A {
        /// The target, or the current domain when absent.
        domain: Option<DomainSpec>,
        /// IPv4 prefix length, 32 when absent.
        ip4_prefix: Option<u8>,
        /// IPv6 prefix length, 128 when absent.
        ip6_prefix: Option<u8>,
    },
    /// `mx[:<domain-spec>][/<ip4-cidr>][//<ip6-cidr>]`.
    Mx {
        /// The target, or the current domain when absent.
        domain: Option<DomainSpec>,
        /// IPv4 prefix length, 32 when absent.
        ip4_prefix: Option<u8>,
        /// IPv6 prefix length, 128 when absent.
        ip6_prefix: Option<u8>,
    },
    /// `ptr[:<domain-spec>]`.
    Ptr(Option<DomainSpec>),
    /// `ip4:<network>[/<prefix>]`.
    Ip4 {
        /// The network address.
        network: Ipv4Addr,
        /// Prefix length (32 when absent).
        prefix: u8,
    },
    /// `ip6:<network>[/<prefix>]`.
    Ip6 {
        /// The network address.
        network: Ipv6Addr,
        /// Prefix length (128 when absent).
        prefix: u8,
    },
    /// `exists:<domain-spec>`.
    Exists(DomainSpec),
}

impl Mechanism {
    /// True for the mechanisms that cost one of the 10 DNS lookups (RFC 7208 section 4.6.4).
    pub fn counts_lookup(&self) -> bool {
        matches!(
            self,
            Self::Include(_) | Self::A { .. } | Self::Mx { .. } | Self::Ptr(_) | Self::Exists(_)
        )
    }
}

/// A qualifier and a mechanism, with the term as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The qualifier (`Pass` when none was written).
    pub qualifier: Qualifier,
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The term as written, for evidence (`+all`, `include:bad.example`).
    pub text: String,
}

/// One parsed SPF record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfRecord {
    /// Directives in record order.
    pub directives: Vec<Directive>,
    /// The `redirect=` target, if any.
    pub redirect: Option<DomainSpec>,
    /// The `exp=` target, if any (never looked up).
    pub explanation: Option<DomainSpec>,
    /// Unknown modifiers as written; RFC 7208 section 6 says to ignore them.
    pub unknown_modifiers: Vec<String>,
}

/// Why a record is not valid SPF syntax (a permerror for receivers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpfSyntaxError {
    /// The text does not start with `v=spf1`.
    #[error("the record does not start with v=spf1")]
    NotSpf,
    /// A term that is neither a known mechanism nor a modifier.
    #[error("unknown mechanism {0:?}")]
    UnknownMechanism(String),
    /// A known mechanism with arguments it does not take or without one it needs.
    #[error("malformed term {0:?}")]
    MalformedTerm(String),
    /// An `ip4:`/`ip6:` address that does not parse.
    #[error("invalid ip address in {0:?}")]
    InvalidAddress(String),
    /// A prefix length out of range or not a number.
    #[error("invalid prefix length in {0:?}")]
    InvalidPrefix(String),
    /// A domain-spec that is not a valid name or macro string.
    #[error("invalid domain in {0:?}")]
    InvalidDomain(String),
    /// `redirect=` or `exp=` given twice.
    #[error("modifier {0:?} given more than once")]
    DuplicateModifier(String),
}

impl SpfSyntaxError {
    /// The term the error is about, as written (`None` for a record without `v=spf1`).
    pub fn term(&self) -> Option<&str> {
        match self {
            Self::NotSpf => None,
            Self::UnknownMechanism(term)
            | Self::MalformedTerm(term)
            | Self::InvalidAddress(term)
            | Self::InvalidPrefix(term)
            | Self::InvalidDomain(term)
            | Self::DuplicateModifier(term) => Some(term),
        }
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "+",
            Self::Fail => "-",
            Self::SoftFail => "~",
            Self::Neutral => "?",
        })
    }
}

/// True when `text` is an SPF record: `v=spf1` (any case) followed by a space or the end
/// (RFC 7208 section 4.5; a tab, CR or no-break space after it is some other TXT record).
pub fn is_spf_record(text: &str) -> bool {
    let Some(head) = text.get(..6) else {
        return false;
    };
    head.eq_ignore_ascii_case("v=spf1")
        && text
            .get(6..)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// Parses one SPF record into its terms.
pub fn parse(text: &str) -> Result<SpfRecord, SpfSyntaxError> {
    if !is_spf_record(text) {
        return Err(SpfSyntaxError::NotSpf);
    }
    let mut record = SpfRecord {
        directives: Vec::new(),
        redirect: None,
        explanation: None,
        unknown_modifiers: Vec::new(),
    };
    // Section 4.6.1: terms are separated by `1*SP`; any other whitespace is inside a term.
    for term in text.get(6..).unwrap_or_default().split(' ') {
        if term.is_empty() {
            continue;
        }
        if term.chars().any(char::is_whitespace) {
            return Err(SpfSyntaxError::MalformedTerm(term.to_owned()));
        }
        parse_term(term, &mut record)?;
    }
    Ok(record)
}

fn parse_term(term: &str, record: &mut SpfRecord) -> Result<(), SpfSyntaxError> {
    let first_separator = term.find([':', '/', '=']);
    let is_modifier = first_separator.is_some_and(|at| term.get(at..at + 1) == Some("="));
    if is_modifier {
        return parse_modifier(term, record);
    }
    let (qualifier, rest) = split_qualifier(term);
    let mechanism = parse_mechanism(term, rest)?;
    record.directives.push(Directive {
        qualifier,
        mechanism,
        text: term.to_owned(),
    });
    Ok(())
}

fn split_qualifier(term: &str) -> (Qualifier, &str) {
    let qualifier = match term.chars().next() {
        Some('+') => Qualifier::Pass,
        Some('-') => Qualifier::Fail,
        Some('~') => Qualifier::SoftFail,
        Some('?') => Qualifier::Neutral,
        _ => return (Qualifier::Pass, term),
    };
    (qualifier, term.get(1..).unwrap_or_default())
}

fn parse_modifier(term: &str, record: &mut SpfRecord) -> Result<(), SpfSyntaxError> {
    let (name, value) = term
        .split_once('=')
        .ok_or_else(|| SpfSyntaxError::MalformedTerm(term.to_owned()))?;
    let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(SpfSyntaxError::UnknownMechanism(term.to_owned()));
    }
    let slot = if name.eq_ignore_ascii_case("redirect") {
        &mut record.redirect
    } else if name.eq_ignore_ascii_case("exp") {
        &mut record.explanation
    } else {
        check_macro_string(value, true)
            .ok_or_else(|| SpfSyntaxError::InvalidDomain(term.to_owned()))?;
        record.unknown_modifiers.push(term.to_owned());
        return Ok(());
    };
    if slot.is_some() {
        return Err(SpfSyntaxError::DuplicateModifier(name.to_ascii_lowercase()));
    }
    *slot = Some(domain_spec(value, term)?);
    Ok(())
}

fn parse_mechanism(term: &str, body: &str) -> Result<Mechanism, SpfSyntaxError> {
    let name_end = body.find([':', '/']).unwrap_or(body.len());
    let name = body
        .get(..name_end)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let args = body.get(name_end..).unwrap_or_default();
    let malformed = || SpfSyntaxError::MalformedTerm(term.to_owned());
    match name.as_str() {
        "all" if args.is_empty() => Ok(Mechanism::All),
        "include" | "exists" => {
            let target = args.strip_prefix(':').ok_or_else(malformed)?;
            let spec = domain_spec(target, term)?;
            Ok(if name == "include" {
                Mechanism::Include(spec)
            } else {
                Mechanism::Exists(spec)
            })
        }
        "a" | "mx" => {
            let (domain, ip4_prefix, ip6_prefix) = parse_host_args(term, args)?;
            Ok(if name == "a" {
                Mechanism::A {
                    domain,
                    ip4_prefix,
                    ip6_prefix,
                }
            } else {
                Mechanism::Mx {
                    domain,
                    ip4_prefix,
                    ip6_prefix,
                }
            })
        }
        "ptr" => match args.strip_prefix(':') {
            Some(target) => Ok(Mechanism::Ptr(Some(domain_spec(target, term)?))),
            None if args.is_empty() => Ok(Mechanism::Ptr(None)),
            None => Err(malformed()),
        },
        "ip4" | "ip6" => parse_ip(term, &name, args),
        "all" => Err(malformed()),
        _ => Err(SpfSyntaxError::UnknownMechanism(term.to_owned())),
    }
}

type HostArgs = (Option<DomainSpec>, Option<u8>, Option<u8>);

/// `[:domain-spec][/ip4-cidr][//ip6-cidr]` of `a` and `mx`. A domain-spec may itself hold `:`
/// and `/` (section 7.1), so the dual-cidr-length is read from the end of the term.
fn parse_host_args(term: &str, args: &str) -> Result<HostArgs, SpfSyntaxError> {
    let (rest, ip6_text) = split_cidr_suffix(args, "//");
    let (domain_text, ip4_text) = split_cidr_suffix(rest, "/");
    let domain = match domain_text.strip_prefix(':') {
        Some(target) => Some(domain_spec(target, term)?),
        None if domain_text.is_empty() => None,
        None => return Err(SpfSyntaxError::MalformedTerm(term.to_owned())),
    };
    let ip4_prefix = ip4_text
        .map(|digits| prefix_length(term, digits, 32))
        .transpose()?;
    let ip6_prefix = ip6_text
        .map(|digits| prefix_length(term, digits, 128))
        .transpose()?;
    Ok((domain, ip4_prefix, ip6_prefix))
}

/// Splits `<rest><separator><digits>` off the end of `text`. Empty or malformed digits are
/// still split off (then [`prefix_length`] rejects them); when what follows the last separator
/// holds anything but digits, it is part of the domain-spec and nothing is split off.
fn split_cidr_suffix<'t>(text: &'t str, separator: &str) -> (&'t str, Option<&'t str>) {
    let Some(at) = text.rfind(separator) else {
        return (text, None);
    };
    let head = text.get(..at).unwrap_or_default();
    let digits = text.get(at + separator.len()..).unwrap_or_default();
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        (head, Some(digits))
    } else {
        (text, None)
    }
}

fn parse_ip(term: &str, name: &str, args: &str) -> Result<Mechanism, SpfSyntaxError> {
    let value = args
        .strip_prefix(':')
        .ok_or_else(|| SpfSyntaxError::MalformedTerm(term.to_owned()))?;
    let (address, prefix) = match value.split_once('/') {
        Some((address, digits)) => (address, Some(digits)),
        None => (value, None),
    };
    let bad_address = || SpfSyntaxError::InvalidAddress(term.to_owned());
    if name == "ip4" {
        let network = address.parse::<Ipv4Addr>().map_err(|_| bad_address())?;
        let prefix = prefix.map_or(Ok(32), |digits| prefix_length(term, digits, 32))?;
        Ok(Mechanism::Ip4 { network, prefix })
    } else {
        let network = address.parse::<Ipv6Addr>().map_err(|_| bad_address())?;
        let prefix = prefix.map_or(Ok(128), |digits| prefix_length(term, digits, 128))?;
        Ok(Mechanism::Ip6 { network, prefix })
    }
}

/// A CIDR length: decimal digits without a leading zero (RFC 7208 section 5.6), at most `max`.
fn prefix_length(term: &str, digits: &str, max: u8) -> Result<u8, SpfSyntaxError> {
    let well_formed = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    digits
        .parse::<u8>()
        .ok()
        .filter(|length| well_formed && *length <= max)
        .ok_or_else(|| SpfSyntaxError::InvalidPrefix(term.to_owned()))
}
