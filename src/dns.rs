//! TXT lookups for SPF and DMARC with hickory-resolver: the configured servers (UDP, then TCP)
//! or the system's resolv.conf, one resolver and one cache per scan. NXDOMAIN and "no TXT
//! records" are empty answers; SERVFAIL, REFUSED and timeouts are errors, never "no record".
//! Only fetching lives here; parsing and judgement are in `checks`.

use crate::config::DnsConfig;
use crate::snapshot::Unavailable;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

/// Errors building a resolver.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The system resolver configuration could not be read.
    #[error("cannot read the system resolver configuration: {0}")]
    SystemConfig(String),
}

/// A TXT resolver for one scan.
pub struct TxtResolver {
    resolver: TokioResolver,
}

impl TxtResolver {
    /// A resolver with its own empty cache, asking `config.servers` or the system's.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = if config.servers.is_empty() {
            TokioResolver::builder(provider).map_err(|e| DnsError::SystemConfig(e.to_string()))?
        } else {
            let mut resolver_config = ResolverConfig::new();
            for server in &config.servers {
                resolver_config.add_name_server(NameServerConfig::new(*server, Protocol::Udp));
                resolver_config.add_name_server(NameServerConfig::new(*server, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(resolver_config, provider)
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.timeout = config.timeout;
        options.attempts = 2;
        options.cache_size = 1024;
        options.ndots = 0;
        options.try_tcp_on_error = true;
        Ok(Self {
            resolver: builder.build(),
        })
    }

    /// The TXT records of `name`, each record's strings concatenated.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, Unavailable> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>()
                })
                .collect()),
            Err(err) => classify(name, &err),
        }
    }
}

fn classify(name: &str, err: &ResolveError) -> Result<Vec<String>, Unavailable> {
    let detail = match err.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NXDomain | ResponseCode::NoError => return Ok(Vec::new()),
            ResponseCode::ServFail => "servfail".to_owned(),
            ResponseCode::Refused => "refused".to_owned(),
            other => format!("rcode_{}", u16::from(other)),
        },
        Some(ProtoErrorKind::Timeout) => "timeout".to_owned(),
        _ if err.to_string().contains("timed out") => "timeout".to_owned(),
        _ => "error".to_owned(),
    };
    tracing::debug!(name, error = %err, "TXT lookup failed");
    Err(Unavailable::DnsFailure {
        name: name.to_owned(),
        detail,
    })
}
