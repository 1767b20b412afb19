//! Method reads go to users the directory lists. Microsoft refreshes the registration report
//! asynchronously ("The date and time (UTC) when the report was last updated",
//! learn.microsoft.com/graph/api/resources/userregistrationdetails), so a row may outlive its
//! user; a read of that user costs a reports-bucket request (5 per 10 s) each scan for a 404 the
//! sweep discards. A row whose user the sweep has no stored read of waits for the listing to
//! name them; when the listing fails the scan's method reads are not stored, so reads still
//! waiting for it are not sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::PathFault;
use serde_json::json;
use std::time::Duration;
use support::*;

const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
const USERS_DELTA: &str = "/v1.0/users/delta";

#[tokio::test]
async fn a_user_the_report_still_lists_after_deletion_is_not_read() {
    let files = Files::new();
    let (sim, mut config) = reports_bucket_tenant(40, 1_000, &files).await;
    config.scan.per_user_max_age = Duration::from_secs(7 * 24 * 3600);
    let state = files.dir.path().join("state.db");
    let (first, _) = daemon_cycle(&config, &state).await;
    let rows = first.snapshot.registration_details.as_ref().unwrap();
    assert!(rows.len() >= 2, "{}", rows.len());
    let ghost = rows[0].id.to_string();
    // The report as the agent read it, frozen: it keeps the ghost's row after the deletion.
    let frozen: Vec<_> = rows
        .iter()
        .map(|row| serde_json::to_value(row).unwrap())
        .collect();
    sim.mutate(|t| {
        t.user_registration_details = Some(frozen);
        t.users.retain(|u| u["id"] != *ghost);
    });

    for cycle in 2..=4 {
        let before = sim.stats().total_to(METHODS);
        let (snap, _) = daemon_cycle(&config, &state).await;
        assert_eq!(snap.error, None, "cycle {cycle}");
        assert_eq!(
            sim.stats().total_to(METHODS) - before,
            0,
            "cycle {cycle}: nothing changed for listed users, and the ghost is not read"
        );
        let methods = snap.snapshot.auth_methods.as_ref().unwrap();
        assert!(!methods.contains_key(&*ghost), "cycle {cycle}");
        assert!(methods.contains_key(&*rows[1].id), "cycle {cycle}");
    }
}

/// A user the sweep has never read (no mailbox, and no method the pre-filter looked for) who
/// now shows a FIDO2 key: their read waits for the listing to name them, and is not sent when
/// the listing fails (that scan's method reads could not be kept).
#[tokio::test]
async fn method_reads_waiting_for_a_listing_that_fails_are_not_sent() {
    let files = Files::new();
    let (sim, config) = reports_bucket_tenant(40, 1_000, &files).await;
    let state = files.dir.path().join("state.db");
    let (first, _) = daemon_cycle(&config, &state).await;
    let users = first.snapshot.users.as_ref().unwrap();
    let methods = first.snapshot.auth_methods.as_ref().unwrap();
    let rules = first.snapshot.message_rules.as_ref().unwrap();
    let unread = users
        .iter()
        .find(|u| !methods.contains_key(&u.id) && !rules.contains_key(&u.id))
        .map(|u| u.id.to_string())
        .expect("a user with no stored read");
    // The rows' lastUpdatedDateTime has a resolution of one second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    sim.mutate(|t| {
        t.authentication_methods
            .entry(unread.clone())
            .or_default()
            .push(
                json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
                "id": "fido-new", "displayName": "key", "model": "Key",
                "aaGuid": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
                "attestationLevel": "attested", "createdDateTime": "2026-01-01T00:00:00Z"}),
            );
    });
    let failing = PathFault {
        status: Some(403),
        rate: 1.0,
        ..PathFault::default()
    };
    sim.mutate(|t| t.faults.paths.insert(USERS_DELTA.into(), failing));
    let before = sim.stats().total_to(METHODS);
    let (snap, _) = daemon_cycle(&config, &state).await;
    assert!(snap.snapshot.users.is_err(), "the listing failed");
    let rows = snap.snapshot.registration_details.as_ref().unwrap();
    assert!(
        rows.iter().any(|r| *r.id == *unread),
        "the report lists the new key"
    );
    assert_eq!(
        sim.stats().total_to(METHODS),
        before,
        "the only due read waited for a listing that failed"
    );

    sim.mutate(|t| t.faults.paths.remove(USERS_DELTA));
    let (snap, _) = daemon_cycle(&config, &state).await;
    assert_eq!(
        sim.stats().total_to(METHODS),
        before + 1,
        "read once listed"
    );
    let read = &snap.snapshot.auth_methods.as_ref().unwrap()[&*unread];
    assert!(read.as_ref().is_ok_and(|m| !m.is_empty()), "{read:?}");
}
