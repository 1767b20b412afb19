//! What the soak's receiver got against what the daemon committed: every transition the state
//! file counts arrived (deduplicated by event id, at least once), every event id once seen in
//! the outbox arrived, and per instance the events alternate new/resolved and end as the state
//! file's instance does.

use crate::arrivals::Arrived;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The first arrival of every event id, in arrival order.
pub fn first_arrivals(arrivals: &[Arrived]) -> Vec<&Arrived> {
    let mut seen = BTreeSet::new();
    arrivals
        .iter()
        .filter(|e| seen.insert(e.event_id.clone()))
        .collect()
}

/// Arrivals per (finding, action) equal the state file's committed counts, and nothing seen in
/// the outbox is missing.
pub fn every_transition_arrived(
    unique: &[&Arrived],
    state: &Path,
    seen_in_outbox: &BTreeSet<String>,
) -> Result<(), String> {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for event in unique {
        *counts
            .entry((event.finding.clone(), event.action.clone()))
            .or_default() += 1;
    }
    let committed = super::event_counts(state);
    if counts != committed {
        return Err(format!("arrived {counts:?}, committed {committed:?}"));
    }
    let ids: BTreeSet<&str> = unique.iter().map(|e| e.event_id.as_str()).collect();
    let lost: Vec<&String> = seen_in_outbox
        .iter()
        .filter(|id| !ids.contains(id.as_str()))
        .collect();
    if lost.is_empty() {
        Ok(())
    } else {
        Err(format!("outbox events lost: {lost:?}"))
    }
}

/// Per instance the events alternate new/resolved, and an instance is open and announced in
/// the state file exactly when its last event is "new".
pub fn instances_agree_with_state(unique: &[&Arrived], state: &Path) -> Result<(), String> {
    let mut history: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for event in unique {
        history
            .entry((event.finding.clone(), event.resource_id.clone()))
            .or_default()
            .push(&event.action);
    }
    for (instance, actions) in &history {
        let alternating = actions
            .iter()
            .enumerate()
            .all(|(i, a)| *a == if i % 2 == 0 { "new" } else { "resolved" });
        if !alternating {
            return Err(format!("{instance:?} out of order: {actions:?}"));
        }
    }
    for (instance, open) in super::instances(state) {
        let last_new = history
            .get(&instance)
            .is_some_and(|a| a.last() == Some(&"new"));
        if open != last_new {
            return Err(format!(
                "{instance:?}: open {open} in the state file, events {:?}",
                history.get(&instance)
            ));
        }
    }
    Ok(())
}
