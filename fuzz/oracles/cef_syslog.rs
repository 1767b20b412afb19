//! CEF and syslog rendering, round trip through a strict parser: the input gives the
//! attacker-writable strings of one event (tenant strings, evidence, title, version), split at
//! 0xFF bytes. The rendered syslog message must be one message (no raw CR or LF; LF framing adds
//! exactly one LF at the end, octet counting states the exact length), and the strict CEF
//! parser (tests/receivers/cef_parser.rs) must give back every field as the contract says
//! (tests/receivers/expected.rs); a capped line fits its cap and keeps the event id.

#[path = "../../tests/receivers/cef_parser.rs"]
mod cef_parser;
#[path = "../../tests/receivers/expected.rs"]
mod expected;

use chrono::{TimeZone, Utc};
use m365_posture::config::{Framing, SyslogFormat};
use m365_posture::events::{EventAction, FindingEvent};
use m365_posture::findings::FindingId;
use m365_posture::sinks::render_cef;
use m365_posture::sinks::syslog_header::{frame, SyslogHeader};

fn event(selector: u8, fields: &[String]) -> (FindingEvent, String) {
    let field = |i: usize| fields.get(i).cloned().unwrap_or_default();
    let ids = FindingId::ALL;
    let finding = ids
        .get(usize::from(selector) % ids.len())
        .copied()
        .unwrap_or(FindingId::AccountDisabled);
    let at = Utc
        .timestamp_opt(1_772_701_200, 0)
        .single()
        .unwrap_or_default();
    let mut details = serde_json::Map::new();
    details.insert(field(5), serde_json::json!(field(6)));
    let event = FindingEvent {
        event_id: "6f1c2b4e-3d5a-4c7b-9e8f-0a1b2c3d4e5f".into(),
        action: if selector & 0x80 == 0 {
            EventAction::New
        } else {
            EventAction::Resolved
        },
        detected_at: at,
        tenant: field(0),
        finding,
        title: field(1),
        category: finding.meta().category,
        severity: finding.meta().severity,
        resource_id: field(2),
        resource_name: field(3),
        user_principal_name: fields.get(4).cloned(),
        fingerprint: "3f9c2e1d4b5a69788771a2b3c4d5e6f7".into(),
        first_seen: at,
        last_seen: at,
        details: details.into(),
    };
    (event, field(7))
}

fn one_message(message: &str) {
    assert!(
        !message.contains(['\r', '\n']),
        "raw line break: {message:?}"
    );
    let lf = frame(Framing::Lf, message);
    assert_eq!(lf.iter().filter(|b| **b == b'\n').count(), 1);
    assert_eq!(lf.last(), Some(&b'\n'));
    let octet = frame(Framing::OctetCounting, message);
    let prefix = format!("{} ", message.len());
    assert!(octet.starts_with(prefix.as_bytes()));
    assert_eq!(octet.len(), prefix.len() + message.len());
}

/// One input: panics (assertion failures included) are the findings.
pub fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fields: Vec<String> = rest
        .split(|b| *b == 0xff)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    let (event, version) = event(selector, &fields);
    let cef = render_cef(&event, &version, usize::MAX);
    let parsed = cef_parser::parse(&cef).unwrap_or_else(|e| panic!("{e}: {cef}"));
    assert_eq!(
        cef_parser::flatten(&parsed),
        expected::expected_fields(&event, &version)
    );
    for format in [SyslogFormat::Rfc5424, SyslogFormat::Rfc3164] {
        let header = SyslogHeader::new(format, "scanner01", 4242).render(event.detected_at);
        let message = format!("{header}{cef}");
        one_message(&message);
    }
    // The cap holds "when the fixed fields fit" (render_cef): tenant (config), title (the
    // catalogue) and version (the build) are never shortened, so the capped check gives them
    // real-sized values; every attacker-written field stays as the input made it.
    let mut fixed = event.clone();
    fixed.tenant = fixed.tenant.chars().take(64).collect();
    fixed.title = fixed.finding.meta().title.to_owned();
    let cap = 700 + usize::from(selector) * 8;
    let capped = render_cef(&fixed, "1.2.3", cap);
    assert!(capped.len() <= cap, "{} > {cap}", capped.len());
    one_message(&capped);
    let parsed = cef_parser::parse(&capped).unwrap_or_else(|e| panic!("{e}: {capped}"));
    assert_eq!(parsed.extensions.get("cs6"), Some(&event.event_id));
}
