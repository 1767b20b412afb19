//! The mutated-tenant cycles: after cycle 2, users are deleted and added, a method is
//! registered for a user who had none and an external forwarding rule is created; the truth
//! is a one-shot `m365-posture scan` of the mutated tenant (it reads everything). Cycle 3a
//! runs with the default re-read rules (new users, changed report rows), cycle 3b with
//! `per_user_max_age = "1s"`, i.e. a full sweep. Every instance the truth adds must be
//! reported `new` and every one it drops `resolved`, nothing else, by the end of 3b; the
//! state's open instances must then equal the truth.

use std::collections::BTreeSet;
use std::time::Duration;

use graph_sim::{SimHandle, TenantFile};
use serde_json::Value;

use super::common::{print_table, BenchError};
use super::cycle::drained;
use super::daemon::{self, Daemon, Setup};
use super::receiver::Receiver;

type Instance = (String, String);

/// The user of an instance: its resource id is `<userId>` or `<userId>/<itemId>`.
fn user_of(resource: &str) -> &str {
    resource.split('/').next().unwrap_or(resource)
}

/// Users (ids) holding an open instance of `finding` (any finding when `None`).
fn holders(open: &BTreeSet<Instance>, finding: Option<&str>) -> BTreeSet<String> {
    open.iter()
        .filter(|(f, _)| finding.map_or(true, |want| f == want))
        .map(|(_, r)| user_of(r).to_owned())
        .collect()
}

fn user_ids(tenant: &TenantFile) -> Vec<String> {
    tenant
        .users
        .iter()
        .filter_map(|u| u.get("id")?.as_str().map(str::to_owned))
        .collect()
}

/// Removes a user and everything of theirs.
fn delete_user(tenant: &mut TenantFile, id: &str) {
    tenant
        .users
        .retain(|u| u.get("id").and_then(Value::as_str) != Some(id));
    tenant.authentication_methods.remove(id);
    tenant.calendar_permissions.remove(id);
    tenant.message_rules.remove(id);
    tenant.mailboxes.retain(|m| m != id);
}

/// Adds a copy of user `from` (new id and UPN) with their per-user data.
fn clone_user(tenant: &mut TenantFile, from: &str, index: usize) {
    let Some(mut user) = tenant
        .users
        .iter()
        .find(|u| u.get("id").and_then(Value::as_str) == Some(from))
        .cloned()
    else {
        return;
    };
    let id = format!("b0000000-0000-4000-8000-{index:012}");
    if let Some(map) = user.as_object_mut() {
        let upn = map
            .get("userPrincipalName")
            .and_then(Value::as_str)
            .and_then(|u| u.split_once('@'))
            .map(|(_, domain)| format!("bench-new-{index}@{domain}"))
            .unwrap_or_default();
        map.insert("id".into(), Value::String(id.clone()));
        map.insert("userPrincipalName".into(), Value::String(upn.clone()));
        map.insert("mail".into(), Value::String(upn));
    }
    tenant.users.push(user);
    for map in [
        &mut tenant.authentication_methods,
        &mut tenant.calendar_permissions,
        &mut tenant.message_rules,
    ] {
        if let Some(items) = map.get(from).cloned() {
            map.insert(id.clone(), items);
        }
    }
    if tenant.mailboxes.iter().any(|m| m == from) {
        tenant.mailboxes.push(id);
    }
}

/// Mutates the tenant; returns what was done and the users given a method and a rule.
fn mutate(sim: &SimHandle, open: &BTreeSet<Instance>) -> Result<(String, [String; 2]), BenchError> {
    let tenant = sim.tenant();
    let ids = user_ids(&tenant);
    let flagged: Vec<String> = ids
        .iter()
        .filter(|id| holders(open, None).contains(*id))
        .cloned()
        .collect();
    let method_donor = holders(open, Some("user.tap_reusable"))
        .into_iter()
        .next()
        .ok_or("no user.tap_reusable instance to copy")?;
    let rule_donor = holders(open, Some("mail.rule_forwards_external"))
        .into_iter()
        .next()
        .ok_or("no mail.rule_forwards_external instance to copy")?;
    let members: BTreeSet<&str> = tenant
        .users
        .iter()
        .filter(|u| u.get("userType").and_then(Value::as_str) == Some("Member"))
        .filter(|u| u.get("accountEnabled").and_then(Value::as_bool) == Some(true))
        .filter_map(|u| u.get("id")?.as_str())
        .collect();
    let clean: Vec<&String> = ids
        .iter()
        .filter(|id| members.contains(id.as_str()))
        .filter(|id| !holders(open, None).contains(*id))
        .filter(|id| tenant.mailboxes.contains(id))
        .collect();
    let (Some(method_user), Some(rule_user)) = (clean.first(), clean.get(1)) else {
        return Err("no mailbox user without findings".into());
    };
    let (method_user, rule_user) = ((*method_user).clone(), (*rule_user).clone());
    let is_tap = |m: &Value| {
        m.get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains("temporaryAccessPass"))
    };
    sim.mutate(|t| {
        for id in flagged.iter().take(5) {
            delete_user(t, id);
        }
        for (index, from) in flagged.iter().skip(5).take(5).enumerate() {
            clone_user(t, from, index);
        }
        let taps: Vec<Value> = t
            .authentication_methods
            .get(&method_donor)
            .map(|list| list.iter().filter(|m| is_tap(m)).cloned().collect())
            .unwrap_or_default();
        t.authentication_methods
            .entry(method_user.clone())
            .or_default()
            .extend(taps);
        if let Some(rules) = t.message_rules.get(&rule_donor).cloned() {
            t.message_rules.insert(rule_user.clone(), rules);
        }
    });
    let done = format!(
        "5 users deleted, 5 added, a temporary access pass registered for {method_user}, \
         {rule_donor}'s inbox rules copied to {rule_user}"
    );
    Ok((done, [method_user, rule_user]))
}

