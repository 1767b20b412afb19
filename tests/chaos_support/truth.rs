//! The tenant's ground truth during the soak and the oracle over delivered events.
//!
//! The soak changes the tenant only through [`Knob`]s, each of which governs a fixed set of
//! instances (found by their finding and resource id) and is recorded with the wall-clock time
//! of every change. Every other instance is stable: its data never changes, so the only events
//! it may have are "new" ones (its first detection, perhaps late because its source failed),
//! and a "resolved" event for it is a failed or faulted source resolving a finding.
//!
//! A scan's events carry its start (`detected_at`, CEF `rt`); it reads the tenant after that
//! and before its deadline. So a "resolved" event of a governed instance is sound only if the
//! knob had the instance absent at some moment of `[rt - SLACK, rt + scan timeout + SLACK]`,
//! and a "new" event only if it had it present then. Per-user data (the inbox rule) may come
//! from a stored earlier read when this scan's read failed, so its window starts at the
//! previous event of the instance instead.

use graph_sim::{SimHandle, TenantFile};
use std::collections::BTreeMap;

/// Carol, whose inbox rule the soak adds and removes.
pub const CAROL: &str = "a1000000-0000-4000-8000-000000000003";
/// Erin, whom the soak disables and enables.
pub const ERIN: &str = "a1000000-0000-4000-8000-000000000005";
const RULE_ID: &str = "AQAAAChaosFwd=";
const DOMAIN: &str = "contoso.com";
/// Clock and scheduling slack around a scan's reading window, in milliseconds.
const SLACK_MS: i64 = 1000;

/// One thing the soak changes in the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Knob {
    /// Carol has an inbox rule forwarding to an outside address.
    ForwardingRule,
    /// Erin's account is disabled.
    ErinDisabled,
    /// contoso.com's DMARC policy is `p=none`.
    DmarcNone,
    /// contoso.com's SPF record ends in `+all`.
    SpfPlusAll,
}

impl Knob {
    pub const ALL: [Knob; 4] = [
        Knob::ForwardingRule,
        Knob::ErinDisabled,
        Knob::DmarcNone,
        Knob::SpfPlusAll,
    ];

    /// How this knob governs an instance (finding, resource id), if it does.
    fn governs(self, finding: &str, resource: &str) -> Option<Rule> {
        let exact = Rule {
            present_when_on: true,
            new_checked: true,
        };
        match self {
            Knob::ForwardingRule => (resource == format!("{CAROL}/{RULE_ID}")).then_some(exact),
            // Erin's other findings are for enabled accounts: disabling her may resolve them.
            Knob::ErinDisabled if resource == ERIN && finding != "user.account_disabled" => {
                Some(Rule {
                    present_when_on: false,
                    new_checked: false,
                })
            }
            Knob::ErinDisabled => (resource == ERIN).then_some(exact),
            Knob::DmarcNone => {
                (resource == DOMAIN && finding.starts_with("domain.dmarc_")).then_some(exact)
            }
            Knob::SpfPlusAll => {
                (resource == DOMAIN && finding == "domain.spf_allows_any").then_some(exact)
            }
        }
    }

    /// Sets the knob in graph-sim.
    pub fn apply(self, sim: &SimHandle, on: bool) {
        sim.mutate(|tenant: &mut TenantFile| match self {
            Knob::ForwardingRule => {
                let rules = tenant.message_rules.entry(CAROL.to_owned()).or_default();
                rules.retain(|r| r["id"] != RULE_ID);
                if on {
                    rules.push(forwarding_rule());
                }
            }
            Knob::ErinDisabled => {
                tenant.user_mut(ERIN).unwrap()["accountEnabled"] = serde_json::Value::Bool(!on);
            }
            Knob::DmarcNone => {
                let policy = if on { "none" } else { "reject" };
                let record = format!("v=DMARC1; p={policy}; rua=mailto:dmarc@{DOMAIN}");
                tenant.dns.insert(format!("_dmarc.{DOMAIN}"), vec![record]);
            }
            Knob::SpfPlusAll => {
                let all = if on { "+all" } else { "-all" };
                let record = format!("v=spf1 include:spf.protection.outlook.com {all}");
                tenant
                    .dns
                    .insert(DOMAIN.to_owned(), vec![record, "MS=ms12345678".to_owned()]);
            }
        });
    }
}

