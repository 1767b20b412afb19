//! `AuthMethod`: one authentication method of a user, from the generic list or a typed one,
//! as the method checks read it: the kinds they judge (FIDO2, Windows Hello, TAP) in full,
//! every other kind by its id and type name only. Tolerant like the other shapes: unknown
//! fields ignored, null and absent alike, `createdDateTime` and `creationDateTime` both read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;

/// One authentication method from `/users/{id}/authentication/methods` or a typed list.
///
/// The typed variants are boxed and `Other` holds boxed text, so that the common case (a
/// password, phone or Authenticator method the checks ignore) costs 40 bytes, not the 160 of
/// the largest variant: a 100,000-user tenant holds a few hundred thousand (issue 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AuthMethod {
    /// `#microsoft.graph.fido2AuthenticationMethod`.
    Fido2(Box<Fido2Method>),
    /// `#microsoft.graph.windowsHelloForBusinessAuthenticationMethod`.
    WindowsHello(Box<WindowsHelloMethod>),
    /// `#microsoft.graph.temporaryAccessPassAuthenticationMethod`.
    TemporaryAccessPass(Box<TapMethod>),
    /// Any other method type (ignored by the checks).
    Other {
        /// The method id.
        id: Box<str>,
        /// The `@odata.type`, if any; Graph's own type names are shared, not copied.
        #[serde(default, deserialize_with = "method_type")]
        odata_type: Option<Cow<'static, str>>,
    },
}

/// The `@odata.type` names of the authenticationMethod resource
/// (learn.microsoft.com/graph/api/resources/authenticationmethod), held once.
const METHOD_TYPES: [&str; 12] = [
    "#microsoft.graph.emailAuthenticationMethod",
    "#microsoft.graph.externalAuthenticationMethod",
    "#microsoft.graph.fido2AuthenticationMethod",
    "#microsoft.graph.hardwareOathAuthenticationMethod",
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "#microsoft.graph.passwordAuthenticationMethod",
    "#microsoft.graph.phoneAuthenticationMethod",
    "#microsoft.graph.platformCredentialAuthenticationMethod",
    "#microsoft.graph.qrCodePinAuthenticationMethod",
    "#microsoft.graph.softwareOathAuthenticationMethod",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
];

/// `name` as a shared type name when Graph documents it, else as its own copy.
fn intern_method_type(name: &str) -> Cow<'static, str> {
    METHOD_TYPES
        .iter()
        .find(|known| **known == name)
        .map_or_else(
            || Cow::Owned(name.to_owned()),
            |known| Cow::Borrowed(*known),
        )
}

fn method_type<'de, D>(deserializer: D) -> Result<Option<Cow<'static, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(Option::<String>::deserialize(deserializer)?.map(|name| intern_method_type(&name)))
}

impl AuthMethod {
    /// Parses one element of a methods list by its `@odata.type`; `typed_hint` is the type of
    /// a typed list endpoint, used when an element has no `@odata.type` (Graph omits it there).
    pub fn from_graph(
        value: serde_json::Value,
        typed_hint: Option<&str>,
    ) -> Result<Self, serde_json::Error> {
        let odata_type = value
            .get("@odata.type")
            .and_then(|v| v.as_str())
            .or(typed_hint)
            .map(intern_method_type);
        match odata_type.as_deref() {
            Some("#microsoft.graph.fido2AuthenticationMethod") => {
                serde_json::from_value(value).map(|m| Self::Fido2(Box::new(m)))
            }
            Some("#microsoft.graph.windowsHelloForBusinessAuthenticationMethod") => {
                serde_json::from_value(value).map(|m| Self::WindowsHello(Box::new(m)))
            }
            Some("#microsoft.graph.temporaryAccessPassAuthenticationMethod") => {
                serde_json::from_value(value).map(|m| Self::TemporaryAccessPass(Box::new(m)))
            }
            _ => {
                let id = value
                    .get("id")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .into();
                Ok(Self::Other { id, odata_type })
            }
        }
    }
}

/// `fido2AuthenticationMethod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fido2Method {
    /// Method id.
    pub id: String,
    /// Key name.
    pub display_name: Option<String>,
    /// `attested`, `notAttested`, `unknownFutureValue`.
    pub attestation_level: Option<String>,
    /// Authenticator AAGUID.
    pub aa_guid: Option<String>,
    /// Authenticator model.
    pub model: Option<String>,
    /// `deviceBound`, `synced`.
    pub passkey_type: Option<String>,
    /// Registration time (`createdDateTime`, or `creationDateTime` in older docs).
    #[serde(alias = "creationDateTime")]
    pub created_date_time: Option<DateTime<Utc>>,
}

/// `windowsHelloForBusinessAuthenticationMethod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WindowsHelloMethod {
    /// Method id.
    pub id: String,
    /// Device name.
    pub display_name: Option<String>,
    /// `normal`, `weak`, `unknown`.
    pub key_strength: Option<String>,
    /// Registration time.
    #[serde(alias = "creationDateTime")]
    pub created_date_time: Option<DateTime<Utc>>,
}

/// `temporaryAccessPassAuthenticationMethod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TapMethod {
    /// Method id.
    pub id: String,
    /// Usable more than once when false.
    pub is_usable_once: Option<bool>,
    /// Lifetime.
    pub lifetime_in_minutes: Option<i64>,
    /// Start of validity.
    pub start_date_time: Option<DateTime<Utc>>,
    /// Currently usable.
    pub is_usable: Option<bool>,
    /// Why (not) usable.
    pub method_usability_reason: Option<String>,
    /// Creation time.
    #[serde(alias = "creationDateTime")]
    pub created_date_time: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn method_reads_creation_date_time_alias_and_typed_hint() {
        let m = AuthMethod::from_graph(
            json!({"id": "k1", "attestationLevel": "notAttested", "creationDateTime": "2020-01-01T00:00:00Z", "extra": 1}),
            Some("#microsoft.graph.fido2AuthenticationMethod"),
        )
        .unwrap();
        match m {
            AuthMethod::Fido2(f) => assert!(f.created_date_time.is_some()),
            other => panic!("{other:?}"),
        }
    }
}
