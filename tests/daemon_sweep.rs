//! The daemon's per-user sweep against graph-sim, through the daemon's own snapshot source
//! and state file: an unchanged tenant's second cycle reads no per-user data; a registered
//! method is read again for that user alone and a deleted user's data is forgotten; a sweep
//! cut short by its time resumes after a restart where it stopped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::SimHandle;
use m365_posture::config::Config;
use m365_posture::scan::CollectedSnapshot;
use m365_posture::state::Store;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
const CALENDAR: &str = "/v1.0/users/{id}/calendar/calendarPermissions";
const RULES: &str = "/v1.0/users/{id}/mailFolders/inbox/messageRules";

/// Per-user reads the simulator answered so far, by kind.
fn per_user_reads(sim: &SimHandle) -> [u64; 3] {
    let stats = sim.stats();
    [METHODS, CALENDAR, RULES].map(|t| stats.total_to(t))
}

/// One daemon collection of the tenant with a state file at `state`.
async fn cycle(config: &Config, state: &std::path::Path) -> CollectedSnapshot {
    cycle_with_metrics(config, state).await.0
}

/// [`cycle`], and the value of `m365_posture_sweep_users` for methods by state.
async fn cycle_with_metrics(
    config: &Config,
    state: &std::path::Path,
) -> (CollectedSnapshot, [i64; 2], i64) {
    let (snap, metrics) = daemon_cycle(config, state).await;
    let users = ["current", "pending"].map(|state| {
        metrics
            .sweep_users
            .with_label_values(&["contoso", "auth_methods", state])
            .get()
    });
    let oldest = metrics
        .per_user_oldest_read
        .with_label_values(&["contoso", "auth_methods"])
        .get();
    (snap, users, oldest)
}

/// Users whose methods the snapshot holds, read or stored.
fn method_users(snap: &CollectedSnapshot) -> BTreeSet<String> {
    let methods = snap.snapshot.auth_methods.as_ref().unwrap();
    methods
        .iter()
        .filter(|(_, read)| read.is_ok())
        .map(|(user, _)| user.to_string())
        .collect()
}

#[tokio::test]
async fn an_unchanged_tenant_costs_no_per_user_reads_and_changes_cost_one_each() {
    let files = Files::new();
    let (sim, config) = reports_bucket_tenant(60, 1_000, &files).await;
    let state = files.dir.path().join("state.db");
    let first = cycle(&config, &state).await;
    assert_eq!(first.error, None);
    let after_first = per_user_reads(&sim);
    assert!(after_first.iter().all(|n| *n > 0), "{after_first:?}");

    let second = cycle(&config, &state).await;
    assert_eq!(per_user_reads(&sim), after_first, "nothing was due");
    assert_eq!(
        second.snapshot.auth_methods, first.snapshot.auth_methods,
        "stored reads stand in for the reads not made"
    );
    assert_eq!(second.snapshot.message_rules, first.snapshot.message_rules);

    // A method registered (the report row changes) and a user deleted.
    let with_methods = method_users(&first);
    let tenant = sim.tenant();
    let registering = tenant
        .users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .find(|u| !with_methods.contains(u))
        .unwrap();
    let deleted = with_methods.iter().next().unwrap().clone();
    // The rows' lastUpdatedDateTime has a resolution of one second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    sim.mutate(|t| {
        t.authentication_methods
            .entry(registering.clone())
            .or_default()
            .push(
                json!({"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
                "id": "tap-new", "isUsable": true, "isUsableOnce": false, "lifetimeInMinutes": 60,
                "createdDateTime": "2026-01-01T00:00:00Z", "startDateTime": "2026-01-01T00:00:00Z",
                "methodUsabilityReason": "enabledByPolicy"}),
            );
        assert!(t.remove_user(&deleted));
    });
    let third = cycle(&config, &state).await;
    let [methods, calendar, rules] = per_user_reads(&sim);
    assert_eq!(methods, after_first[0] + 1, "only the registering user");
    assert_eq!([calendar, rules], [after_first[1], after_first[2]]);
    let third_users = method_users(&third);
    assert!(third_users.contains(&registering));
    assert!(
        !third_users.contains(&deleted),
        "a deleted user's data is gone"
    );
    let stored = Store::open(&state).unwrap().load_per_user_reads("contoso");
    assert!(stored.unwrap().iter().all(|r| r.user_id != deleted));
}

/// Graph's documented bucket of 5 per 10 s (here 6): the daemon sizes method batches to the
/// bucket and sends a batch whole, so after the report's page only a batch smaller than the
/// bucket fits the first window (for this seed the last one, of 5 users). The first cycle's
/// sweep ends there and the next cycle, with a fresh process's state, reads exactly the users
/// the first did not reach.
#[tokio::test]
async fn a_sweep_cut_short_resumes_after_a_restart_where_it_stopped() {
    let files = Files::new();
    let (sim, mut config) = reports_bucket_tenant(60, 6, &files).await;
    let state = files.dir.path().join("state.db");
    // The sweep may send reads for three quarters of the scan's timeout: 3 s.
    config.scan.timeout = Duration::from_secs(4);
    let (first, [current, pending_users], oldest) = cycle_with_metrics(&config, &state).await;
    assert_eq!(first.error, None, "a slow sweep fails no scan");
    let read_in_first = sim.stats().total_to(METHODS);
    assert!(
        (1..6).contains(&read_in_first),
        "one batch smaller than the bucket in the first window: {read_in_first}"
    );
    assert_eq!(
        current, read_in_first as i64,
        "m365_posture_sweep_users current"
    );
    assert!(pending_users >= 2, "m365_posture_sweep_users pending");
    assert!(oldest > 1_700_000_000, "{oldest}");
    let read_first = method_users(&first);
    let methods = first.snapshot.auth_methods.as_ref().unwrap();
    let pending: BTreeSet<String> = methods
        .iter()
        .filter(|(_, read)| read.is_err())
        .map(|(user, _)| user.to_string())
        .collect();
    assert!(
        pending.len() >= 2,
        "the tenant must outlast one window: {methods:?}"
    );

    // Graph's window of the first cycle must pass; then a longer deadline reads the rest.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    config.scan.timeout = Duration::from_secs(60);
    let (second, [current, pending_after], _) = cycle_with_metrics(&config, &state).await;
    assert_eq!(pending_after, 0);
    assert_eq!(current, (read_in_first + pending.len() as u64) as i64);
    assert_eq!(
        sim.stats().total_to(METHODS),
        read_in_first + pending.len() as u64,
        "only the users the first sweep did not reach"
    );
    let all = method_users(&second);
    assert!(read_first.is_subset(&all) && pending.is_subset(&all));
    assert_eq!(sim.stats().throttled, 0);
}
