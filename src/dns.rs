//! TXT, A/AAAA and MX lookups for SPF and DMARC with hickory-resolver: the configured servers
//! (UDP, then TCP) or the system's resolv.conf, one resolver and one cache per scan. NXDOMAIN and
//! "no records" are empty answers; SERVFAIL, REFUSED and timeouts are errors, never "no
//! record". Only fetching lives here; parsing and judgement are in `checks`.

use crate::config::DnsConfig;
use crate::snapshot::Unavailable;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as ResponseError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use std::net::IpAddr;

/// Errors building a resolver.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The system resolver configuration could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
    /// The resolver could not be built from its configuration.
    #[error("cannot build the dns resolver: {0}")]
    Build(String),
}

/// A TXT resolver for one scan.
pub struct TxtResolver {
    resolver: TokioResolver,
}

impl TxtResolver {
    /// A resolver with its own empty cache, asking `config.servers` or the system's.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if config.servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| DnsError::SystemConfig(e.to_string()))?
        } else {
            let servers = config.servers.iter().map(|server| {
                let on_port = |mut connection: ConnectionConfig| {
                    connection.port = server.port();
                    connection
                };
                let connections = vec![
                    on_port(ConnectionConfig::udp()),
                    on_port(ConnectionConfig::tcp()),
                ];
                NameServerConfig::new(server.ip(), true, connections)
            });
            let resolver_config = ResolverConfig::from_name_servers(servers.collect());
            TokioResolver::builder_with_config(resolver_config, provider)
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = config.timeout;
        options.attempts = 2;
        options.cache_size = 1024;
        options.ndots = 0;
        options.try_tcp_on_error = true;
        Ok(Self {
            resolver: builder
                .build()
                .map_err(|e| DnsError::Build(e.to_string()))?,
        })
    }

    /// The TXT records of `name`, each record's strings concatenated.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, Unavailable> {
        let answer = self.resolver.txt_lookup(fqdn(name)).await;
        records(name, answer, |data| match data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part))
                    .collect::<String>(),
            ),
            _ => None,
        })
    }

    /// The A and AAAA addresses of `name` (for SPF `a`, `mx` and `exists` terms).
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, Unavailable> {
        let (ip4, ip6) = tokio::join!(
            self.resolver.ipv4_lookup(fqdn(name)),
            self.resolver.ipv6_lookup(fqdn(name))
        );
        let mut addresses = records(name, ip4, |data| match data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })?;
        addresses.extend(records(name, ip6, |data| match data {
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })?);
        Ok(addresses)
    }

    /// The MX exchanges of `name` by preference, lower-case without the trailing dot.
    pub async fn mx(&self, name: &str) -> Result<Vec<String>, Unavailable> {
        let answer = self.resolver.mx_lookup(fqdn(name)).await;
        let mut exchanges = records(name, answer, |data| match data {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })?;
        exchanges.sort();
        Ok(exchanges
            .into_iter()
            .map(|(_, exchange)| exchange.trim_end_matches('.').to_ascii_lowercase())
            .collect())
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// The records of one answer that `pick` keeps; no records is an empty list.
fn records<T>(
    name: &str,
    answer: Result<Lookup, NetError>,
    pick: impl Fn(&RData) -> Option<T>,
) -> Result<Vec<T>, Unavailable> {
    match answer {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter_map(|record| pick(&record.data))
            .collect()),
        Err(err) => classify(name, &err).map(|()| Vec::new()),
    }
}

/// `Ok` for "no records" (NXDOMAIN or NOERROR without answers), else the failure.
fn classify(name: &str, err: &NetError) -> Result<(), Unavailable> {
    let code = match err {
        NetError::Dns(ResponseError::NoRecordsFound(no_records)) => no_records.response_code,
        NetError::Dns(ResponseError::ResponseCode(code)) => *code,
        _ => ResponseCode::Unknown(0),
    };
    let detail = match (err, code) {
        (_, ResponseCode::NXDomain | ResponseCode::NoError)
            if matches!(err, NetError::Dns(ResponseError::NoRecordsFound(_))) =>
        {
            return Ok(())
        }
        (_, ResponseCode::ServFail) => "servfail".to_owned(),
        (_, ResponseCode::Refused) => "refused".to_owned(),
        (NetError::Dns(ResponseError::ResponseCode(other)), _) => {
            format!("rcode_{}", u16::from(*other))
        }
        (NetError::Timeout, _) => "timeout".to_owned(),
        _ if err.to_string().contains("timed out") => "timeout".to_owned(),
        _ => "error".to_owned(),
    };
    tracing::debug!(name, error = %err, "DNS lookup failed");
    Err(Unavailable::dns_failure(name, detail))
}
