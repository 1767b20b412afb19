//! rustls client setup for the `tls` syslog transport: trusted roots from a PEM CA file (or
//! the bundled web PKI roots), an optional client certificate and key for mutual TLS, and the
//! server name to verify (configured, or the host part of the address).

use crate::config::TlsConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsConnector;

/// Why the TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file is malformed.
    #[error("cannot parse {path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser found.
        source: pem::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path} holds no {what}")]
    Empty {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        what: &'static str,
    },
    /// rustls refused a certificate, key or protocol setting.
    #[error("tls configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// Only one of client certificate and client key is set.
    #[error("client_certificate_file and client_key_file must be set together")]
    HalfClientIdentity,
    /// The server name is not a valid DNS name or IP address.
    #[error("invalid tls server name {0:?}")]
    ServerName(String),
}

/// A ready TLS connector and the name the server certificate must match.
#[derive(Clone)]
pub struct TlsClient {
    /// The connector (shared rustls config).
    pub connector: TlsConnector,
    /// The name to verify and send as SNI.
    pub server_name: ServerName<'static>,
}

impl TlsClient {
    /// Builds the client for `address` (`host:port`) from the sink's TLS settings.
    pub fn new(tls: &TlsConfig, address: &str) -> Result<Self, TlsSetupError> {
        let roots = match &tls.ca_file {
            Some(path) => roots_from_file(path)?,
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match (&tls.client_certificate_file, &tls.client_key_file) {
            (Some(cert), Some(key)) => {
                builder.with_client_auth_cert(read_certs(cert)?, read_key(key)?)?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => return Err(TlsSetupError::HalfClientIdentity),
        };
        let name = tls
            .server_name
            .clone()
            .unwrap_or_else(|| host_part(address).to_owned());
        let server_name =
            ServerName::try_from(name.clone()).map_err(|_| TlsSetupError::ServerName(name))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// The host of `host:port` or `[v6]:port`, without brackets.
pub fn host_part(address: &str) -> &str {
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _port)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Maps a PEM error of `path`: I/O errors (unreadable file) apart from malformed content, and
/// "no items" as [`TlsSetupError::Empty`].
fn pem_error(path: &Path, what: &'static str, err: pem::Error) -> TlsSetupError {
    let path = path.to_owned();
    match err {
        pem::Error::Io(source) => TlsSetupError::Read { path, source },
        pem::Error::NoItemsFound => TlsSetupError::Empty { path, what },
        source => TlsSetupError::Pem { path, source },
    }
}

/// Every certificate in a PEM file (at least one), with rustls-pki-types' PEM parser.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| pem_error(path, "certificate", err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(path, "certificate", err))?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| pem_error(path, "private key", err))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_part_strips_port_and_brackets() {
        assert_eq!(host_part("siem.example.net:6514"), "siem.example.net");
        assert_eq!(host_part("[::1]:6514"), "::1");
        assert_eq!(host_part("localhost"), "localhost");
    }

    #[test]
    fn pem_problems_are_told_apart() {
        let dir = std::env::temp_dir().join(format!("m365-posture-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let truncated = dir.join("truncated.pem");
        std::fs::write(&truncated, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let no_cert = dir.join("key-only.pem");
        std::fs::write(&no_cert, "just text\n").unwrap();
        assert!(matches!(
            read_certs(&truncated),
            Err(TlsSetupError::Pem { .. })
        ));
        assert!(matches!(
            read_certs(&no_cert),
            Err(TlsSetupError::Empty { .. })
        ));
        assert!(matches!(
            read_key(&no_cert),
            Err(TlsSetupError::Empty { .. })
        ));
        assert!(matches!(
            read_certs(&dir.join("missing.pem")),
            Err(TlsSetupError::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn half_a_client_identity_is_an_error() {
        let tls = TlsConfig {
            ca_file: None,
            client_certificate_file: Some("cert.pem".into()),
            client_key_file: None,
            server_name: None,
        };
        assert!(matches!(
            TlsClient::new(&tls, "localhost:6514"),
            Err(TlsSetupError::HalfClientIdentity)
        ));
    }
}
