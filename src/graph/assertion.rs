//! Client assertions for the certificate credential (`private_key_jwt`): a PS256-signed JWT with
//! the `x5t#S256` thumbprint of the registered certificate, `aud` = the token URL,
//! `iss` = `sub` = client id, a fresh `jti` and a five-minute lifetime.
//!
//! The private key stays inside [`CertificateCredential`]; `Debug` never prints it and the
//! assertion is only ever put in the token request body.

use super::errors::AuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

/// Lifetime of one assertion.
const ASSERTION_LIFETIME_SECS: i64 = 300;

/// A certificate and its RSA private key, loaded from PEM files.
#[derive(Clone)]
pub struct CertificateCredential {
    key: EncodingKey,
    thumbprint_s256: String,
    not_after: Option<DateTime<Utc>>,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint_s256)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl CertificateCredential {
    /// Reads the PEM certificate (first certificate in the file) and PEM RSA key
    /// (PKCS#8 or PKCS#1).
    pub fn from_files(certificate: &Path, private_key: &Path) -> Result<Self, AuthError> {
        let cert_pem = std::fs::read(certificate).map_err(|e| {
            AuthError::Credential(format!("reading {}: {e}", certificate.display()))
        })?;
        let key_pem = std::fs::read(private_key).map_err(|e| {
            AuthError::Credential(format!("reading {}: {e}", private_key.display()))
        })?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    /// Builds the credential from PEM bytes.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, AuthError> {
        let der = CertificateDer::pem_slice_iter(cert_pem)
            .next()
            .ok_or_else(|| AuthError::Credential("no certificate in the PEM file".to_owned()))?
            .map_err(|e| AuthError::Credential(format!("certificate PEM unreadable: {e}")))?;
        let key = EncodingKey::from_rsa_pem(key_pem).map_err(|_| {
            AuthError::Credential("private key is not a PEM RSA key (PKCS#8 or PKCS#1)".to_owned())
        })?;
        Ok(Self {
            key,
            thumbprint_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref())),
            not_after: certificate_not_after(der.as_ref()),
        })
    }

    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// When the certificate expires, if it could be read.
    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        self.not_after
    }

    /// A signed assertion for `token_url`, valid from `now` for five minutes.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: DateTime<Utc>,
    ) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::PS256);
        header.typ = Some("JWT".to_owned());
        header.x5t_s256 = Some(self.thumbprint_s256.clone());
        let issued = now.timestamp();
        let claims = Claims {
            aud: token_url,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: issued,
            iat: issued,
            exp: issued + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::Credential(format!("signing the client assertion: {e}")))
    }
}

fn certificate_not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../tests/fixtures/auth/cert.pem");
    const KEY: &str = include_str!("../../tests/fixtures/auth/key.pem");

    fn decode_part(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn assertion_has_ps256_header_and_claims() {
        let cred = CertificateCredential::from_pem(CERT.as_bytes(), KEY.as_bytes()).unwrap();
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let jwt = cred
            .assertion("client-1", "https://login.example/t/oauth2/v2.0/token", now)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode_part(parts[0]);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t#S256"], cred.thumbprint_s256());
        let claims = decode_part(parts[1]);
        assert_eq!(claims["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["nbf"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_000_300);
        let second = cred.assertion("client-1", "u", now).unwrap();
        assert_ne!(
            decode_part(second.split('.').nth(1).unwrap())["jti"],
            claims["jti"]
        );
        assert!(cred.not_after().is_some());
        assert!(!format!("{cred:?}").contains("PRIVATE"));
    }

    #[test]
    fn bad_key_is_a_clear_error() {
        let err = CertificateCredential::from_pem(CERT.as_bytes(), b"nope").unwrap_err();
        assert!(err.to_string().contains("not a PEM RSA key"), "{err}");
        let err = CertificateCredential::from_pem(b"", KEY.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
