//! Validation of `[[sinks]]`: which keys go with which sink type and transport, addresses,
//! sizes and default names (`<type>-<index>`).

use super::error::Problems;
use super::fields::{name, paired_file, report_duplicates};
use super::raw::{
    RawFraming, RawPayload, RawSink, RawSinkType, RawSyslogFormat, RawTls, RawTransport,
};
use super::{
    Framing, Payload, SinkConfig, SinkKind, SyslogFormat, SyslogSink, TlsConfig, Transport,
};
use std::net::Ipv6Addr;

/// Default maximum message size; the UDP sink clamps it further to fit one datagram.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8192;
/// RFC 5424 section 6.1: every receiver must accept 480 bytes.
const MIN_MESSAGE_BYTES: usize = 480;
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The local syslog socket, default address of `transport = "unix"`.
pub const DEFAULT_UNIX_ADDRESS: &str = "/dev/log";

/// Validates every sink and the uniqueness of their (possibly defaulted) names.
pub(super) fn sinks(raw: &[RawSink], p: &mut Problems) -> Vec<SinkConfig> {
    let names: Vec<Option<String>> = raw
        .iter()
        .enumerate()
        .map(|(index, sink)| sink.name.clone().or_else(|| default_name(index, sink)))
        .collect();
    let sinks = raw
        .iter()
        .enumerate()
        .filter_map(|(index, sink)| sink_config(index, sink, p))
        .collect();
    let names: Vec<Option<&str>> = names.iter().map(Option::as_deref).collect();
    report_duplicates("sinks", "sink", &names, p);
    sinks
}

fn default_name(index: usize, sink: &RawSink) -> Option<String> {
    let kind = match sink.sink_type? {
        RawSinkType::Syslog => "syslog",
        RawSinkType::Stdout => "stdout",
    };
    Some(format!("{kind}-{index}"))
}

fn sink_config(index: usize, raw: &RawSink, p: &mut Problems) -> Option<SinkConfig> {
    let path = format!("sinks[{index}]");
    let name = match &raw.name {
        Some(text) => name(&format!("{path}.name"), text, p),
        None => default_name(index, raw),
    };
    let payload = match raw.payload {
        Some(RawPayload::Json) => Payload::Json,
        Some(RawPayload::Cef) | None => Payload::Cef,
    };
    let kind = match raw.sink_type {
        Some(RawSinkType::Stdout) => stdout(&path, raw, p),
        Some(RawSinkType::Syslog) => syslog(&path, raw, p),
        None => {
            p.push(format!("{path}.type"), "required: \"syslog\" or \"stdout\"");
            None
        }
    };
    Some(SinkConfig {
        name: name?,
        payload,
        kind: kind?,
    })
}

fn stdout(path: &str, raw: &RawSink, p: &mut Problems) -> Option<SinkKind> {
    let syslog_only = [
        ("transport", raw.transport.is_some()),
        ("address", raw.address.is_some()),
        ("format", raw.format.is_some()),
        ("framing", raw.framing.is_some()),
        ("max_message_bytes", raw.max_message_bytes.is_some()),
        ("tls", raw.tls.is_some()),
    ];
    let before = p.len();
    for (key, _) in syslog_only.iter().filter(|(_, set)| *set) {
        p.push(format!("{path}.{key}"), "only for type = \"syslog\"");
    }
    (p.len() == before).then_some(SinkKind::Stdout)
}

