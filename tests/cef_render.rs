//! CEF rendering: golden lines, escaping of hostile values, the size cap, and a property test
//! that a strict parser gives back every field unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

#[path = "receivers/cef_parser.rs"]
mod cef_parser;
#[path = "receivers/expected.rs"]
mod expected;
#[path = "receivers/sample.rs"]
mod sample;

use m365_posture::config::{Framing, SyslogFormat};
use m365_posture::events::FindingEvent;
use m365_posture::sinks::cef::TRUNCATION_MARK;
use m365_posture::sinks::render_cef;
use m365_posture::sinks::syslog_header::{frame, SyslogHeader};
use proptest::prelude::*;

const VERSION: &str = "1.2.3";

const GOLDEN_NEW: &str = "<164>1 2026-03-05T09:00:00.123Z scanner01 m365-posture 4242 finding - CEF:0|m365-posture|m365-posture|1.2.3|user.account_disabled:new|User account disabled|3|rt=1772701200123 act=new cat=user_account_settings externalId=3f9c2e1d4b5a69788771a2b3c4d5e6f7 msg=The account is disabled but still exists with its licences, group memberships and data. Remove it when it is no longer needed, or document why it is kept. duser=adele.vance@contoso.com start=1772701200123 end=1772701200123 cs1Label=tenant cs1=contoso cs2Label=finding cs2=user.account_disabled cs3Label=resourceId cs3=8a1f6c1e-4b7d-4c5e-9a70-2d1f3b9c0e11 cs4Label=resourceName cs4=adele.vance@contoso.com cs5Label=findingSeverity cs5=low cs6Label=eventId cs6=6f1c2b4e-3d5a-4c7b-9e8f-0a1b2c3d4e5f flexString1Label=details flexString1={\"accountEnabled\":false} flexString2Label=reference flexString2=https://learn.microsoft.com/en-us/microsoft-365/admin/add-users/delete-a-user";

const GOLDEN_RESOLVED: &str = "<164>1 2026-03-09T09:25:00.456Z scanner01 m365-posture 4242 finding - CEF:0|m365-posture|m365-posture|1.2.3|domain.spf_allows_any:resolved|Microsoft Domain SPF Record Allows Any IP Address|8|rt=1773048300456 act=resolved cat=email_admin_settings externalId=aa9c2e1d4b5a69788771a2b3c4d5e6f7 msg=Resolved: a successful scan no longer sees this instance of \"Microsoft Domain SPF Record Allows Any IP Address\". No action is needed. start=1772701200123 end=1773048300456 cs1Label=tenant cs1=contoso cs2Label=finding cs2=domain.spf_allows_any cs3Label=resourceId cs3=contoso.com cs4Label=resourceName cs4=contoso.com cs5Label=findingSeverity cs5=high cs6Label=eventId cs6=0b6e8d2a-9c4f-4e1b-8a7d-5f3e2c1b0a99 flexString2Label=reference flexString2=https://learn.microsoft.com/en-us/defender-office-365/email-authentication-spf-configure";

fn syslog_line(event: &FindingEvent) -> String {
    let header = SyslogHeader::new(SyslogFormat::Rfc5424, "scanner01", 4242);
    format!(
        "{}{}",
        header.render(event.detected_at),
        render_cef(event, VERSION, 4096)
    )
}

fn parsed(line: &str) -> std::collections::BTreeMap<String, String> {
    cef_parser::flatten(&cef_parser::parse(line).unwrap_or_else(|e| panic!("{e}: {line}")))
}

#[test]
fn golden_new_event() {
    assert_eq!(syslog_line(&sample::new_event()), GOLDEN_NEW);
}

#[test]
fn golden_resolved_event() {
    assert_eq!(syslog_line(&sample::resolved_event()), GOLDEN_RESOLVED);
}

#[test]
fn golden_lines_parse_back_to_the_event() {
    for event in [sample::new_event(), sample::resolved_event()] {
        let line = render_cef(&event, VERSION, 4096);
        assert_eq!(parsed(&line), expected::expected_fields(&event, VERSION));
    }
}

#[test]
fn rfc3164_mode_puts_cef_right_after_the_hostname() {
    let event = sample::new_event();
    let header = SyslogHeader::new(SyslogFormat::Rfc3164, "scanner01", 4242);
    let line = format!(
        "{}{}",
        header.render(event.detected_at),
        render_cef(&event, VERSION, 4096)
    );
    assert!(
        line.starts_with("<164>Mar  5 09:00:00 scanner01 CEF:0|m365-posture|"),
        "{line}"
    );
}

#[test]
fn framing_wraps_the_whole_message() {
    let message = syslog_line(&sample::new_event());
    let octet = frame(Framing::OctetCounting, &message);
    assert_eq!(octet, format!("{} {message}", message.len()).into_bytes());
    assert_eq!(
        frame(Framing::Lf, &message),
        format!("{message}\n").into_bytes()
    );
}

