//! What a strict CEF parser must give back for an event: the contract's fields, written out
//! here independently of the renderer (values normalised the way CONTRACT section 5 allows:
//! control characters other than CR/LF become spaces, a CRLF is one LF, spaces at both ends are trimmed, empty
//! values are left out with their label).

#![allow(dead_code)]

use m365_posture::events::{EventAction, FindingEvent};
use std::collections::BTreeMap;

pub fn normalize(value: &str) -> String {
    // A CRLF is written as one escaped LF (siem-cef.md section 1.3's encoder rule).
    let value = value.replace("\r\n", "\n");
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

fn normalize_header(value: &str) -> String {
    let replaced: String = value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    replaced.trim_matches(' ').to_owned()
}

/// The text `msg` carries: the catalogue remediation for `new`, a resolution note naming the
/// title for `resolved`.
pub fn message(event: &FindingEvent) -> String {
    match event.action {
        EventAction::New => event.finding.meta().remediation.to_owned(),
        EventAction::Resolved => format!(
            "Resolved: a successful scan no longer sees this instance of \"{}\". No action is needed.",
            event.title
        ),
    }
}

pub fn expected_fields(event: &FindingEvent, version: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let header = [
        "0".to_owned(),
        "m365-posture".to_owned(),
        "m365-posture".to_owned(),
        normalize_header(version),
        format!("{}:{}", event.finding.as_str(), event.action.as_str()),
        normalize_header(&event.title),
        event.severity.cef_level().to_string(),
    ];
    for (i, value) in header.into_iter().enumerate() {
        map.insert(format!("header.{i}"), value);
    }
    let mut put = |key: &str, value: String| {
        let value = normalize(&value);
        if !value.is_empty() {
            map.insert(key.to_owned(), value);
        }
    };
    put("rt", event.detected_at.timestamp_millis().to_string());
    put("act", event.action.as_str().to_owned());
    put("cat", event.category.as_str().to_owned());
    put("externalId", event.fingerprint.clone());
    put("msg", message(event));
    put(
        "duser",
        event.user_principal_name.clone().unwrap_or_default(),
    );
    put("start", event.first_seen.timestamp_millis().to_string());
    put("end", event.last_seen.timestamp_millis().to_string());
    put("cs1", event.tenant.clone());
    put("cs2", event.finding.as_str().to_owned());
    put("cs3", event.resource_id.clone());
    put("cs4", event.resource_name.clone());
    put("cs5", event.severity.as_str().to_owned());
    put("cs6", event.event_id.clone());
    if !event.details.is_empty() {
        put("flexString1", event.details.to_value().to_string());
    }
    if let Some(url) = m365_posture::references::primary_url(event.finding) {
        put("flexString2", url.to_owned());
    }
    let labels = [
        ("cs1", "tenant"),
        ("cs2", "finding"),
        ("cs3", "resourceId"),
        ("cs4", "resourceName"),
        ("cs5", "findingSeverity"),
        ("cs6", "eventId"),
        ("flexString1", "details"),
        ("flexString2", "reference"),
    ];
    for (key, label) in labels {
        if map.contains_key(key) {
            map.insert(format!("{key}Label"), label.to_owned());
        }
    }
    map
}

/// Keys the size cap may shorten (ending in the truncation mark) or drop.
pub const SHORTENABLE: [&str; 6] = ["msg", "flexString1", "cs4", "duser", "cs3", "flexString2"];

/// Checks parsed fields against the event: every field exact, except that a shortenable one
/// may be a prefix of its value followed by `…[truncated]`, or be missing with its label.
pub fn check_fields(
    fields: &BTreeMap<String, String>,
    event: &FindingEvent,
    version: &str,
) -> Result<(), String> {
    let want = expected_fields(event, version);
    for (key, full) in &want {
        let shortenable = SHORTENABLE
            .iter()
            .any(|k| key == k || key.strip_suffix("Label") == Some(k));
        match fields.get(key) {
            Some(got) if got == full => {}
            Some(got) if shortenable => {
                let kept = got
                    .strip_suffix("…[truncated]")
                    .ok_or_else(|| format!("{key}: {got:?} != {full:?}"))?;
                if !full.starts_with(kept) {
                    return Err(format!("{key}: {got:?} is not a prefix of the value"));
                }
            }
            None if shortenable => {}
            got => return Err(format!("{key}: {got:?} != {full:?}")),
        }
    }
    if let Some(extra) = fields.keys().find(|k| !want.contains_key(*k)) {
        return Err(format!("unexpected key {extra}"));
    }
    Ok(())
}