fn syslog(path: &str, raw: &RawSink, p: &mut Problems) -> Option<SinkKind> {
    let Some(transport) = raw.transport else {
        p.push(
            format!("{path}.transport"),
            "required for type = \"syslog\": udp, tcp, tls or unix",
        );
        return None;
    };
    let transport = match transport {
        RawTransport::Udp => Transport::Udp,
        RawTransport::Tcp => Transport::Tcp,
        RawTransport::Tls => Transport::Tls,
        RawTransport::Unix => Transport::Unix,
    };
    let address = address(path, transport, raw.address.as_deref(), p);
    let stream = matches!(transport, Transport::Tcp | Transport::Tls);
    if raw.framing.is_some() && !stream {
        p.push(format!("{path}.framing"), "only for transport tcp or tls");
    }
    let tls = tls_for_transport(path, raw.tls.as_ref(), transport, p);
    let max_message_bytes = message_size(path, raw.max_message_bytes, p);
    Some(SinkKind::Syslog(SyslogSink {
        transport,
        address: address?,
        format: match raw.format {
            Some(RawSyslogFormat::Rfc3164) => SyslogFormat::Rfc3164,
            Some(RawSyslogFormat::Rfc5424) | None => SyslogFormat::Rfc5424,
        },
        framing: match raw.framing {
            Some(RawFraming::Lf) => Framing::Lf,
            Some(RawFraming::OctetCounting) | None => Framing::OctetCounting,
        },
        tls: tls?,
        max_message_bytes,
    }))
}

/// `[sinks.tls]`: only with transport tls; `Some(None)` when absent, `None` on problems.
fn tls_for_transport(
    path: &str,
    raw: Option<&RawTls>,
    transport: Transport,
    p: &mut Problems,
) -> Option<Option<TlsConfig>> {
    match (raw, transport) {
        (Some(tls), Transport::Tls) => tls_config(&format!("{path}.tls"), tls, p).map(Some),
        (Some(_), _) => {
            p.push(format!("{path}.tls"), "only for transport = \"tls\"");
            None
        }
        (None, _) => Some(None),
    }
}

fn message_size(path: &str, value: Option<usize>, p: &mut Problems) -> usize {
    let value = value.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
    if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&value) {
        p.push(
            format!("{path}.max_message_bytes"),
            format!("must be between {MIN_MESSAGE_BYTES} and {MAX_MESSAGE_BYTES}, got {value}"),
        );
    }
    value
}

fn address(
    path: &str,
    transport: Transport,
    text: Option<&str>,
    p: &mut Problems,
) -> Option<String> {
    let key_path = format!("{path}.address");
    let Some(text) = text else {
        if transport == Transport::Unix {
            return Some(DEFAULT_UNIX_ADDRESS.to_owned());
        }
        p.push(
            key_path,
            "required for transport udp, tcp and tls: host:port",
        );
        return None;
    };
    let valid = match transport {
        Transport::Unix => text.starts_with('/'),
        Transport::Udp | Transport::Tcp | Transport::Tls => is_host_port(text),
    };
    if !valid {
        let expected = match transport {
            Transport::Unix => "an absolute socket path like \"/dev/log\"".to_owned(),
            _ => "host:port like \"siem.example.net:6514\"".to_owned(),
        };
        p.push(key_path, format!("must be {expected}, got {text:?}"));
        return None;
    }
    Some(text.to_owned())
}

/// `host:port` with a non-zero port; IPv6 hosts in brackets.
fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|port| port > 0);
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        }
    };
    port_ok && host_ok
}

fn tls_config(path: &str, raw: &RawTls, p: &mut Problems) -> Option<TlsConfig> {
    let client_certificate_file = raw.client_certificate_file.as_ref();
    let client_key_file = raw.client_key_file.as_ref();
    let (client_certificate_file, client_key_file) =
        match (client_certificate_file, client_key_file) {
            (None, None) => (None, None),
            (certificate, key) => (
                Some(paired_file(
                    path,
                    "client_certificate_file",
                    certificate,
                    "client_key_file",
                    p,
                )?),
                Some(paired_file(
                    path,
                    "client_key_file",
                    key,
                    "client_certificate_file",
                    p,
                )?),
            ),
        };
    if raw
        .server_name
        .as_deref()
        .is_some_and(|name| name.trim().is_empty())
    {
        p.push(
            format!("{path}.server_name"),
            "must not be empty (leave it out to use the address host)",
        );
        return None;
    }
    Some(TlsConfig {
        ca_file: raw.ca_file.clone(),
        client_certificate_file,
        client_key_file,
        server_name: raw.server_name.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_accepts_names_ipv4_and_bracketed_ipv6() {
        for good in ["siem.example.net:6514", "127.0.0.1:514", "[::1]:514"] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in ["siem", "siem:0", "siem:99999", ":514", "::1:514", "a b:514"] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