#[test]
fn hostile_values_are_escaped_exactly() {
    let line = render_cef(&sample::hostile_event(1), VERSION, 4096);
    assert!(line.contains(r"cs3=C:\\new\\dir\=1 "), "{line}");
    assert!(
        line.contains(
            r"cs4=Evil\\App | x\=1\ninjected CEF:0|a|b|1|c|d|10| act\=resolved ü 日本 #1 "
        ),
        "{line}"
    );
    assert!(line
        .contains(r#"flexString1={"accountEnabled":false,"rule":"fwd | to\=evil@x.test\\nnext"}"#));
    assert!(!line.contains(['\r', '\n', '\t']));
    // the injected "act=resolved" stays inside cs4; the real act is new
    let fields = parsed(&line);
    assert_eq!(fields["act"], "new");
    assert_eq!(
        fields["cs4"],
        "Evil\\App | x=1\ninjected CEF:0|a|b|1|c|d|10| act=resolved ü 日本 #1"
    );
    assert_eq!(
        fields,
        expected::expected_fields(&sample::hostile_event(1), VERSION)
    );
}

#[test]
fn header_fields_escape_pipe_and_backslash_and_drop_line_breaks() {
    let mut event = sample::new_event();
    event.title = "Bad|Name\\with\r\nbreak\tand=equals ".into();
    let line = render_cef(&event, "1.0|x", 4096);
    assert!(line.starts_with(r"CEF:0|m365-posture|m365-posture|1.0\|x|user.account_disabled:new|Bad\|Name\\with  break and=equals|3|rt="), "{line}");
    assert_eq!(
        parsed(&line)["header.5"],
        "Bad|Name\\with  break and=equals"
    );
}

#[test]
fn line_is_utf8_without_bom() {
    let line = render_cef(&sample::hostile_event(2), VERSION, 4096);
    assert!(line.starts_with("CEF:0|"));
    assert!(!line.contains('\u{feff}'));
}

#[test]
fn ten_kilobyte_values_are_escaped_and_shortened_to_the_cap() {
    let mut event = sample::hostile_event(3);
    event.resource_name = "a=b\\c|\n".repeat(1500);
    event.user_principal_name = Some("ü".repeat(5000));
    event
        .details
        .insert("big".into(), serde_json::json!("x=".repeat(5000)));
    let uncapped = render_cef(&event, VERSION, usize::MAX);
    assert!(uncapped.len() > 30_000);
    assert_eq!(
        parsed(&uncapped),
        expected::expected_fields(&event, VERSION)
    );
    for cap in [4096, 2048, 1400] {
        let line = render_cef(&event, VERSION, cap);
        assert!(line.len() <= cap, "{} > {cap}", line.len());
        let fields = parsed(&line);
        let want = expected::expected_fields(&event, VERSION);
        for (key, value) in &fields {
            let full = &want[key];
            if value != full {
                let kept = value
                    .strip_suffix(TRUNCATION_MARK)
                    .unwrap_or_else(|| panic!("{key} changed without mark"));
                assert!(full.starts_with(kept), "{key} is not a prefix");
                assert!(
                    expected::SHORTENABLE.contains(&key.as_str()),
                    "{key} shortened"
                );
            }
        }
        for key in [
            "header.4",
            "header.6",
            "act",
            "externalId",
            "cs6",
            "cs1",
            "cs2",
            "rt",
        ] {
            assert_eq!(fields.get(key), want.get(key), "{key} at cap {cap}");
        }
    }
}

#[test]
fn msg_is_shortened_before_anything_else() {
    let event = sample::new_event();
    let full = render_cef(&event, VERSION, usize::MAX);
    let line = render_cef(&event, VERSION, full.len() - 40);
    let fields = parsed(&line);
    assert!(fields["msg"].ends_with(TRUNCATION_MARK));
    assert_eq!(fields["flexString1"], "{\"accountEnabled\":false}");
    assert_eq!(fields["cs4"], "adele.vance@contoso.com");
}

fn tricky_string() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('\\'),
        Just('|'),
        Just('='),
        Just('\n'),
        Just('\r'),
        Just('\t'),
        Just(' '),
        Just('\u{0}'),
        Just('\u{7f}'),
        Just('\u{85}'),
        Just('\u{feff}'),
        Just('ü'),
        Just('日'),
        any::<char>(),
        proptest::char::range('a', 'z'),
    ];
    proptest::collection::vec(special, 0..60).prop_map(String::from_iter)
}

fn arbitrary_event() -> impl Strategy<Value = FindingEvent> {
    (
        tricky_string(),
        tricky_string(),
        tricky_string(),
        tricky_string(),
        tricky_string(),
        any::<bool>(),
    )
        .prop_map(|(name, upn, resource_id, detail, title, resolved)| {
            let mut event = if resolved {
                sample::resolved_event()
            } else {
                sample::new_event()
            };
            event.resource_name = name;
            event.user_principal_name = Some(upn);
            event.resource_id = resource_id;
            event.title = title;
            event
                .details
                .insert("value".into(), serde_json::json!(detail));
            event
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_field_round_trips_and_no_raw_line_break_leaves(event in arbitrary_event()) {
        let line = render_cef(&event, VERSION, usize::MAX);
        prop_assert!(!line.contains(['\r', '\n']));
        let cef = cef_parser::parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(cef_parser::flatten(&cef), expected::expected_fields(&event, VERSION));
    }

    #[test]
    fn capped_lines_fit_and_still_parse(event in arbitrary_event(), cap in 700usize..3000) {
        let line = render_cef(&event, VERSION, cap);
        prop_assert!(line.len() <= cap, "{} > {}", line.len(), cap);
        prop_assert!(!line.contains(['\r', '\n']));
        let cef = cef_parser::parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        prop_assert_eq!(&cef.extensions["cs6"], &event.event_id);
    }
}
