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
use std::borrow::Cow;

/// CEF Device Vendor (CONTRACT section 1); stable forever, SIEMs route on it.
pub const CEF_VENDOR: &str = "m365-posture";
/// CEF Device Product (CONTRACT section 1); stable forever, SIEMs route on it.
pub const CEF_PRODUCT: &str = "m365-posture";
/// Appended to a value that was shortened to fit the size cap.
pub const TRUNCATION_MARK: &str = "…[truncated]";

/// Extension keys shortened, in this order, when a line is over the size cap.
const SHRINK_ORDER: [&str; 6] = ["msg", "flexString1", "cs4", "duser", "cs3", "flexString2"];

/// One extension pair before escaping. `label` is the `csNLabel`-style companion key and value.
struct Extension<'a> {
    key: &'static str,
    label: Option<(&'static str, &'static str)>,
    value: Cow<'a, str>,
}

impl<'a> Extension<'a> {
    fn plain(key: &'static str, value: Cow<'a, str>) -> Self {
        Self {
            key,
            label: None,
            value,
        }
    }

    fn custom(key: &'static str, label: (&'static str, &'static str), value: Cow<'a, str>) -> Self {
        Self {
            key,
            label: Some(label),
            value,
        }
    }
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
            ext.value = Cow::Owned(shorten(&ext.value, budget));
        }
        line = assemble(&header, &extensions);
    }
    line
}

/// The CEF header up to and including the seventh `|`.
fn render_header(event: &FindingEvent, version: &str) -> String {
    let signature = format!("{}:{}", event.finding.as_str(), event.action.as_str());
    let level = event.severity.cef_level().to_string();
    let fields = [
        CEF_VENDOR,
        CEF_PRODUCT,
        version,
        &signature,
        &event.title,
        &level,
    ];
    let mut header = String::with_capacity(128);
    header.push_str("CEF:0|");
    for field in fields {
        push_header(&mut header, field);
        header.push('|');
    }
    header
}

/// The extension pairs in their fixed order, values neither normalised nor escaped.
fn extensions(event: &FindingEvent) -> Vec<Extension<'_>> {
    fn custom<'a>(
        key: &'static str,
        label: (&'static str, &'static str),
        value: &'a str,
    ) -> Extension<'a> {
        Extension::custom(key, label, Cow::Borrowed(value))
    }
    let plain = Extension::plain;
    let details = if event.details.is_empty() {
        String::new()
    } else {
        // The same text as the map it stands for, written straight into the string.
        serde_json::to_string(&event.details).unwrap_or_default()
    };
    let millis = |at: chrono::DateTime<chrono::Utc>| Cow::Owned(at.timestamp_millis().to_string());
    let message = match event.action {
        EventAction::New => Cow::Borrowed(event.finding.meta().remediation),
        EventAction::Resolved => Cow::Owned(event_message(event)),
    };
    let reference = crate::references::primary_url(event.finding).unwrap_or_default();
    vec![
        plain("rt", millis(event.detected_at)),
        plain("act", Cow::Borrowed(event.action.as_str())),
        plain("cat", Cow::Borrowed(event.category.as_str())),
        plain("externalId", Cow::Borrowed(&event.fingerprint)),
        plain("msg", message),
        plain(
            "duser",
            Cow::Borrowed(event.user_principal_name.as_deref().unwrap_or_default()),
        ),
        plain("start", millis(event.first_seen)),
        plain("end", millis(event.last_seen)),
        custom("cs1", ("cs1Label", "tenant"), &event.tenant),
        custom("cs2", ("cs2Label", "finding"), event.finding.as_str()),
        custom("cs3", ("cs3Label", "resourceId"), &event.resource_id),
        custom("cs4", ("cs4Label", "resourceName"), &event.resource_name),
        custom(
            "cs5",
            ("cs5Label", "findingSeverity"),
            event.severity.as_str(),
        ),
        custom("cs6", ("cs6Label", "eventId"), &event.event_id),
        Extension::custom(
            "flexString1",
            ("flexString1Label", "details"),
            Cow::Owned(details),
        ),
        custom("flexString2", ("flexString2Label", "reference"), reference),
    ]
}

