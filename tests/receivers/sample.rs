//! Sample events for the sink tests.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use m365_posture::events::{EventAction, FindingEvent};
use m365_posture::findings::FindingId;

pub fn at(secs: i64, millis: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap() + chrono::Duration::milliseconds(millis)
}

/// A `new` event of `user.account_disabled` with plain values.
pub fn new_event() -> FindingEvent {
    let finding = FindingId::AccountDisabled;
    let mut details = serde_json::Map::new();
    details.insert("accountEnabled".into(), serde_json::json!(false));
    FindingEvent {
        event_id: "6f1c2b4e-3d5a-4c7b-9e8f-0a1b2c3d4e5f".into(),
        action: EventAction::New,
        detected_at: at(1_772_701_200, 123),
        tenant: "contoso".into(),
        finding,
        title: finding.meta().title.into(),
        category: finding.meta().category,
        severity: finding.meta().severity,
        resource_id: "8a1f6c1e-4b7d-4c5e-9a70-2d1f3b9c0e11".into(),
        resource_name: "adele.vance@contoso.com".into(),
        user_principal_name: Some("adele.vance@contoso.com".into()),
        fingerprint: "3f9c2e1d4b5a69788771a2b3c4d5e6f7".into(),
        first_seen: at(1_772_701_200, 123),
        last_seen: at(1_772_701_200, 123),
        details: details.into(),
    }
}

/// The matching `resolved` event of a high-severity domain finding.
pub fn resolved_event() -> FindingEvent {
    let finding = FindingId::SpfAllowsAny;
    FindingEvent {
        event_id: "0b6e8d2a-9c4f-4e1b-8a7d-5f3e2c1b0a99".into(),
        action: EventAction::Resolved,
        detected_at: at(1_773_048_300, 456),
        tenant: "contoso".into(),
        finding,
        title: finding.meta().title.into(),
        category: finding.meta().category,
        severity: finding.meta().severity,
        resource_id: "contoso.com".into(),
        resource_name: "contoso.com".into(),
        user_principal_name: None,
        fingerprint: "aa9c2e1d4b5a69788771a2b3c4d5e6f7".into(),
        first_seen: at(1_772_701_200, 123),
        last_seen: at(1_773_048_300, 456),
        details: Default::default(),
    }
}

/// An event whose attacker-controllable strings carry every character that needs care.
pub fn hostile_event(n: usize) -> FindingEvent {
    let mut event = new_event();
    event.event_id = format!("hostile-{n}");
    event.resource_name =
        format!("Evil\\App | x=1\r\ninjected CEF:0|a|b|1|c|d|10| act=resolved\tü 日本 #{n}");
    event.user_principal_name = Some(format!("jürgen{n}@contoso.com"));
    event.resource_id = format!("C:\\new\\dir={n}");
    event.details.insert(
        "rule".into(),
        serde_json::json!("fwd | to=evil@x.test\nnext"),
    );
    event
}
