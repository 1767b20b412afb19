//! CEF rendering of a [`FindingEvent`] (CONTRACT section 5, `siem-cef.md` sections 1 and 5).
//!
//! Invariants of every rendered line:
//! - it starts with `CEF:0|m365-posture|m365-posture|` and has exactly seven unescaped `|`;
//! - it contains no raw CR, LF, TAB or other control character (header fields turn them into a
//!   space, extension values escape CR and LF as `\r` and `\n` and turn the rest into a space);
//! - header fields escape `\` and `|`; extension values escape `\` and `=` (backslash first),
//!   are trimmed of spaces at both ends (parsers keep trailing spaces) and are left out when empty;
//! - it is UTF-8 without BOM, and never longer than `max_bytes` once `max_bytes` leaves room for
//!   the fixed fields: `msg`, then the details (`flexString1`), then the resource name (`cs4`),
//!   the UPN (`duser`), the resource id (`cs3`) and the reference URL (`flexString2`) are
//!   shortened first, by whole characters
//!   before escaping, so a cut never falls inside an escape or a UTF-8 sequence. A shortened
//!   value ends with [`TRUNCATION_MARK`].
//!
//! Extension keys come in one fixed order so golden lines stay stable.

use crate::events::{EventAction, FindingEvent};

/// CEF Device Vendor (CONTRACT section 1); stable forever, SIEMs route on it.
pub const CEF_VENDOR: &str = "m365-posture";
/// CEF Device Product (CONTRACT section 1); stable forever, SIEMs route on it.
pub const CEF_PRODUCT: &str = "m365-posture";
/// Appended to a value that was shortened to fit the size cap.
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// Extension keys shortened, in this order, when a line is over the size cap.
const SHRINK_ORDER: [&str; 6] = ["msg", "flexString1", "cs4", "duser", "cs3", "flexString2"];

/// One extension pair before escaping. `label` is the `csNLabel`-style companion key and value.
struct Extension {
    key: &'static str,
    label: Option<(&'static str, &'static str)>,
    value: String,
}

/// Renders one event as a CEF line (no syslog header, no line end), at most `max_bytes` long
/// when the fixed fields fit. `version` is the daemon version (`env!("CARGO_PKG_VERSION")`).
pub fn render_cef(event: &FindingEvent, version: &str, max_bytes: usize) -> String {
    let header = render_header(event, version);
    let mut extensions = extensions(event);
    let mut line = assemble(&header, &extensions);
    for key in SHRINK_ORDER {
        if line.len() <= max_bytes {
            break;
        }
        let excess = line.len() - max_bytes;
        if let Some(ext) = extensions.iter_mut().find(|e| e.key == key) {
            let budget = escape_extension(&ext.value).len().saturating_sub(excess);
            ext.value = shorten(&ext.value, budget);
        }
        line = assemble(&header, &extensions);
    }
    line
}

/// The CEF header up to and including the seventh `|`.
fn render_header(event: &FindingEvent, version: &str) -> String {
    let fields = [
        CEF_VENDOR.to_owned(),
        CEF_PRODUCT.to_owned(),
        version.to_owned(),
        format!("{}:{}", event.finding.as_str(), event.action.as_str()),
        event.title.clone(),
        event.severity.cef_level().to_string(),
    ];
    let mut header = String::from("CEF:0|");
    for field in fields {
        header.push_str(&escape_header(&field));
        header.push('|');
    }
    header
}

/// The extension pairs in their fixed order, values normalised but not escaped.
fn extensions(event: &FindingEvent) -> Vec<Extension> {
    let plain = |key, value: String| Extension {
        key,
        label: None,
        value,
    };
    let custom = |key, label, value: String| Extension {
        key,
        label: Some(label),
        value,
    };
    let details = if event.details.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&event.details).unwrap_or_default()
    };
    vec![
        plain("rt", event.detected_at.timestamp_millis().to_string()),
        plain("act", event.action.as_str().to_owned()),
        plain("cat", event.category.as_str().to_owned()),
        plain("externalId", event.fingerprint.clone()),
        plain("msg", event_message(event)),
        plain(
            "duser",
            event.user_principal_name.clone().unwrap_or_default(),
        ),
        plain("start", event.first_seen.timestamp_millis().to_string()),
        plain("end", event.last_seen.timestamp_millis().to_string()),
        custom("cs1", ("cs1Label", "tenant"), event.tenant.clone()),
        custom(
            "cs2",
            ("cs2Label", "finding"),
            event.finding.as_str().to_owned(),
        ),
        custom("cs3", ("cs3Label", "resourceId"), event.resource_id.clone()),
        custom(
            "cs4",
            ("cs4Label", "resourceName"),
            event.resource_name.clone(),
        ),
        custom(
            "cs5",
            ("cs5Label", "findingSeverity"),
            event.severity.as_str().to_owned(),
        ),
        custom("cs6", ("cs6Label", "eventId"), event.event_id.clone()),
        custom("flexString1", ("flexString1Label", "details"), details),
        custom(
            "flexString2",
            ("flexString2Label", "reference"),
            crate::references::primary_url(event.finding)
                .unwrap_or_default()
                .to_owned(),
        ),
    ]
}