/// The findings of a one-shot `scan --format json` of the tenant.
fn truth(config: &std::path::Path) -> Result<BTreeSet<Instance>, BenchError> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .args(["scan", "--format", "json", "--config"])
        .arg(config)
        .output()?;
    let document: Value = serde_json::from_slice(&output.stdout)?;
    let findings = document
        .pointer("/tenants/0/findings")
        .and_then(Value::as_array)
        .ok_or("scan JSON without findings")?;
    Ok(findings
        .iter()
        .filter_map(|f| {
            let text = |k: &str| f.get(k)?.as_str().map(str::to_owned);
            Some((text("finding")?, text("resource_id")?))
        })
        .collect())
}

/// One more daemon cycle; the `(action, instance)` pairs it reported.
async fn cycle(
    config: &std::path::Path,
    state: &std::path::Path,
    receiver: &Receiver,
) -> Result<BTreeSet<(String, Instance)>, BenchError> {
    receiver.clear();
    let emitted = daemon::events_emitted(state)?;
    let scans = daemon::committed_scans(state).0;
    let mut running = Daemon::spawn(config)?;
    daemon::wait_for_commit(&mut running, state, scans, Duration::from_secs(3 * 3600)).await?;
    drained(receiver, daemon::events_emitted(state)? - emitted).await;
    running.stop().await?;
    let (events, _) = receiver.snapshot();
    Ok(events
        .into_iter()
        .map(|e| (e.action, (e.finding, e.resource)))
        .collect())
}

fn split(reported: &BTreeSet<(String, Instance)>, action: &str) -> BTreeSet<Instance> {
    reported
        .iter()
        .filter(|(a, _)| a == action)
        .map(|(_, i)| i.clone())
        .collect()
}

/// Mutates the tenant, runs cycles 3a and 3b and prints what was reported against the truth.
pub async fn check(
    sim: &SimHandle,
    setup: &Setup<'_>,
    receiver: &Receiver,
) -> Result<(), BenchError> {
    let state = daemon::state_path(setup.dir);
    let before: BTreeSet<Instance> = daemon::open_instances(&state)?.into_iter().collect();
    let (done, changed) = mutate(sim, &before)?;
    let (config, _) = daemon::write_config(setup)?;
    let truth = truth(&config)?;
    let expected_new: BTreeSet<Instance> = truth.difference(&before).cloned().collect();
    for (user, finding) in changed.iter().zip(["user.tap_", "mail.rule_"]) {
        if !expected_new
            .iter()
            .any(|(f, r)| f.starts_with(finding) && user_of(r) == user)
        {
            return Err(format!("the mutation gave {user} no new {finding}* instance").into());
        }
    }
    let expected_resolved: BTreeSet<Instance> = before.difference(&truth).cloned().collect();
    let first = cycle(&config, &state, receiver).await?;
    let full = Setup {
        per_user_max_age: "1s",
        ..*setup
    };
    let (config, _) = daemon::write_config(&full)?;
    let second = cycle(&config, &state, receiver).await?;
    let after: BTreeSet<Instance> = daemon::open_instances(&state)?.into_iter().collect();
    let new: BTreeSet<Instance> = split(&first, "new")
        .union(&split(&second, "new"))
        .cloned()
        .collect();
    let resolved: BTreeSet<Instance> = split(&first, "resolved")
        .union(&split(&second, "resolved"))
        .cloned()
        .collect();
    let count = |a: &BTreeSet<Instance>, b: &BTreeSet<Instance>| a.difference(b).count();
    println!("\nmutation: {done}");
    print_table(
        &[
            "expected new / resolved",
            "3a new / resolved",
            "3b new / resolved",
            "missing new / resolved",
            "unexpected new / resolved",
            "open instances == scan",
        ],
        &[vec![
            format!("{} / {}", expected_new.len(), expected_resolved.len()),
            format!(
                "{} / {}",
                split(&first, "new").len(),
                split(&first, "resolved").len()
            ),
            format!(
                "{} / {}",
                split(&second, "new").len(),
                split(&second, "resolved").len()
            ),
            format!(
                "{} / {}",
                count(&expected_new, &new),
                count(&expected_resolved, &resolved)
            ),
            format!(
                "{} / {}",
                count(&new, &expected_new),
                count(&resolved, &expected_resolved)
            ),
            (after == truth).to_string(),
        ]],
    );
    for (finding, resource) in &expected_new {
        let instance = (finding.clone(), resource.clone());
        let when = if split(&first, "new").contains(&instance) {
            "reported in 3a"
        } else if split(&second, "new").contains(&instance) {
            "reported in 3b"
        } else {
            "not reported"
        };
        println!("expected new {finding} {resource}: {when}");
    }
    Ok(())
}
