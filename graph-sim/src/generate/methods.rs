//! Authentication methods of generated members.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::people::pick;
use super::shares as s;
use super::{guid, Context};

/// The methods of one member: password always, others by their shares.
pub(super) fn methods(context: &Context, rng: &mut ChaCha8Rng) -> Vec<Value> {
    let mut list = vec![
        json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490", "createdDateTime": context.days_ago(rng.gen_range(1.0..900.0)), "password": null}),
    ];
    if rng.gen_bool(s::AUTHENTICATOR) {
        list.push(json!({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod", "id": guid(rng), "displayName": pick(rng, &["iPhone 15", "Pixel 8", "Galaxy S23"]), "createdDateTime": context.days_ago(rng.gen_range(1.0..900.0)), "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.2401.0119"}));
    }
    if rng.gen_bool(s::PHONE) {
        list.push(json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod", "id": "3179e48a-750b-4051-897c-87b9720928f7", "createdDateTime": null, "phoneNumber": format!("+1 425555{:04}", rng.gen_range(0..10_000)), "phoneType": "mobile", "smsSignInState": "notAllowedByPolicy"}));
    }
    if rng.gen_bool(s::FIDO2) {
        let attested = !rng.gen_bool(s::FIDO2_UNATTESTED);
        let passkey = pick(
            rng,
            &[
                "deviceBound",
                "deviceBound",
                "deviceBound",
                "deviceBound",
                "deviceBound",
                "deviceBound",
                "deviceBound",
                "synced",
                "synced",
                "",
            ],
        );
        list.push(json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod", "id": guid(rng), "displayName": pick(rng, &["YubiKey 5", "Security key", "iCloud Keychain"]), "createdDateTime": context.days_ago(rng.gen_range(1.0..600.0)), "aaGuid": guid(rng), "model": pick(rng, &["YubiKey 5 NFC", "Feitian ePass", "Titan"]), "attestationCertificates": if attested { json!(["dbe793efdf1945e2df25d93653a1e8a3268a9075"]) } else { json!([]) }, "attestationLevel": if attested { "attested" } else { "notAttested" }, "passkeyType": if passkey.is_empty() { Value::Null } else { json!(passkey) }, "publicKeyCredential": null}));
    }
    if rng.gen_bool(s::WHFB) {
        let strength = if rng.gen_bool(s::WHFB_WEAK) {
            "weak"
        } else {
            "normal"
        };
        list.push(json!({"@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod", "id": guid(rng), "displayName": pick(rng, &["Surface Laptop", "Dell Latitude", "ThinkPad X1"]), "createdDateTime": context.days_ago(rng.gen_range(1.0..900.0)), "keyStrength": strength}));
    }
    if rng.gen_bool(s::TAP) {
        let reusable = rng.gen_bool(s::TAP_REUSABLE);
        let minutes = if rng.gen_bool(s::TAP_LONG) {
            rng.gen_range(481..=43_200)
        } else {
            rng.gen_range(10..=480)
        };
        list.push(json!({"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod", "id": guid(rng), "temporaryAccessPass": null, "createdDateTime": context.days_ago(0.1), "startDateTime": context.days_ago(0.1), "lifetimeInMinutes": minutes, "isUsableOnce": !reusable, "isUsable": true, "methodUsabilityReason": "EnabledByPolicy"}));
    }
    list
}
