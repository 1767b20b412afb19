//! Client assertion (`private_key_jwt`) verification: RS256 with `x5t` (SHA-1 thumbprint) or
//! PS256 with `x5t#S256` (SHA-256 thumbprint), signature checked against the registered
//! certificate, `aud` equal to the token URL, `iss == sub == client_id`, `exp`/`nbf` with
//! five minutes of skew, and a `jti` that was never seen before.
//!
//! AADSTS codes: 700027 (signature or key), 700021 (iss/sub), 50012 (audience, replay),
//! 700024 (time range), 50027 (malformed), 5002738 (algorithm). Where Microsoft's evidence
//! is thin the code is the simulator's choice; the `error` field is always `invalid_client`
//! or `invalid_request` as Entra sends it.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::token::AuthError;
use crate::tenant::ClientRegistration;

const SKEW_SECS: i64 = 300;

fn invalid_client(code: u32, message: impl Into<String>) -> AuthError {
    AuthError::new(401, "invalid_client", code, message)
}

/// A registered certificate: its DER and public key.
struct Certificate {
    sha1: String,
    sha256: String,
    key: DecodingKey,
}

fn load_certificate(pem: &str) -> Option<Certificate> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let key = DecodingKey::from_rsa_der(&cert.public_key().subject_public_key.data);
    Some(Certificate {
        sha1: URL_SAFE_NO_PAD.encode(Sha1::digest(&pem.contents)),
        sha256: URL_SAFE_NO_PAD.encode(Sha256::digest(&pem.contents)),
        key,
    })
}

/// Verifies one client assertion for `client`; `jtis` remembers every accepted `jti`.
pub(crate) fn verify(
    assertion: &str,
    client: &ClientRegistration,
    audiences: &[String],
    jtis: &mut HashSet<String>,
) -> Result<(), AuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| {
        AuthError::new(
            400,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed.",
        )
    })?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(AuthError::new(400, "invalid_request", 5002738, format!("Invalid JWT token. '{:?}' is not a supported signature algorithm. Supported signing algorithms are: 'RS256,PS256'.", header.alg)));
    }
    let certificate = client
        .certificate_pem
        .as_deref()
        .and_then(load_certificate)
        .ok_or_else(|| {
            invalid_client(
                700027,
                "Client assertion failed signature validation. [Reason - The key was not found.]",
            )
        })?;
    let presented = header.x5t_s256.as_deref().or(header.x5t.as_deref());
    let matches_key = header.x5t_s256.as_deref() == Some(certificate.sha256.as_str())
        || header.x5t.as_deref() == Some(certificate.sha1.as_str());
    if !matches_key {
        return Err(invalid_client(700027, format!("Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{}']", presented.unwrap_or("none"))));
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let claims = jsonwebtoken::decode::<Value>(assertion, &certificate.key, &validation)
        .map_err(|_| invalid_client(700027, "Client assertion failed signature validation."))?
        .claims;
    check_claims(&claims, client, audiences, jtis)
}

fn check_claims(
    claims: &Value,
    client: &ClientRegistration,
    audiences: &[String],
    jtis: &mut HashSet<String>,
) -> Result<(), AuthError> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.iter().any(|x| x.eq_ignore_ascii_case(a)),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|x| x.eq_ignore_ascii_case(a))),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid_client(
            50012,
            format!(
                "Client assertion contains an invalid audience '{}'. Expected '{}'.",
                claims.get("aud").cloned().unwrap_or(Value::Null),
                audiences.first().map(String::as_str).unwrap_or_default()
            ),
        ));
    }
    let id = client.client_id.as_str();
    if !text("iss").is_some_and(|i| i.eq_ignore_ascii_case(id))
        || !text("sub").is_some_and(|s| s.eq_ignore_ascii_case(id))
    {
        return Err(invalid_client(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials ."));
    }
    let now = crate::clock::now_utc().timestamp();
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    let out_of_range = exp.is_none_or_past(now) || nbf.is_some_and(|n| n > now + SKEW_SECS);
    if out_of_range {
        return Err(invalid_client(700024, format!("Client assertion is not within its valid time range. Current time: {now}, assertion valid from {}, expiry time of assertion {}.", nbf.unwrap_or_default(), exp.unwrap_or_default())));
    }
    let jti = text("jti").ok_or_else(|| {
        AuthError::new(
            400,
            "invalid_request",
            50027,
            "JWT token is invalid or malformed: the 'jti' claim is missing.",
        )
    })?;
    if !jtis.insert(jti.to_string()) {
        return Err(invalid_client(
            50012,
            format!("Client assertion with jti '{jti}' has already been used."),
        ));
    }
    Ok(())
}

trait Expiry {
    fn is_none_or_past(&self, now: i64) -> bool;
}

impl Expiry for Option<i64> {
    fn is_none_or_past(&self, now: i64) -> bool {
        self.map_or(true, |exp| exp + SKEW_SECS < now)
    }
}
