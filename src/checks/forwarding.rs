//! The three `mail.rule_*` findings (M1-M3): enabled inbox rules that forward, forward as
//! attachment, or redirect to an external address.
//!
//! A recipient is external when its domain is not internal ([`InternalDomains`]); addresses
//! without a domain (legacyExchangeDN, X500) count as internal and are listed as unresolved.
//! Disabled rules never fire; rules in error still fire with `has_error`. One rule can fire
//! several findings. One instance per `<userId>/<ruleId>`.

use super::internal::{
    available, details, each_mailbox, evaluated, finding, AddressClass, InternalDomains,
};
use super::{EvalCtx, Outcome};
use crate::findings::FindingId;
use crate::snapshot::{MessageRule, MessageRuleActions, Recipient, TenantSnapshot};
use serde_json::{json, Value};

/// The rule action a finding looks at: its Graph name and how to read it.
type Action = (&'static str, fn(&MessageRuleActions) -> &[Recipient]);

/// Evaluates one finding of this category.
pub fn evaluate(id: FindingId, snapshot: &TenantSnapshot, ctx: &EvalCtx<'_>) -> Outcome {
    let action: Action = match id {
        FindingId::RuleForwardsExternalAttachment => {
            ("forwardAsAttachmentTo", |a| &a.forward_as_attachment_to)
        }
        FindingId::RuleForwardsExternal => ("forwardTo", |a| &a.forward_to),
        FindingId::RuleRedirectsExternal => ("redirectTo", |a| &a.redirect_to),
        _ => return super::not_implemented(),
    };
    rules_sending_out(id, action, snapshot, ctx).unwrap_or_else(|skipped| skipped)
}

/// Needs the rules, the users (names, guests) and the domains (what is external).
fn rules_sending_out(
    id: FindingId,
    action: Action,
    snapshot: &TenantSnapshot,
    ctx: &EvalCtx<'_>,
) -> Result<Outcome, Outcome> {
    let rules = available(&snapshot.message_rules)?;
    let users = available(&snapshot.users)?;
    let internal = InternalDomains::new(available(&snapshot.domains)?, ctx.options);
    let mut findings = Vec::new();
    let unread = each_mailbox(rules, users, ctx.options, |user_id, name, list| {
        for rule in list {
            if let Some(found) = external_action(rule, action, &internal) {
                let resource_id = format!("{user_id}/{}", rule.id);
                findings.push(finding(id, resource_id, name, details(found)));
            }
        }
    });
    Ok(evaluated(findings, unread))
}

/// The details when the enabled `rule` sends mail to an external recipient through `action`.
fn external_action(
    rule: &MessageRule,
    action: Action,
    internal: &InternalDomains,
) -> Option<Value> {
    if rule.is_enabled != Some(true) {
        return None;
    }
    let (action_name, recipients_of) = action;
    let recipients = rule.actions.as_ref().map_or(&[][..], recipients_of);
    let mut external = Vec::new();
    let mut external_domains = Vec::new();
    let mut unresolved = Vec::new();
    for recipient in recipients {
        let email = &recipient.email_address;
        match internal.classify(email.address.as_deref()) {
            AddressClass::External { domain } => {
                external.push(email.address.clone());
                if !external_domains.contains(&domain) {
                    external_domains.push(domain);
                }
            }
            AddressClass::Unresolved => {
                unresolved.push(email.address.clone().or(email.name.clone()))
            }
            AddressClass::Internal => {}
        }
    }
    (!external.is_empty()).then(|| {
        json!({
            "action": action_name,
            "rule_name": rule.display_name,
            "sequence": rule.sequence,
            "has_error": rule.has_error.unwrap_or(false),
            "external_recipients": external,
            "external_domains": external_domains,
            "unresolved_recipients": unresolved,
        })
    })
}

#[cfg(test)]
#[path = "forwarding_tests.rs"]
mod tests;
