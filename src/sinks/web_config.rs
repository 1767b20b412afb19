//! The `--web.config.file` of the `/metrics` listener, in the Prometheus exporter-toolkit format
//! (<https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md>), so
//! the same file and the same Prometheus scrape settings work as for node_exporter:
//! `tls_server_config` (`cert_file`, `key_file`, `client_auth_type`, `client_ca_file`,
//! `min_version`, `max_version`) and `basic_auth_users` (user name to bcrypt hash).
//!
//! Unknown keys are refused, as exporter-toolkit does (it parses strictly). Keys of the format
//! that this agent does not implement (`cipher_suites`, `curve_preferences`, inline `cert`/`key`,
//! `client_allowed_sans`, `http_server_config`, `rate_limit`) are refused too, with their name:
//! a security setting the operator wrote must never be ignored silently.

use super::tls::{read_certs, read_key, TlsSetupError};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a web config is unusable.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("cannot read web config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML does not match the format (unknown key, wrong type, bad value).
    #[error("web config {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key of the exporter-toolkit format this agent does not implement.
    #[error("web config {path}: {key} is not supported by m365-posture")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
    },
    /// A value is out of what the format allows, or settings contradict each other.
    #[error("web config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A certificate, key or CA file could not be used.
    #[error("web config {path}: {source}")]
    Tls {
        /// The web config file.
        path: PathBuf,
        /// Why.
        source: TlsSetupError,
    },
}

/// The file as written (exporter-toolkit key names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTlsServerConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    http_server_config: Option<serde_norway::Value>,
    rate_limit: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTlsServerConfig {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_ca: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

/// A validated web config: an optional TLS server setup and the basic-auth users.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// The rustls server config, when `tls_server_config` is set.
    pub tls: Option<Arc<ServerConfig>>,
    /// User name to bcrypt hash; empty means no authentication.
    pub basic_auth_users: BTreeMap<String, String>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("basic_auth_users", &self.basic_auth_users.keys())
            .finish()
    }
}

impl WebConfig {
    /// Reads and validates the file; every certificate and key is loaded, so a config that
    /// loads here serves.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Validates the YAML `text`; relative file names are relative to `path`'s directory
    /// (exporter-toolkit does the same).
    pub fn parse(text: &str, path: &Path) -> Result<Self, WebConfigError> {
        let raw: RawWebConfig = if text.trim().is_empty() {
            RawWebConfig::default()
        } else {
            serde_norway::from_str(text).map_err(|err| WebConfigError::Syntax {
                path: path.to_owned(),
                message: err.to_string(),
            })?
        };
        let unsupported = |key| WebConfigError::Unsupported {
            path: path.to_owned(),
            key,
        };
        if raw.http_server_config.is_some() {
            return Err(unsupported("http_server_config"));
        }
        if raw.rate_limit.is_some() {
            return Err(unsupported("rate_limit"));
        }
        check_users(&raw.basic_auth_users, path)?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let tls = match raw.tls_server_config {
            Some(tls) => Some(Arc::new(server_config(tls, base, path)?)),
            None => None,
        };
        Ok(Self {
            tls,
            basic_auth_users: raw.basic_auth_users,
        })
    }
}

fn check_users(users: &BTreeMap<String, String>, path: &Path) -> Result<(), WebConfigError> {
    for (user, hash) in users {
        if user.contains(':') || user.chars().any(char::is_control) {
            return Err(WebConfigError::Invalid {
                path: path.to_owned(),
                message: "basic_auth_users: a user name cannot hold ':' or control characters"
                    .to_owned(),
            });
        }
        // Parsing the hash (no hashing: the file is re-read for every connection) tells a
        // plain-text password from a bcrypt hash.
        if hash.parse::<bcrypt::HashParts>().is_err() {
            return Err(WebConfigError::Invalid {
                path: path.to_owned(),
                message: format!("basic_auth_users.{user}: not a bcrypt hash ($2y$10$...)"),
            });
        }
    }
    Ok(())
}

