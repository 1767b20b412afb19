//! Syslog headers (RFC 5424 default, RFC 3164 "classic CEF") and stream framing (RFC 6587).
//!
//! The header timestamp is the event's detection time, not the send time, so a message resent
//! after a crash is byte-identical (apart from PROCID, the sending process). PRI is the constant
//! `<164>` (local4.warning): deriving it from the finding severity would let forwarder level
//! filters drop low or resolved events. No BOM precedes the message (rsyslog keeps a BOM and its
//! CEF parse then fails).
//!
//! RFC 3164 mode writes `<164>Mmm dd HH:MM:SS HOST CEF:0|…` with no tag, the shape of the ArcSight
//! examples and of Microsoft Sentinel's CEF test: receivers then see `CEF` as the program name.
//! The RFC 3164 timestamp is UTC and has no year.

use crate::config::{Framing, SyslogFormat};
use chrono::{DateTime, Utc};

/// `<164>`: facility local4 (20) × 8 + severity warning (4).
pub const PRI: u8 = 164;
/// RFC 5424 APP-NAME.
pub const APP_NAME: &str = "m365-posture";
/// RFC 5424 MSGID.
pub const MSGID: &str = "finding";

/// The fixed parts of a syslog header for one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogHeader {
    format: SyslogFormat,
    hostname: String,
    procid: String,
}

impl SyslogHeader {
    /// A header with the given HOSTNAME and PROCID; the hostname is reduced to printable
    /// US-ASCII without spaces, at most 255 bytes (`-` when nothing is left).
    pub fn new(format: SyslogFormat, hostname: &str, procid: u32) -> Self {
        let mut clean: String = hostname.chars().filter(|c| c.is_ascii_graphic()).collect();
        clean.truncate(255);
        if clean.is_empty() {
            clean.push('-');
        }
        Self {
            format,
            hostname: clean,
            procid: procid.to_string(),
        }
    }

    /// A header for this machine and process: hostname from the kernel, PROCID the pid.
    pub fn local(format: SyslogFormat) -> Self {
        Self::new(format, &local_hostname(), std::process::id())
    }

    /// The header text for a message about an event detected at `timestamp`, ending with the
    /// space before MSG.
    pub fn render(&self, timestamp: DateTime<Utc>) -> String {
        match self.format {
            SyslogFormat::Rfc5424 => format!(
                "<{PRI}>1 {} {} {APP_NAME} {} {MSGID} - ",
                timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                self.hostname,
                self.procid
            ),
            SyslogFormat::Rfc3164 => format!(
                "<{PRI}>{} {} ",
                timestamp.format("%b %e %H:%M:%S"),
                self.hostname
            ),
        }
    }
}

/// This machine's host name as the kernel reports it, or empty when unknown.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

/// Frames one message for a TCP or TLS stream: `LEN SP MSG` (octet counting) or `MSG LF`.
pub fn frame(framing: Framing, message: &str) -> Vec<u8> {
    match framing {
        Framing::OctetCounting => format!("{} {message}", message.len()).into_bytes(),
        Framing::Lf => format!("{message}\n").into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 5, 9, 0, 0).unwrap() + chrono::Duration::milliseconds(123)
    }

    #[test]
    fn rfc5424_header_has_the_contract_fields() {
        let header = SyslogHeader::new(SyslogFormat::Rfc5424, "scanner 01\n", 42);
        assert_eq!(
            header.render(at()),
            "<164>1 2026-03-05T09:00:00.123Z scanner01 m365-posture 42 finding - "
        );
    }

    #[test]
    fn rfc3164_header_pads_the_day_with_a_space() {
        let header = SyslogHeader::new(SyslogFormat::Rfc3164, "scanner01", 42);
        assert_eq!(header.render(at()), "<164>Mar  5 09:00:00 scanner01 ");
    }

    #[test]
    fn framing_counts_bytes_not_characters() {
        assert_eq!(frame(Framing::OctetCounting, "é"), b"2 \xc3\xa9".to_vec());
        assert_eq!(frame(Framing::Lf, "a"), b"a\n".to_vec());
    }
}
