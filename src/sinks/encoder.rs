//! Turns an outbox event into the bytes one sink sends: the payload (CEF or JSON), the syslog
//! header, the stream framing (TCP, TLS) or none (datagrams), within the sink's size cap.

use crate::config::{Payload, SinkConfig, SinkKind, Transport};
use crate::events::FindingEvent;
use crate::sinks::cef::render_cef;
use crate::sinks::frames::Frames;
use crate::sinks::json::render_json;
use crate::sinks::syslog_header::{frame, SyslogHeader};
use chrono::{DateTime, Utc};

/// Size cap of a stdout line (there is no receiver limit; this only bounds hostile values).
pub const STDOUT_MAX_BYTES: usize = 65_536;

/// The largest UDP payload (IPv4): a UDP message is clamped to fit one datagram. Networks that
/// fragment badly want `max_message_bytes` of 1400 to 2048 for UDP sinks.
pub const UDP_MAX_DATAGRAM: usize = 65_507;

/// About the size of a typical framed CEF message (BENCHMARKS.md, "cef": 996 bytes), to size a
/// batch's buffer once.
const TYPICAL_MESSAGE_BYTES: usize = 1_024;

/// Turns an event into the bytes one write sends: payload, syslog header, framing.
pub(crate) struct Encoder {
    payload: Payload,
    kind: SinkKind,
    header: Option<SyslogHeader>,
}

impl Encoder {
    pub(crate) fn new(sink: &SinkConfig) -> Self {
        let header = match &sink.kind {
            SinkKind::Syslog(syslog) => Some(SyslogHeader::local(syslog.format)),
            SinkKind::Stdout => None,
        };
        Self {
            payload: sink.payload,
            kind: sink.kind.clone(),
            header,
        }
    }

    /// The bytes of one event.
    #[cfg(test)]
    pub(crate) fn encode(&self, event: &FindingEvent) -> Vec<u8> {
        self.encode_with(event, &mut HeaderCache::default())
    }

    /// The bytes of every event of a batch, in order, in one buffer. The syslog header is
    /// rendered once per distinct detection time (a scan's events share one).
    pub(crate) fn encode_batch(&self, batch: &[(i64, FindingEvent)]) -> Frames {
        let mut heads = HeaderCache::default();
        let mut frames = Frames::with_capacity(batch.len(), TYPICAL_MESSAGE_BYTES);
        for (_, event) in batch {
            frames.push(&self.encode_with(event, &mut heads));
        }
        frames
    }

    fn encode_with(&self, event: &FindingEvent, heads: &mut HeaderCache) -> Vec<u8> {
        match (&self.kind, &self.header) {
            (SinkKind::Syslog(syslog), Some(header)) => {
                let head = heads.render(header, event.detected_at);
                let limit = match syslog.transport {
                    Transport::Udp => syslog.max_message_bytes.min(UDP_MAX_DATAGRAM),
                    _ => syslog.max_message_bytes,
                };
                let payload = self.payload(event, limit.saturating_sub(head.len()));
                let mut message = String::with_capacity(head.len() + payload.len());
                message.push_str(head);
                message.push_str(&payload);
                match syslog.transport {
                    Transport::Tcp | Transport::Tls => frame(syslog.framing, &message),
                    Transport::Udp | Transport::Unix => message.into_bytes(),
                }
            }
            _ => format!("{}\n", self.payload(event, STDOUT_MAX_BYTES)).into_bytes(),
        }
    }

    fn payload(&self, event: &FindingEvent, max_bytes: usize) -> String {
        let version = env!("CARGO_PKG_VERSION");
        match self.payload {
            Payload::Cef => render_cef(event, version, max_bytes),
            Payload::Json => render_json(event, version, max_bytes),
        }
    }
}

/// The header last rendered and the detection time it was rendered for.
#[derive(Default)]
struct HeaderCache {
    at: Option<DateTime<Utc>>,
    text: String,
}

impl HeaderCache {
    fn render(&mut self, header: &SyslogHeader, at: DateTime<Utc>) -> &str {
        if self.at != Some(at) {
            self.text = header.render(at);
            self.at = Some(at);
        }
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Framing, SyslogFormat, SyslogSink};
    use crate::events::EventAction;
    use crate::findings::FindingId;
    use chrono::TimeZone;

    fn event() -> FindingEvent {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let finding = FindingId::SpfAllowsAny;
        FindingEvent {
            event_id: "e1".into(),
            action: EventAction::New,
            detected_at: at,
            tenant: "contoso".into(),
            finding,
            title: finding.meta().title.into(),
            category: finding.meta().category,
            severity: finding.meta().severity,
            resource_id: "contoso.com".into(),
            resource_name: "x".repeat(5000),
            user_principal_name: None,
            fingerprint: "f".repeat(32),
            first_seen: at,
            last_seen: at,
            details: Default::default(),
        }
    }

    fn syslog(transport: Transport, framing: Framing, payload: Payload) -> SinkConfig {
        SinkConfig {
            name: "s".into(),
            payload,
            kind: SinkKind::Syslog(SyslogSink {
                transport,
                address: "127.0.0.1:514".into(),
                format: SyslogFormat::Rfc5424,
                framing,
                tls: None,
                max_message_bytes: 1400,
            }),
        }
    }

    #[test]
    fn datagrams_are_unframed_and_capped_with_the_header_included() {
        for payload in [Payload::Cef, Payload::Json] {
            let bytes = Encoder::new(&syslog(Transport::Udp, Framing::OctetCounting, payload))
                .encode(&event());
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.starts_with("<164>1 2026-01-01T00:00:00.000Z "),
                "{text}"
            );
            assert!(text.len() <= 1400, "{}", text.len());
            assert!(!text.contains('\n'));
        }
    }

    #[test]
    fn streams_are_framed() {
        let octet = Encoder::new(&syslog(
            Transport::Tcp,
            Framing::OctetCounting,
            Payload::Cef,
        ))
        .encode(&event());
        let text = String::from_utf8(octet).unwrap();
        let (len, message) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), message.len());
        let lf = Encoder::new(&syslog(Transport::Tls, Framing::Lf, Payload::Cef)).encode(&event());
        assert_eq!(lf.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(lf.last(), Some(&b'\n'));
    }

    #[test]
    fn stdout_lines_are_plain_cef() {
        let sink = SinkConfig {
            name: "stdout".into(),
            payload: Payload::Cef,
            kind: SinkKind::Stdout,
        };
        let line = String::from_utf8(Encoder::new(&sink).encode(&event())).unwrap();
        assert!(line.starts_with("CEF:0|m365-posture|m365-posture|"));
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn a_batch_encodes_as_its_events_do_one_by_one() {
        let encoder = Encoder::new(&syslog(
            Transport::Tcp,
            Framing::OctetCounting,
            Payload::Cef,
        ));
        let mut later = event();
        later.detected_at += chrono::Duration::seconds(1);
        later.event_id = "e2".into();
        let batch = vec![(1, event()), (2, later), (3, event())];
        let one_by_one: Vec<Vec<u8>> = batch.iter().map(|(_, e)| encoder.encode(e)).collect();
        let encoded = encoder.encode_batch(&batch);
        assert!(encoded.iter().eq(one_by_one.iter().map(Vec::as_slice)));
        assert_eq!(encoded.as_bytes(), one_by_one.concat());
        let second = String::from_utf8_lossy(&one_by_one[1]).into_owned();
        assert!(second.contains(" 2026-01-01T00:00:01.000Z "), "{second}");
        assert!(second.contains("cs6=e2"), "{second}");
    }
}
