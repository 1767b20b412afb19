//! The demo's changing tenant: a fixed cycle of edits to a graph-sim tenant, one per scan, so
//! findings appear and resolve while someone watches (`m365-posture demo`).
//!
//! Every edit is self-contained: it adds or changes objects the scenario owns (a user picked by
//! position, a demo domain), so it works on any generated tenant.

use graph_sim::TenantFile;
use serde_json::{json, Value};

/// The demo domain whose DMARC record gets fixed and broken again, and whose SPF record turns
/// to `+all` (a high-severity finding, so the demo pages) and back.
pub const DEMO_DOMAIN: &str = "demo-shop.example";
/// The external address the demo's inbox rule forwards to.
pub const EXTERNAL_RECIPIENT: &str = "collector@exfil.example";
/// The demo domain's SPF record while it is correct.
const GOOD_SPF: &str = "v=spf1 include:spf.protection.outlook.com -all";
const RULE_ID: &str = "AQAAAdemo-forward-rule=";
const PERMISSION_ID: &str = "RGVtb0V4dGVybmFsU2hhcmU=";

/// Number of steps in one cycle of the scenario.
pub const STEPS: u64 = 6;

/// Applies step `step` (taken modulo [`STEPS`]) and says in words what changed.
pub fn apply_step(tenant: &mut TenantFile, step: u64) -> &'static str {
    match step % STEPS {
        0 => {
            set_demo_domain(
                tenant,
                "v=DMARC1; p=none; rua=mailto:dmarc@demo-shop.example",
            );
            "demo-shop.example added with DMARC p=none"
        }
        1 => {
            set_forwarding_rule(tenant, true);
            set_demo_spf(tenant, "v=spf1 +all");
            "an inbox rule forwarding to collector@exfil.example appeared; \
             SPF of demo-shop.example turned to +all (high)"
        }
        2 => {
            set_user_enabled(tenant, false);
            "a user account was disabled"
        }
        3 => {
            set_demo_domain(
                tenant,
                "v=DMARC1; p=reject; rua=mailto:dmarc@demo-shop.example",
            );
            set_calendar_share(tenant, true);
            "DMARC for demo-shop.example fixed (p=reject); a calendar was shared externally"
        }
        4 => {
            set_forwarding_rule(tenant, false);
            set_user_enabled(tenant, true);
            set_demo_spf(tenant, GOOD_SPF);
            "the forwarding rule was removed, the user re-enabled and SPF fixed (-all)"
        }
        _ => {
            set_calendar_share(tenant, false);
            "the external calendar share was removed"
        }
    }
}

/// The user the scenario edits: the first member with a mailbox, if any.
fn demo_user_id(tenant: &TenantFile) -> Option<String> {
    tenant
        .users
        .iter()
        .filter(|u| u.get("userType").and_then(Value::as_str) == Some("Member"))
        .filter_map(|u| u.get("id").and_then(Value::as_str))
        .find(|id| tenant.mailboxes.iter().any(|m| m == id))
        .map(str::to_owned)
}

fn set_demo_domain(tenant: &mut TenantFile, dmarc: &str) {
    if !tenant
        .domains
        .iter()
        .any(|d| d.get("id").and_then(Value::as_str) == Some(DEMO_DOMAIN))
    {
        tenant.domains.push(json!({
            "id": DEMO_DOMAIN, "authenticationType": "Managed", "isAdminManaged": true,
            "isDefault": false, "isInitial": false, "isRoot": true, "isVerified": true,
            "supportedServices": ["Email"], "passwordValidityPeriodInDays": 2147483647,
            "passwordNotificationWindowInDays": 14
        }));
        set_demo_spf(tenant, GOOD_SPF);
    }
    tenant
        .dns
        .insert(format!("_dmarc.{DEMO_DOMAIN}"), vec![dmarc.to_owned()]);
}

fn set_demo_spf(tenant: &mut TenantFile, spf: &str) {
    tenant
        .dns
        .insert(DEMO_DOMAIN.to_owned(), vec![spf.to_owned()]);
}

fn set_forwarding_rule(tenant: &mut TenantFile, present: bool) {
    let Some(user) = demo_user_id(tenant) else {
        return;
    };
    let rules = tenant.message_rules.entry(user.clone()).or_default();
    rules.retain(|r| r.get("id").and_then(Value::as_str) != Some(RULE_ID));
    if !present && rules.is_empty() {
        tenant.message_rules.remove(&user);
    } else if present {
        rules.push(json!({
            "id": RULE_ID, "displayName": "Keep a copy", "sequence": 1, "isEnabled": true,
            "hasError": false, "isReadOnly": false, "conditions": {}, "exceptions": {},
            "actions": {"forwardTo": [{"emailAddress": {"name": "Collector", "address": EXTERNAL_RECIPIENT}}],
                        "stopProcessingRules": false}
        }));
    }
}

fn set_calendar_share(tenant: &mut TenantFile, present: bool) {
    let Some(user) = demo_user_id(tenant) else {
        return;
    };
    let permissions = tenant.calendar_permissions.entry(user.clone()).or_default();
    permissions.retain(|p| p.get("id").and_then(Value::as_str) != Some(PERMISSION_ID));
    if !present && permissions.is_empty() {
        tenant.calendar_permissions.remove(&user);
    } else if present {
        permissions.push(json!({
            "id": PERMISSION_ID, "isRemovable": true, "isInsideOrganization": false,
            "role": "read", "allowedRoles": ["none", "freeBusyRead", "limitedRead", "read"],
            "emailAddress": {"name": "Partner", "address": "partner@agency.example"}
        }));
    }
}

fn set_user_enabled(tenant: &mut TenantFile, enabled: bool) {
    let Some(user) = demo_user_id(tenant) else {
        return;
    };
    if let Some(object) = tenant
        .users
        .iter_mut()
        .find(|u| u.get("id").and_then(Value::as_str) == Some(user.as_str()))
        .and_then(Value::as_object_mut)
    {
        object.insert("accountEnabled".to_owned(), Value::Bool(enabled));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cycle_returns_the_tenant_to_its_state_after_step_zero() {
        let mut tenant = graph_sim::generate(20, 3);
        apply_step(&mut tenant, 0);
        let after_first = serde_json::to_value(&tenant).unwrap();
        for step in 1..STEPS {
            apply_step(&mut tenant, step);
        }
        assert_ne!(serde_json::to_value(&tenant).unwrap(), after_first);
        apply_step(&mut tenant, STEPS);
        assert_eq!(serde_json::to_value(&tenant).unwrap(), after_first);
    }

    #[test]
    fn step_one_turns_the_demo_spf_to_plus_all_and_step_four_fixes_it() {
        let mut tenant = graph_sim::generate(20, 3);
        apply_step(&mut tenant, 0);
        apply_step(&mut tenant, 1);
        assert_eq!(tenant.dns[DEMO_DOMAIN], ["v=spf1 +all"]);
        apply_step(&mut tenant, 4);
        assert_eq!(tenant.dns[DEMO_DOMAIN], [GOOD_SPF]);
    }

    #[test]
    fn step_one_adds_an_external_forwarding_rule_and_step_four_removes_it() {
        let mut tenant = graph_sim::generate(20, 3);
        apply_step(&mut tenant, 1);
        let text = serde_json::to_string(&tenant.message_rules).unwrap();
        assert!(text.contains(EXTERNAL_RECIPIENT));
        apply_step(&mut tenant, 4);
        let text = serde_json::to_string(&tenant.message_rules).unwrap();
        assert!(!text.contains(EXTERNAL_RECIPIENT));
    }
}