/// Joins header and extensions; an extension whose value normalises to empty is left out
/// together with its label.
fn assemble(header: &str, extensions: &[Extension]) -> String {
    let mut pairs: Vec<String> = Vec::with_capacity(extensions.len() * 2);
    for ext in extensions {
        let value = escape_extension(&ext.value);
        if value.is_empty() {
            continue;
        }
        if let Some((label_key, label_value)) = ext.label {
            pairs.push(format!("{label_key}={label_value}"));
        }
        pairs.push(format!("{}={value}", ext.key));
    }
    format!("{header}{}", pairs.join(" "))
}

/// The `msg` text: what the finding means and how to fix it (new), or that it resolved.
pub fn event_message(event: &FindingEvent) -> String {
    match event.action {
        EventAction::New => event.finding.meta().remediation.to_owned(),
        EventAction::Resolved => format!(
            "Resolved: a successful scan no longer sees this instance of \"{}\". No action is needed.",
            event.title
        ),
    }
}

/// Escapes a header field: `\` → `\\`, `|` → `\|`; control characters (CR, LF, TAB, ...) become
/// a space; spaces at both ends are trimmed.
pub fn escape_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value
        .trim_matches(|c: char| c == ' ' || c.is_control())
        .chars()
    {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an extension value: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r`; other control
/// characters (TAB, NUL, DEL, C1) become a space; spaces at both ends are trimmed first.
pub fn escape_extension(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in normalize_extension(value).chars() {
        push_escaped(&mut out, c);
    }
    out
}

/// The value a strict parser gives back for `value` after [`escape_extension`]: control
/// characters other than CR and LF become spaces, then spaces at both ends are trimmed.
pub fn normalize_extension(value: &str) -> String {
    let replaced: String = value
        .chars()
        .map(|c| {
            if c.is_control() && c != '\r' && c != '\n' {
                ' '
            } else {
                c
            }
        })
        .collect();
    replaced.trim_matches(' ').to_owned()
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '=' => out.push_str("\\="),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c => out.push(c),
    }
}

fn escaped_len(c: char) -> usize {
    match c {
        '\\' | '=' | '\n' | '\r' => 2,
        c => c.len_utf8(),
    }
}

/// Shortens `value` so that its escaped form is at most `budget` bytes, cutting between
/// characters and appending [`TRUNCATION_MARK`]; empty when even the mark does not fit.
fn shorten(value: &str, budget: usize) -> String {
    let normalized = normalize_extension(value);
    if normalized.chars().map(escaped_len).sum::<usize>() <= budget {
        return normalized;
    }
    let Some(room) = budget.checked_sub(TRUNCATION_MARK.len()) else {
        return String::new();
    };
    let mut used = 0;
    let mut kept = String::new();
    for c in normalized.chars() {
        used += escaped_len(c);
        if used > room {
            break;
        }
        kept.push(c);
    }
    format!("{}{TRUNCATION_MARK}", kept.trim_end_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_spec_table() {
        assert_eq!(escape_header(r"a\b|c=d"), r"a\\b\|c=d");
        assert_eq!(escape_header("x\r\ny\tz"), "x  y z");
        assert_eq!(escape_extension(r"C:\Temp a=b|c"), r"C:\\Temp a\=b|c");
        assert_eq!(escape_extension("l1\nl2\r\n"), r"l1\nl2\r\n");
        assert_eq!(escape_extension("  tab\there \u{0}  "), "tab here");
    }

    #[test]
    fn shorten_never_cuts_an_escape_or_a_character() {
        let value = "é=é=é=é=é=";
        for budget in 0..40 {
            let short = shorten(value, budget);
            let escaped = escape_extension(&short);
            assert!(escaped.len() <= budget || short == normalize_extension(value));
            if !short.is_empty() && short != value {
                assert!(short.ends_with(TRUNCATION_MARK));
                assert!(!escaped.ends_with('\\') || escaped.ends_with("\\\\"));
            }
        }
    }
}