fn forwarding_rule() -> serde_json::Value {
    serde_json::json!({
        "id": RULE_ID, "displayName": "Keep a copy", "sequence": 1, "isEnabled": true,
        "hasError": false, "isReadOnly": false, "conditions": {}, "exceptions": null,
        "actions": {"forwardTo": [{"emailAddress": {"name": "C", "address": "collector@exfil.example"}}],
                    "stopProcessingRules": false}
    })
}

/// How a knob governs an instance.
#[derive(Debug, Clone, Copy)]
struct Rule {
    /// The instance exists when the knob is on (else when it is off).
    present_when_on: bool,
    /// "new" events are checked too (else only "resolved" ones).
    new_checked: bool,
}

/// Every knob's settings over time: (Unix ms from which it holds, on).
#[derive(Debug, Default)]
pub struct Truth {
    history: BTreeMap<Knob, Vec<(i64, bool)>>,
}

/// One delivered event as the oracle needs it.
pub struct Observed<'a> {
    pub finding: &'a str,
    pub resource: &'a str,
    pub action: &'a str,
    /// The scan's start, Unix ms (CEF `rt`).
    pub detected_ms: i64,
    /// The scan start of the instance's previous event, if any.
    pub previous_ms: Option<i64>,
}

impl Truth {
    /// Sets a knob in graph-sim and records when.
    pub fn set(&mut self, sim: &SimHandle, knob: Knob, on: bool) {
        knob.apply(sim, on);
        // The ground truth's clock is the wall clock the daemon stamps `rt` with.
        #[allow(clippy::disallowed_methods)]
        let at = chrono::Utc::now().timestamp_millis();
        self.history.entry(knob).or_default().push((at, on));
    }

    /// Whether the knob was `on` at some moment of `[from, to]`.
    fn held(&self, knob: Knob, on: bool, from: i64, to: i64) -> bool {
        let changes = self.history.get(&knob).map(Vec::as_slice).unwrap_or(&[]);
        changes.iter().enumerate().any(|(i, (since, value))| {
            let until = changes.get(i + 1).map_or(i64::MAX, |next| next.0);
            *value == on && *since <= to && until > from
        })
    }

    /// Changes recorded so far.
    pub fn changes(&self) -> usize {
        self.history.values().map(Vec::len).sum()
    }

    /// `Err` with the reason when the event contradicts the ground truth.
    pub fn judge(&self, event: &Observed<'_>, scan_timeout_ms: i64) -> Result<(), String> {
        let governing = Knob::ALL
            .iter()
            .find_map(|k| Some((*k, k.governs(event.finding, event.resource)?)));
        // A scan evaluates per-user data it could not read again from the last read stored:
        // read after the instance's previous event's data, so after that scan's start less
        // its deadline. Directory and DNS data is read by the scan itself.
        let stored_from = event
            .previous_ms
            .map_or(i64::MIN, |p| p - scan_timeout_ms - SLACK_MS);
        let from = match governing {
            Some((Knob::ForwardingRule, _)) => stored_from,
            _ => event.detected_ms - SLACK_MS,
        };
        let to = event.detected_ms + scan_timeout_ms + SLACK_MS;
        let present = event.action == "new";
        match governing {
            None if present => Ok(()),
            None => Err("resolved although its data never changed".to_owned()),
            Some((_, rule)) if present && !rule.new_checked => Ok(()),
            Some((knob, rule)) if self.held(knob, present == rule.present_when_on, from, to) => {
                Ok(())
            }
            Some((knob, _)) => Err(format!(
                "{} although {knob:?} never had it {} while that scan read the tenant",
                event.action,
                if present { "present" } else { "absent" }
            )),
        }
    }
}
