//! Domain-specs of SPF terms (RFC 7208 section 7.1): the target names of `include:`, `a:`,
//! `mx:`, `ptr:`, `exists:`, `redirect=` and `exp=`. Macro strings are validated and marked,
//! never expanded.

use super::record::SpfSyntaxError;

/// A target name as written in the record (`include:`, `a:`, `redirect=`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// The text after `:` or `=`, as written.
    pub text: String,
    /// True when the text contains a `%{...}` macro; such a name cannot be looked up here.
    pub has_macro: bool,
}

impl DomainSpec {
    /// The DNS name to look up: lower-case without a trailing dot, or `None` for a macro.
    pub fn lookup_name(&self) -> Option<String> {
        (!self.has_macro).then(|| self.text.trim_end_matches('.').to_ascii_lowercase())
    }
}

/// A domain-spec: a macro string that ends in a top label or a macro (RFC 7208 section 7.1).
pub(super) fn domain_spec(text: &str, term: &str) -> Result<DomainSpec, SpfSyntaxError> {
    let invalid = || SpfSyntaxError::InvalidDomain(term.to_owned());
    let has_macro = check_macro_string(text, false).ok_or_else(invalid)?;
    let ends_in_macro = has_macro && text.ends_with('}');
    if !ends_in_macro && !ends_in_top_label(text) {
        return Err(invalid());
    }
    Ok(DomainSpec {
        text: text.to_owned(),
        has_macro,
    })
}

/// `Some(has_macro)` when `text` is a valid macro-string, `None` when it is not. The letters
/// `c`, `r` and `t` are allowed only in explanation text (section 7.1), so only when
/// `explanation_letters` is set.
pub(super) fn check_macro_string(text: &str, explanation_letters: bool) -> Option<bool> {
    let mut has_macro = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next()? {
                '%' | '_' | '-' => {}
                '{' => {
                    let mut body = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        body.push(c);
                    }
                    if !closed || !valid_macro_body(&body, explanation_letters) {
                        return None;
                    }
                    has_macro = true;
                }
                _ => return None,
            },
            '!'..='~' => {}
            _ => return None,
        }
    }
    Some(has_macro)
}

/// `macro-letter transformers *delimiter` of RFC 7208 section 7.1.
fn valid_macro_body(body: &str, explanation_letters: bool) -> bool {
    let letters = if explanation_letters {
        "slodiphvcrt"
    } else {
        "slodiphv"
    };
    let mut chars = body.chars().peekable();
    let letter_ok = chars
        .next()
        .is_some_and(|c| letters.contains(c.to_ascii_lowercase()));
    while chars.next_if(|c| c.is_ascii_digit()).is_some() {}
    chars.next_if(|c| c.eq_ignore_ascii_case(&'r'));
    letter_ok && chars.all(|c| ".-+,/_=".contains(c))
}

/// `"." toplabel ["."]` at the end of a name.
fn ends_in_top_label(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    let Some((head, top)) = name.rsplit_once('.') else {
        return false;
    };
    let chars_ok = top.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let edges_ok = !top.starts_with('-') && !top.ends_with('-');
    let not_numeric = top.chars().any(|c| c.is_ascii_alphabetic() || c == '-');
    !head.is_empty() && !top.is_empty() && chars_ok && edges_ok && not_numeric
}
