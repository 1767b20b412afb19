//! DMARC record syntax (RFC 7489 sections 6.3, 6.4 and 6.6.3 step 6): which TXT strings are
//! DMARC records and what their tags say. `v=DMARC1` must open the record (no whitespace
//! before `v`, section 6.4's `dmarc-version`) with that exact value; tag names and policy
//! values are case-insensitive; a tag given twice makes the record invalid (section 6.4 uses
//! the tag-list of RFC 6376 section 3.2, where duplicate tags are an error); `np` and unknown
//! tags are ignored.

/// A DMARC policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `none`: monitor only.
    None,
    /// `quarantine`.
    Quarantine,
    /// `reject`.
    Reject,
}

impl Policy {
    /// `none`, `quarantine` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Quarantine => "quarantine",
            Self::Reject => "reject",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [Self::None, Self::Quarantine, Self::Reject]
            .into_iter()
            .find(|p| value.eq_ignore_ascii_case(p.as_str()))
    }
}

/// One DMARC record, after the RFC 7489 section 6.6.3 step 6 repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    /// The TXT text.
    pub text: String,
    /// `p`; `none` when `p` was missing or invalid but a valid `rua` exists.
    pub policy: Policy,
    /// `sp`, when present and valid.
    pub subdomain_policy: Option<Policy>,
    /// `pct`, 100 when absent or invalid.
    pub pct: u8,
    /// DMARCbis `t=y` (testing).
    pub testing: bool,
    /// `rua` as written.
    pub rua: Option<String>,
    /// True when `p`/`sp` was missing or invalid and `p=none` was assumed because of `rua`.
    pub policy_assumed: bool,
    /// Parse warnings (invalid `pct`, malformed tags), for evidence.
    pub warnings: Vec<String>,
}

/// Why a DMARC record cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcError {
    /// The first tag is not `v=DMARC1`.
    #[error("the record does not start with v=DMARC1")]
    NotDmarc,
    /// `p` (or `sp`) is missing or invalid and there is no valid `rua`.
    #[error("missing or invalid p and no valid rua")]
    InvalidPolicy,
    /// A tag appears more than once (RFC 6376 section 3.2).
    #[error("tag {0:?} given more than once")]
    DuplicateTag(String),
}

/// True when `text` opens with `v=DMARC1` (RFC 7489 section 6.4: `"v" *WSP "=" *WSP "DMARC1"`,
/// then `;` or the end; nothing before the `v`).
pub fn is_dmarc_record(text: &str) -> bool {
    let first = text.split(';').next().unwrap_or_default();
    first.split_once('=').is_some_and(|(name, value)| {
        name.trim_end_matches(WSP).eq_ignore_ascii_case("v") && value.trim_matches(WSP) == "DMARC1"
    })
}

/// `WSP` of RFC 5234: space and horizontal tab.
const WSP: [char; 2] = [' ', '\t'];

/// Parses one DMARC record.
pub fn parse(text: &str) -> Result<DmarcRecord, DmarcError> {
    if !is_dmarc_record(text) {
        return Err(DmarcError::NotDmarc);
    }
    let (tags, mut warnings) = split_tags(text);
    if let Some(duplicate) = first_duplicate(&tags) {
        return Err(DmarcError::DuplicateTag(duplicate));
    }
    let tag = |name: &str| {
        tags.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let policy = tag("p").and_then(Policy::parse);
    let subdomain_policy = tag("sp").map(Policy::parse);
    let rua = tag("rua").map(str::to_owned);
    let (policy, subdomain_policy, repaired) = match (policy, subdomain_policy) {
        (Some(policy), None) => (policy, None, false),
        (Some(policy), Some(Some(subdomain))) => (policy, Some(subdomain), false),
        _ if rua.as_deref().is_some_and(has_valid_uri) => (Policy::None, None, true),
        _ => return Err(DmarcError::InvalidPolicy),
    };
    let pct = match tag("pct") {
        None => 100,
        Some(value) => value
            .parse::<u8>()
            .ok()
            .filter(|v| *v <= 100)
            .unwrap_or_else(|| {
                warnings.push(format!("invalid pct {value:?} treated as 100"));
                100
            }),
    };
    Ok(DmarcRecord {
        text: text.to_owned(),
        policy,
        subdomain_policy,
        pct,
        testing: tag("t").is_some_and(|v| v.eq_ignore_ascii_case("y")),
        rua,
        policy_assumed: repaired,
        warnings,
    })
}

/// The tags after `v=DMARC1` as (lower-case name, trimmed value), and warnings for tags
/// without `=`.
fn split_tags(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut tags = Vec::new();
    let mut warnings = Vec::new();
    let parts = text.split(';').skip(1).map(str::trim);
    for tag in parts.filter(|t| !t.is_empty()) {
        match tag.split_once('=') {
            Some((name, value)) => {
                tags.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            }
            None => warnings.push(format!("malformed tag {tag:?} ignored")),
        }
    }
    (tags, warnings)
}

/// The first tag name (`v` included) that appears twice.
fn first_duplicate(tags: &[(String, String)]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::from(["v"]);
    tags.iter()
        .map(|(name, _)| name.as_str())
        .find(|name| !seen.insert(name))
        .map(str::to_owned)
}

/// True when a comma list holds at least one `scheme:rest` URI (with an optional `!size`).
fn has_valid_uri(list: &str) -> bool {
    list.split(',').map(str::trim).any(|uri| {
        let uri = uri.split('!').next().unwrap_or_default();
        uri.split_once(':').is_some_and(|(scheme, rest)| {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !rest.contains(char::is_whitespace)
        })
    })
}