/// How the server treats client certificates (Go's `tls.ClientAuthType` names).
#[derive(Debug, Clone, Copy, PartialEq)]
enum ClientAuth {
    None,
    VerifyIfGiven,
    RequireAndVerify,
}

fn client_auth(name: Option<&str>, path: &Path) -> Result<ClientAuth, WebConfigError> {
    match name.unwrap_or("NoClientCert") {
        "NoClientCert" => Ok(ClientAuth::None),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::RequireAndVerify),
        // Go's RequestClientCert and RequireAnyClientCert accept unverified certificates.
        other => Err(WebConfigError::Invalid {
            path: path.to_owned(),
            message: format!(
                "tls_server_config.client_auth_type {other:?}: use NoClientCert, \
                 VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ),
        }),
    }
}

fn versions(
    min: Option<&str>,
    max: Option<&str>,
    path: &Path,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, WebConfigError> {
    let rank = |name: Option<&str>, default: u8| match name {
        None => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(WebConfigError::Invalid {
            path: path.to_owned(),
            message: format!("tls version {other:?}: m365-posture serves TLS12 or TLS13"),
        }),
    };
    let (min, max) = (rank(min, 12)?, rank(max, 13)?);
    let chosen: Vec<_> = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, version)| version)
        .collect();
    if chosen.is_empty() {
        return Err(WebConfigError::Invalid {
            path: path.to_owned(),
            message: "tls_server_config: min_version is above max_version".to_owned(),
        });
    }
    Ok(chosen)
}

fn refuse_unsupported(tls: &RawTlsServerConfig, path: &Path) -> Result<(), WebConfigError> {
    let present = [
        ("tls_server_config.cert", tls.cert.is_some()),
        ("tls_server_config.key", tls.key.is_some()),
        ("tls_server_config.client_ca", tls.client_ca.is_some()),
        (
            "tls_server_config.client_allowed_sans",
            tls.client_allowed_sans.is_some(),
        ),
        (
            "tls_server_config.cipher_suites",
            tls.cipher_suites.is_some(),
        ),
        (
            "tls_server_config.prefer_server_cipher_suites",
            tls.prefer_server_cipher_suites.is_some(),
        ),
        (
            "tls_server_config.curve_preferences",
            tls.curve_preferences.is_some(),
        ),
    ];
    match present.into_iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(WebConfigError::Unsupported {
            path: path.to_owned(),
            key,
        }),
        None => Ok(()),
    }
}

fn server_config(
    tls: RawTlsServerConfig,
    base: &Path,
    path: &Path,
) -> Result<ServerConfig, WebConfigError> {
    refuse_unsupported(&tls, path)?;
    let invalid = |message: &str| WebConfigError::Invalid {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let tls_error = |source| WebConfigError::Tls {
        path: path.to_owned(),
        source,
    };
    let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) else {
        return Err(invalid(
            "tls_server_config needs both cert_file and key_file",
        ));
    };
    let auth = client_auth(tls.client_auth_type.as_deref(), path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = versions(tls.min_version.as_deref(), tls.max_version.as_deref(), path)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|err| tls_error(err.into()))?;
    let builder = match (auth, &tls.client_ca_file) {
        (ClientAuth::None, None) => builder.with_no_client_auth(),
        (ClientAuth::None, Some(_)) => {
            return Err(invalid(
                "tls_server_config.client_ca_file needs a client_auth_type that verifies",
            ))
        }
        (_, None) => {
            return Err(invalid(
                "tls_server_config.client_auth_type needs client_ca_file",
            ))
        }
        (auth, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(&base.join(ca)).map_err(tls_error)? {
                roots.add(cert).map_err(|err| tls_error(err.into()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::VerifyIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|err| {
                tls_error(TlsSetupError::Rustls(rustls::Error::General(
                    err.to_string(),
                )))
            })?)
        }
    };
    let certs = read_certs(&base.join(cert)).map_err(tls_error)?;
    let key = read_key(&base.join(key)).map_err(tls_error)?;
    builder
        .with_single_cert(certs, key)
        .map_err(|err| tls_error(err.into()))
}

#[cfg(test)]
#[path = "web_config_tests.rs"]
mod tests;
