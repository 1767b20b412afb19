//! The SPF verdict and its parts: why a policy lets any address send, why a record is
//! missing, and the permerrors that are neither.

use super::SpfSyntaxError;
use crate::snapshot::Unavailable;
use std::fmt;

/// Why a policy lets any address send (the `reason` of `domain.spf_allows_any`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowsAnyReason {
    /// A reached `+all` or bare `all`.
    PlusAll,
    /// A reached `?all` (or a `?include:` whose target passes everything).
    NeutralAll,
    /// No `all` and no `redirect=`: the default result is neutral.
    NoAll,
    /// `include:<target>` whose target passes every address.
    IncludePlusAll(String),
    /// A pass for a `/0` range (`ip4:0.0.0.0/0`, `ip6:::/0`, `a/0`).
    IpAny,
}

impl AllowsAnyReason {
    /// True for the neutral outcomes, which fire only when `spf_neutral_counts` is on.
    pub fn is_neutral(&self) -> bool {
        matches!(self, Self::NeutralAll | Self::NoAll)
    }
}

impl fmt::Display for AllowsAnyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PlusAll => f.write_str("plus_all"),
            Self::NeutralAll => f.write_str("neutral_all"),
            Self::NoAll => f.write_str("no_all"),
            Self::IncludePlusAll(target) => write!(f, "include_plus_all:{target}"),
            Self::IpAny => f.write_str("ip_any"),
        }
    }
}

/// Evidence that a policy lets any address send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowsAny {
    /// The reason.
    pub reason: AllowsAnyReason,
    /// The offending term as written (`+all`, `include:bad.example`); `None` for `no_all`.
    pub term: Option<String>,
    /// The domain whose record holds the term (differs from the checked domain after redirects).
    pub record_domain: String,
    /// `redirect=` targets followed to get there, in order.
    pub via_redirect: Vec<String>,
}

/// Why a domain has no usable SPF record (the `reason` of `domain.spf_missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingReason {
    /// No `v=spf1` TXT record.
    Missing,
    /// More than one `v=spf1` TXT record (RFC 7208 section 4.5: permerror).
    Multiple,
}

impl MissingReason {
    /// `missing` or `multiple`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Multiple => "multiple",
        }
    }
}

/// An SPF permerror other than a missing or duplicated top-level record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpfError {
    /// A record on the path does not parse.
    #[error("syntax error in the spf record of {domain}: {source}")]
    Syntax {
        /// Whose record.
        domain: String,
        /// What is wrong.
        source: SpfSyntaxError,
    },
    /// More than [`super::MAX_DNS_LOOKUPS`] DNS-querying terms.
    #[error("more than 10 dns lookups")]
    TooManyLookups,
    /// More than [`super::MAX_VOID_LOOKUPS`] lookups that found no records (section 4.6.4).
    #[error("more than 2 void lookups")]
    TooManyVoidLookups,
    /// An `mx` target with more than [`super::MAX_MX_NAMES`] exchanges (section 4.6.4).
    #[error("{0} has more than 10 mx records")]
    TooManyMxNames(String),
    /// An include or redirect leads back to a domain already on the path.
    #[error("include or redirect loop at {0}")]
    Loop(String),
    /// An include or redirect target has no SPF record.
    #[error("include or redirect target {0} has no spf record")]
    TargetMissing(String),
    /// An include or redirect target has several SPF records.
    #[error("include or redirect target {0} has several spf records")]
    TargetMultiple(String),
}

impl SpfError {
    /// A short stable label (`syntax`, `too_many_lookups`, `too_many_void_lookups`,
    /// `too_many_mx`, `loop`, `target_missing`, `target_multiple`): the `cause` of
    /// `domain.spf_invalid`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Syntax { .. } => "syntax",
            Self::TooManyLookups => "too_many_lookups",
            Self::TooManyVoidLookups => "too_many_void_lookups",
            Self::TooManyMxNames(_) => "too_many_mx",
            Self::Loop(_) => "loop",
            Self::TargetMissing(_) => "target_missing",
            Self::TargetMultiple(_) => "target_multiple",
        }
    }
}

/// The SPF verdict for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfVerdict {
    /// Exactly one record, evaluated.
    Evaluated {
        /// The domain's SPF record.
        record: String,
        /// Why it lets any address send, if it does (neutral reasons included).
        allows_any: Option<AllowsAny>,
        /// Terms skipped because they contain macros.
        unevaluable: Vec<String>,
    },
    /// Exactly one record, whose outcome a term not evaluated decides (a `redirect=` to a
    /// macro): no verdict on `domain.spf_allows_any`, so that domain counts as unevaluated
    /// and its instance keeps its state. The record is there and not a permerror as far as
    /// walked, which is what `spf_missing` and `spf_invalid` judge.
    Undecided {
        /// The domain's SPF record.
        record: String,
        /// Terms skipped because they contain macros.
        unevaluable: Vec<String>,
    },
    /// No usable record (fires `domain.spf_missing`).
    Missing {
        /// Why.
        reason: MissingReason,
        /// The `v=spf1` records found (several for `multiple`).
        records: Vec<String>,
    },
    /// Exactly one record, but evaluating it is a permerror (fires `domain.spf_invalid`).
    PermError {
        /// The domain's SPF record.
        record: String,
        /// What went wrong.
        error: SpfError,
        /// The offending term as written, when one term is to blame.
        term: Option<String>,
        /// The domain whose record holds the term (differs after includes and redirects).
        record_domain: String,
    },
    /// A lookup the verdict needs failed or was not collected: no verdict for this domain.
    DnsError(Unavailable),
}