/// Joins header and extensions; an extension whose value normalises to empty is left out
/// together with its label. Written into one string (this runs for every event delivered).
fn assemble(header: &str, extensions: &[Extension<'_>]) -> String {
    let room: usize = extensions.iter().map(|e| e.value.len() + 40).sum();
    let mut line = String::with_capacity(header.len() + room);
    line.push_str(header);
    let mut first = true;
    for ext in extensions {
        let value = ext.value.trim_matches(blank);
        if value.is_empty() {
            continue;
        }
        if !first {
            line.push(' ');
        }
        first = false;
        if let Some((label_key, label_value)) = ext.label {
            line.push_str(label_key);
            line.push('=');
            line.push_str(label_value);
            line.push(' ');
        }
        line.push_str(ext.key);
        line.push('=');
        push_extension(&mut line, value);
    }
    line
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
    push_header(&mut out, value);
    out
}

/// Appends [`escape_header`] of `value` to `out`.
fn push_header(out: &mut String, value: &str) {
    let value = value.trim_matches(|c: char| c == ' ' || c.is_control());
    if value.bytes().all(|b| plain_byte(b) && b != b'|') {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Escapes an extension value as siem-cef.md section 1.3's encoder rule (CONTRACT section 5):
/// `\` → `\\`, `=` → `\=`, CRLF → `\n`, LF → `\n`, CR → `\r`; other control characters (TAB, NUL,
/// DEL, C1) become a space; spaces at both ends are trimmed first.
pub fn escape_extension(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_extension(&mut out, value.trim_matches(blank));
    out
}

/// The value a strict parser gives back for `value` after [`escape_extension`]: control
/// characters other than CR and LF become spaces, spaces at both ends are trimmed, and a CRLF
/// is one line break (LF).
pub fn normalize_extension(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.trim_matches(blank).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            c if blank(c) => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// What normalisation turns into a space (control characters other than CR and LF), and the
/// space itself: trimming these from the ends first equals trimming spaces after replacing.
fn blank(c: char) -> bool {
    c == ' ' || (c.is_control() && c != '\r' && c != '\n')
}

/// ASCII that no escape or replacement touches (`|` aside, which only headers escape).
fn plain_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'\\' && b != b'='
}

/// Appends the escaped form of `value`, already trimmed of [`blank`] ends, to `out`.
fn push_extension(out: &mut String, value: &str) {
    if value.bytes().all(plain_byte) {
        out.push_str(value);
        return;
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            // CRLF is one line break, written as LF's escape (siem-cef.md section 1.3).
            continue;
        }
        if blank(c) {
            out.push(' ');
        } else {
            push_escaped(out, c);
        }
    }
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

/// The bytes `c` takes once escaped (a blank becomes one space).
fn escaped_len(c: char) -> usize {
    match c {
        '\\' | '=' | '\n' | '\r' => 2,
        c if blank(c) => 1,
        c => c.len_utf8(),
    }
}

/// Shortens `value` so that its escaped form is at most `budget` bytes, cutting between
/// characters (a CRLF, one escape, stays whole) and appending [`TRUNCATION_MARK`]; empty when
/// even the mark does not fit. The text kept is `value`'s own, so [`push_extension`] escapes it
/// exactly as it escapes the whole value.
fn shorten(value: &str, budget: usize) -> String {
    let value = value.trim_matches(blank);
    if escaped_prefix(value, usize::MAX).0 <= budget {
        return value.to_owned();
    }
    let Some(room) = budget.checked_sub(TRUNCATION_MARK.len()) else {
        return String::new();
    };
    let end = escaped_prefix(value, room).1;
    let kept = value.get(..end).unwrap_or_default().trim_end_matches(blank);
    format!("{kept}{TRUNCATION_MARK}")
}

/// The escaped length of the longest prefix of `value` whose escaped form fits in `room`, and
/// the byte where that prefix ends.
fn escaped_prefix(value: &str, room: usize) -> (usize, usize) {
    let (mut used, mut end) = (0, 0);
    let mut chars = value.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        let (len, next) = match chars.peek() {
            Some(&(at, '\n')) if c == '\r' => (2, at + 1),
            _ => (escaped_len(c), index + c.len_utf8()),
        };
        if used + len > room {
            break;
        }
        if next > index + c.len_utf8() {
            chars.next();
        }
        used += len;
        end = next;
    }
    (used, end)
}

#[cfg(test)]
#[path = "cef_tests.rs"]
mod tests;
