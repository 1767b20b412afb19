//! Method reads go to users the directory lists. Microsoft refreshes the registration report
//! asynchronously ("The date and time (UTC) when the report was last updated",
//! learn.microsoft.com/graph/api/resources/userregistrationdetails), so a row may outlive its
//! user; a read of that user costs a reports-bucket request (5 per 10 s) each scan for a 404 the
//! sweep discards. And when the listing fails the scan's method reads are not stored, so reads
//! still waiting for it are not sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::PathFault;
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

#[tokio::test]
async fn method_reads_waiting_for_a_listing_that_fails_are_not_sent() {
    let files = Files::new();
    let (sim, config) = reports_bucket_tenant(40, 1_000, &files).await;
    let state = files.dir.path().join("state.db");
    let failing = PathFault {
        status: Some(403),
        rate: 1.0,
        ..PathFault::default()
    };
    sim.mutate(|t| t.faults.paths.insert(USERS_DELTA.into(), failing));
    let (snap, _) = daemon_cycle(&config, &state).await;
    assert!(snap.snapshot.users.is_err(), "the listing failed");
    assert!(
        snap.snapshot
            .registration_details
            .as_ref()
            .is_ok_and(|r| !r.is_empty()),
        "the report was read"
    );
    assert_eq!(
        sim.stats().total_to(METHODS),
        0,
        "no user was listed, so no method read was sent"
    );

    sim.mutate(|t| t.faults.paths.remove(USERS_DELTA));
    let (snap, _) = daemon_cycle(&config, &state).await;
    let listed = snap.snapshot.registration_details.as_ref().unwrap().len();
    assert_eq!(
        sim.stats().total_to(METHODS),
        listed as u64,
        "once listed, every user the report lists is read"
    );
}
