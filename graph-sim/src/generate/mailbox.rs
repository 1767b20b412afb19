//! Calendar permissions and inbox rules of generated mailboxes.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::people::{external_address, pick, recipient};
use super::shares as s;

/// Calendar permissions when the mailbox shares its calendar, else `None` (Graph then shows
/// only the "My Organization" entry).
pub(super) fn calendar(rng: &mut ChaCha8Rng, colleagues: &[String]) -> Option<Vec<Value>> {
    let external = rng.gen_bool(s::CALENDAR_EXTERNAL);
    let internal = rng.gen_bool(s::CALENDAR_INTERNAL) && !colleagues.is_empty();
    if !external && !internal {
        return None;
    }
    let mut list = vec![crate::http::graph_mailbox::default_calendar_permission()];
    if internal {
        let who = colleagues.choose(rng).cloned().unwrap_or_default();
        list.push(share(
            &who,
            true,
            pick(rng, &["read", "write", "limitedRead"]),
        ));
    }
    if external {
        let who = external_address(rng);
        list.push(share(
            &who,
            false,
            pick(rng, &["freeBusyRead", "limitedRead", "read", "read"]),
        ));
    }
    Some(list)
}

fn share(address: &str, inside: bool, role: &str) -> Value {
    use base64::Engine;
    let id = base64::engine::general_purpose::STANDARD
        .encode(format!("ExchangePublishedUser.{address}"));
    json!({"id": id, "isRemovable": true, "isInsideOrganization": inside, "role": role,
           "allowedRoles": ["none", "freeBusyRead", "limitedRead", "read", "write"],
           "emailAddress": {"name": address, "address": address}})
}

fn rule(rng: &mut ChaCha8Rng, sequence: usize, name: &str, enabled: bool, actions: Value) -> Value {
    use base64::Engine;
    let raw: [u8; 8] = rng.gen();
    json!({"id": base64::engine::general_purpose::STANDARD.encode(raw), "displayName": name, "sequence": sequence,
           "isEnabled": enabled, "hasError": false, "isReadOnly": false,
           "conditions": {"senderContains": [pick(rng, &["newsletter", "noreply", "billing", "boss"])]}, "exceptions": null, "actions": actions})
}

/// Inbox rules of one mailbox (often none).
pub(super) fn rules(rng: &mut ChaCha8Rng, colleagues: &[String]) -> Vec<Value> {
    let mut list = Vec::new();
    if rng.gen_bool(s::BENIGN_RULES) {
        for _ in 0..rng.gen_range(1..=3) {
            let n = list.len() + 1;
            let actions = if rng.gen_bool(0.7) {
                json!({"moveToFolder": "AAMkAGI2TAAA=", "stopProcessingRules": true})
            } else {
                json!({"delete": true})
            };
            list.push(rule(rng, n, "Sort mail", true, actions));
        }
    }
    let external: [(f64, &str, &str, bool); 4] = [
        (
            s::FORWARD_EXTERNAL,
            "forwardTo",
            "Forward to personal",
            true,
        ),
        (
            s::FORWARD_ATTACHMENT,
            "forwardAsAttachmentTo",
            "Forward as attachment",
            true,
        ),
        (s::REDIRECT_EXTERNAL, "redirectTo", "Redirect", true),
        (s::FORWARD_DISABLED, "forwardTo", "Old forward", false),
    ];
    for (share, action, name, enabled) in external {
        if rng.gen_bool(share) {
            let n = list.len() + 1;
            let address = external_address(rng);
            list.push(rule(
                rng,
                n,
                name,
                enabled,
                json!({ action: [recipient(&address)] }),
            ));
        }
    }
    if rng.gen_bool(s::FORWARD_INTERNAL) && !colleagues.is_empty() {
        let n = list.len() + 1;
        let who = colleagues.choose(rng).cloned().unwrap_or_default();
        list.push(rule(
            rng,
            n,
            "Forward to assistant",
            true,
            json!({"forwardTo": [recipient(&who)]}),
        ));
    }
    list
}
