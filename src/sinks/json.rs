//! The `json` payload: one compact JSON object per event with the same fields as the CEF line,
//! for SIEMs that decode JSON natively (Wazuh, Elastic, Splunk).
//!
//! Keys are the [`FindingEvent`] field names plus `product`, `product_version`, `signature`
//! (`<finding>:<new|resolved>`, the CEF class id), `severity_level` (the CEF 0-10 severity) and
//! `msg` (the CEF `msg` text). serde_json escapes control characters, so a rendered object never
//! contains a raw CR or LF. Over `max_bytes`, `msg` is shortened first, then `details` is
//! replaced by `{}` with `"details_truncated": true`, then `resource_name` is shortened.

use crate::events::FindingEvent;
use crate::sinks::cef::{event_message, CEF_PRODUCT, TRUNCATION_MARK};
use serde_json::{json, Map, Value};

/// Renders one event as a single-line JSON object of at most `max_bytes` bytes when the fixed
/// fields fit.
pub fn render_json(event: &FindingEvent, version: &str, max_bytes: usize) -> String {
    let mut object = event_object(event, version);
    let mut text = Value::Object(object.clone()).to_string();
    if text.len() > max_bytes {
        shorten_string(&mut object, "msg", text.len() - max_bytes);
        text = Value::Object(object.clone()).to_string();
    }
    if text.len() > max_bytes && !event.details.is_empty() {
        object.insert("details".to_owned(), Value::Object(Map::new()));
        object.insert("details_truncated".to_owned(), Value::Bool(true));
        text = Value::Object(object.clone()).to_string();
    }
    if text.len() > max_bytes {
        shorten_string(&mut object, "resource_name", text.len() - max_bytes);
        text = Value::Object(object).to_string();
    }
    text
}

fn event_object(event: &FindingEvent, version: &str) -> Map<String, Value> {
    let value = json!({
        "product": CEF_PRODUCT,
        "product_version": version,
        "signature": format!("{}:{}", event.finding.as_str(), event.action.as_str()),
        "event_id": event.event_id,
        "action": event.action,
        "detected_at": event.detected_at,
        "tenant": event.tenant,
        "finding": event.finding,
        "title": event.title,
        "category": event.category,
        "severity": event.severity,
        "severity_level": event.severity.cef_level(),
        "resource_id": event.resource_id,
        "resource_name": event.resource_name,
        "user_principal_name": event.user_principal_name,
        "fingerprint": event.fingerprint,
        "first_seen": event.first_seen,
        "last_seen": event.last_seen,
        "msg": event_message(event),
        "details": event.details,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Cuts at least `excess` encoded bytes off the string at `key`, between characters, and
/// appends the truncation mark.
fn shorten_string(object: &mut Map<String, Value>, key: &str, excess: usize) {
    let Some(Value::String(text)) = object.get(key) else {
        return;
    };
    let encoded: usize = text.chars().map(json_len).sum();
    let target = encoded.saturating_sub(excess + TRUNCATION_MARK.len());
    let mut used = 0;
    let mut kept = String::new();
    for c in text.chars() {
        used += json_len(c);
        if used > target {
            break;
        }
        kept.push(c);
    }
    kept.push_str(TRUNCATION_MARK);
    object.insert(key.to_owned(), Value::String(kept));
}

/// Bytes serde_json needs for `c` inside a string.
fn json_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_matches_serde_json() {
        for c in ['a', '"', '\\', '\n', '\u{1}', '\u{7f}', 'é', '日', '\u{8}'] {
            let encoded = Value::String(c.to_string()).to_string().len() - 2;
            assert_eq!(json_len(c), encoded, "{c:?}");
        }
    }
}
