//! An authoritative DNS server on UDP and TCP for the tenant's `dns` map (TXT) and
//! `dns_hosts` map (A, AAAA, MX).
//!
//! TXT strings longer than 255 bytes are split into several character-strings, as real
//! servers publish them. Names in the maps answer their records of the type asked (other
//! types: NOERROR with no answer); ancestors of mapped names (empty non-terminals) answer NOERROR with no answer;
//! anything else is NXDOMAIN. UDP answers larger than the client's limit (512 bytes without
//! EDNS) come back truncated with TC set, so resolvers must retry over TCP. Faults:
//! `dns_servfail`, `dns_timeout` (no answer at all) and `dns_latency_ms`.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;

use crate::faults::{decision_rng, Faults};
use crate::state::{lock, Shared};
use crate::tenant::{HostRecords, TenantFile};

const TTL: u32 = 300;

/// Serves DNS over UDP until shutdown.
pub(crate) async fn serve_udp(
    socket: UdpSocket,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let socket = Arc::new(socket);
    let mut buffer = vec![0u8; 4096];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buffer) => r,
            _ = shutdown.changed() => break,
        };
        let Ok((len, peer)) = received else { continue };
        let query = buffer.get(..len).map(<[u8]>::to_vec).unwrap_or_default();
        let (socket, shared) = (Arc::clone(&socket), Arc::clone(&shared));
        tokio::spawn(async move {
            if let Some(answer) = answer(&shared, &query, true).await {
                let _ = socket.send_to(&answer, peer).await;
            }
        });
    }
}

/// Serves DNS over TCP (two-byte length prefix) until shutdown.
pub(crate) async fn serve_tcp(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move { serve_tcp_connection(stream, shared).await });
    }
}

async fn serve_tcp_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).await.is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(answer) = answer(&shared, &query, false).await else {
            continue;
        };
        let Ok(prefix) = u16::try_from(answer.len()) else {
            return;
        };
        if stream.write_all(&prefix.to_be_bytes()).await.is_err()
            || stream.write_all(&answer).await.is_err()
        {
            return;
        }
    }
}

/// Splits a TXT string into character-strings of at most 255 bytes.
pub(crate) fn character_strings(text: &str) -> Vec<&[u8]> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(255).collect()
}

fn rcode_name(code: ResponseCode) -> String {
    format!("{code:?}")
}

/// Builds the answer to one query message; `None` means stay silent.
async fn answer(shared: &Shared, query: &[u8], udp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries.first().cloned();
    let name = question
        .as_ref()
        .map(|q| {
            q.name()
                .to_ascii()
                .trim_end_matches('.')
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let (faults, records, exists) = {
        let data = shared.read();
        let records = NameRecords::of(&data.file, &name);
        (data.file.faults.clone(), records, exists(&data.file, &name))
    };
    if let Some([low, high]) = faults.dns_latency_ms {
        let mut rng = decision_rng(
            faults.seed,
            &format!("dns {name}"),
            shared.occurrence(&format!("dns {name}")),
        );
        let ms = if high > low {
            rng.gen_range(low..=high)
        } else {
            low
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if Faults::dns_listed(&faults.dns_timeout, &name) {
        *lock(&shared.stats)
            .dns_by_rcode
            .entry("Dropped".into())
            .or_default() += 1;
        return None;
    }
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = false;
    if let Some(q) = question.clone() {
        response.add_query(q);
    }
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        response.set_edns(edns);
    }
    let code = match (&question, &records) {
        (None, _) => ResponseCode::FormErr,
        _ if Faults::dns_listed(&faults.dns_servfail, &name) => ResponseCode::ServFail,
        (Some(q), Some(records)) => {
            for rdata in records.rdata(q.query_type()) {
                response.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
            }
            ResponseCode::NoError
        }
        (Some(_), None) if exists => ResponseCode::NoError,
        (Some(_), None) => ResponseCode::NXDomain,
    };
    response.metadata.response_code = code;
    *lock(&shared.stats)
        .dns_by_rcode
        .entry(rcode_name(code))
        .or_default() += 1;
    let mut bytes = response.to_vec().ok()?;
    let limit = if udp {
        request
            .edns
            .as_ref()
            .map_or(512, |e| usize::from(e.max_payload().max(512)))
    } else {
        usize::MAX
    };
    if bytes.len() > limit {
        bytes = response.truncate().to_vec().ok()?;
    }
    Some(bytes)
}

/// What the tenant file holds for one name: TXT strings and A/AAAA/MX records.
struct NameRecords {
    txt: Vec<String>,
    hosts: HostRecords,
}

impl NameRecords {
    /// The records of `name` (case-insensitive, trailing dot ignored), if it has any entry.
    fn of(file: &TenantFile, name: &str) -> Option<Self> {
        let same = |k: &&String| k.trim_end_matches('.').eq_ignore_ascii_case(name);
        let txt = file
            .dns
            .iter()
            .find(|(k, _)| same(k))
            .map(|(_, v)| v.clone());
        let hosts = file
            .dns_hosts
            .iter()
            .find(|(k, _)| same(k))
            .map(|(_, v)| v.clone());
        (txt.is_some() || hosts.is_some()).then(|| Self {
            txt: txt.unwrap_or_default(),
            hosts: hosts.unwrap_or_default(),
        })
    }

    /// The answer records for a query type (ANY gets every type).
    fn rdata(&self, query: RecordType) -> Vec<RData> {
        let wants = |t: RecordType| query == t || query == RecordType::ANY;
        let mut out = Vec::new();
        if wants(RecordType::TXT) {
            out.extend(
                self.txt
                    .iter()
                    .map(|text| RData::TXT(TXT::from_bytes(character_strings(text)))),
            );
        }
        if wants(RecordType::A) {
            out.extend(self.hosts.a.iter().map(|ip| RData::A(A(*ip))));
        }
        if wants(RecordType::AAAA) {
            out.extend(self.hosts.aaaa.iter().map(|ip| RData::AAAA(AAAA(*ip))));
        }
        if wants(RecordType::MX) {
            out.extend(self.hosts.mx.iter().filter_map(|(preference, exchange)| {
                let name = Name::from_ascii(format!("{}.", exchange.trim_end_matches('.'))).ok()?;
                Some(RData::MX(MX::new(*preference, name)))
            }));
        }
        out
    }
}

/// True when `name` or a name below it is in the tenant file (NOERROR rather than NXDOMAIN).
fn exists(file: &TenantFile, name: &str) -> bool {
    let suffix = format!(".{name}");
    file.dns
        .keys()
        .chain(file.dns_hosts.keys())
        .map(|k| k.trim_end_matches('.').to_ascii_lowercase())
        .any(|k| k == name || k.ends_with(&suffix))
}

/// A TXT query message, for tests and for callers without a resolver.
pub fn txt_query(id: u16, name: &str) -> Option<Vec<u8>> {
    query(id, name, RecordType::TXT)
}

/// A query message for `name` and `record_type`, for tests and for callers without a resolver.
pub fn query(id: u16, name: &str, record_type: RecordType) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(hickory_proto::op::Query::query(
        Name::from_ascii(name).ok()?,
        record_type,
    ));
    message.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_split_at_255_bytes() {
        let long = "a".repeat(600);
        let parts = character_strings(&long);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            vec![255, 255, 90]
        );
        assert_eq!(character_strings("v=spf1 -all").len(), 1);
    }
}
