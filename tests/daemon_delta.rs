//! The daemon's directory through delta queries against graph-sim (issue 10 point 3), through
//! the daemon's own snapshot source and state file, each cycle a fresh process: a first cycle
//! takes each collection's latest deltaLink and lists it 999 a page; a rescan of an
//! unchanged directory costs one delta request per collection and gives the same sections;
//! users added, changed and deleted arrive through the deltaLink; an expired or reset token
//! resyncs to exactly the tenant's directory; a round failing on a later page stores nothing
//! and fails its section. With the real daemon: a user deleted resolves their instances through
//! `@removed`, and not while the users round fails. Graph's rules:
//! learn.microsoft.com/graph/delta-query-overview.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

mod daemon_support;

use graph_sim::{CollectionName, Mutation, PathFault, SimHandle};
use m365_posture::config::Config;
use m365_posture::scan::CollectedSnapshot;
use m365_posture::state::Store;
use serde_json::json;
use std::collections::BTreeSet;
use support::*;

const DELTA: [&str; 3] = [
    "/v1.0/users/delta",
    "/v1.0/applications/delta",
    "/v1.0/servicePrincipals/delta",
];
const LISTINGS: [&str; 3] = [
    "/v1.0/users",
    "/v1.0/applications",
    "/v1.0/servicePrincipals",
];

fn requests(sim: &SimHandle, templates: [&str; 3]) -> [u64; 3] {
    let stats = sim.stats();
    templates.map(|t| stats.requests_to(t))
}

async fn cycle(config: &Config, state: &std::path::Path) -> CollectedSnapshot {
    let snap = daemon_cycle(config, state).await.0;
    assert_eq!(snap.error, None);
    snap
}

fn listed_ids(snap: &CollectedSnapshot) -> BTreeSet<String> {
    let users = snap.snapshot.users.as_ref().expect("users section");
    users.iter().map(|u| u.id.to_string()).collect()
}

fn tenant_ids(sim: &SimHandle) -> BTreeSet<String> {
    let users = sim.tenant().users;
    users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect()
}

fn stored_users(state: &std::path::Path) -> usize {
    let store = Store::open(state).unwrap();
    store
        .load_directory("contoso", "users")
        .unwrap()
        .objects
        .len()
}

/// A generated tenant of `users` users; reports buckets wide on both sides (the sweep's pacing
/// is tested in daemon_sweep.rs).
async fn setup(users: usize, files: &Files) -> (SimHandle, Config) {
    let mut tenant = graph_sim::generate(users, 5);
    tenant.faults.throttle.reports_per_10s = 1_000;
    let sim = sim(tenant).await;
    let mut config = config(&sim, files.secret());
    config.scan.reports_per_10s = 1_000;
    (sim, config)
}

fn user_id(sim: &SimHandle, position: usize) -> String {
    sim.tenant().users[position]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_unchanged_directory_costs_one_delta_request_per_collection_across_a_restart() {
    let files = Files::new();
    let (sim, config) = setup(250, &files).await;
    let state = files.dir.path().join("state.db");
    let first = cycle(&config, &state).await;
    let after_first = requests(&sim, DELTA);
    // "Sync from now" (`$deltatoken=latest`, delta-query-overview): one request a collection
    // for the token, then the listing, where a delta round would page 250 users by 100.
    assert_eq!(after_first, [1, 1, 1], "one latest deltaLink a collection");
    let listed = requests(&sim, LISTINGS);
    assert_eq!(listed[0], 1, "250 users in one page of 999");
    assert!(listed[1] >= 1 && listed[2] >= 1);
    assert_eq!(listed_ids(&first), tenant_ids(&sim));

    // A fresh process over the same state file: the deltaLinks were kept.
    let second = cycle(&config, &state).await;
    assert_eq!(requests(&sim, DELTA), after_first.map(|n| n + 1));
    assert_eq!(requests(&sim, LISTINGS), listed, "nothing listed again");
    assert_eq!(second.snapshot.users, first.snapshot.users);
    assert_eq!(second.snapshot.applications, first.snapshot.applications);
    assert_eq!(
        second.snapshot.service_principals,
        first.snapshot.service_principals
    );
}

/// The resync takes its token before it lists: a user changed after the listing's first page
/// was answered is missing from that listing, and the next round brings the change because it
/// came after the token (delta-query-overview: "sync from now", then the listing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_while_the_first_listing_pages_arrives_with_the_next_round() {
    let files = Files::new();
    let (sim, config) = setup(1_100, &files).await;
    let state = files.dir.path().join("state.db");
    let first_page_user = user_id(&sim, 0);
    let mut faults = sim.tenant().faults;
    faults.paths.insert(
        LISTINGS[0].into(),
        PathFault {
            latency_ms: Some([1_500, 1_500]),
            query_contains: Some("$skiptoken".into()),
            ..PathFault::default()
        },
    );
    sim.set_faults(faults);
    let change_after_first_page = async {
        let first_page = async {
            while requests(&sim, LISTINGS)[0] == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), first_page)
            .await
            .expect("the users are listed");
        sim.apply(Mutation::Patch {
            collection: CollectionName::Users,
            id: first_page_user.clone(),
            changes: json!({"accountEnabled": false}),
        })
        .unwrap();
    };
    let (first, ()) = tokio::join!(cycle(&config, &state), change_after_first_page);
    assert_eq!(requests(&sim, LISTINGS)[0], 2, "1,100 users, 999 a page");
    let enabled = |snap: &CollectedSnapshot| {
        let users = snap.snapshot.users.as_ref().unwrap();
        let user = users.iter().find(|u| *u.id == *first_page_user).unwrap();
        user.account_enabled
    };
    assert_eq!(enabled(&first), Some(true), "listed before the change");
    let second = cycle(&config, &state).await;
    assert_eq!(
        enabled(&second),
        Some(false),
        "the change came after the token"
    );
}

/// Sets the stored user `id`'s object to `object` and, when `aged`, dates the users' last
/// listing eight days back: the state a disagreement between a resync's token and its listing
/// would leave.
fn tamper(state: &std::path::Path, id: &str, object: &serde_json::Value, aged: bool) {
    let conn = rusqlite::Connection::open(state).unwrap();
    let changed = conn
        .execute(
            "UPDATE directory_objects SET object = ?1 WHERE collection = 'users' AND id = ?2",
            rusqlite::params![object.to_string(), id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    if aged {
        let eight_days_ms = 8 * 24 * 3600 * 1000_i64;
        conn.execute(
            "UPDATE delta_links SET listed_ms = listed_ms - ?1 WHERE collection = 'users'",
            [eight_days_ms],
        )
        .unwrap();
    }
}

/// A collection not listed for seven days is listed again, and the listing replaces what the
/// deltaLinks alone would have kept.
#[tokio::test]
async fn a_week_old_listing_is_listed_again_and_replaces_the_stored_objects() {
    let files = Files::new();
    let (sim, config) = setup(120, &files).await;
    let state = files.dir.path().join("state.db");
    cycle(&config, &state).await;
    let id = user_id(&sim, 0);
    let wrong =
        json!({"id": id, "accountEnabled": false, "userPrincipalName": "stale@contoso.com"});
    let enabled = |snap: &CollectedSnapshot| {
        let users = snap.snapshot.users.as_ref().unwrap();
        users.iter().find(|u| *u.id == *id).unwrap().account_enabled
    };

    tamper(&state, &id, &wrong, false);
    let (delta, listed) = (requests(&sim, DELTA), requests(&sim, LISTINGS));
    let kept = cycle(&config, &state).await;
    assert_eq!(
        enabled(&kept),
        Some(false),
        "a recent listing: the link alone"
    );
    assert_eq!(requests(&sim, LISTINGS), listed);

    tamper(&state, &id, &wrong, true);
    let relisted = cycle(&config, &state).await;
    assert_eq!(enabled(&relisted), Some(true));
    assert_eq!(listed_ids(&relisted), tenant_ids(&sim));
    assert_eq!(
        requests(&sim, DELTA),
        [delta[0] + 2, delta[1] + 2, delta[2] + 2],
        "one round, then only the latest deltaLink of the users"
    );
    assert_eq!(requests(&sim, LISTINGS)[0], listed[0] + 1);

    // A listing time a month ahead (the clock was ahead then) is stale too.
    tamper(&state, &id, &wrong, false);
    let conn = rusqlite::Connection::open(&state).unwrap();
    let month_ms = 30 * 24 * 3600 * 1000_i64;
    conn.execute(
        "UPDATE delta_links SET listed_ms = listed_ms + ?1 WHERE collection = 'users'",
        [month_ms],
    )
    .unwrap();
    let relisted = cycle(&config, &state).await;
    assert_eq!(enabled(&relisted), Some(true));
    assert_eq!(requests(&sim, LISTINGS)[0], listed[0] + 2);
}

/// Stored objects that cannot be read (not JSON, or not a user) are never skipped, which would
/// drop a user from a list taken as complete: the scan lists the users again in full, and
/// the listing replaces them. Stored objects are read a thousand at a time, so 1,100 users
/// span two reads.
#[tokio::test]
async fn a_stored_user_that_does_not_parse_is_listed_again_in_the_same_scan() {
    let files = Files::new();
    let (sim, config) = setup(1_100, &files).await;
    let state = files.dir.path().join("state.db");
    let first = cycle(&config, &state).await;
    let unreadable = [
        (user_id(&sim, 3), "{".to_owned()),
        (
            user_id(&sim, 1_050),
            json!({"id": "x", "accountEnabled": "yes"}).to_string(),
        ),
    ];
    for (id, text) in &unreadable {
        let conn = rusqlite::Connection::open(&state).unwrap();
        let sql = "UPDATE directory_objects SET object = ?1 WHERE collection = 'users' AND id = ?2";
        assert_eq!(conn.execute(sql, rusqlite::params![text, id]).unwrap(), 1);
        let listed = requests(&sim, LISTINGS)[0];
        let again = cycle(&config, &state).await;
        assert_eq!(
            requests(&sim, LISTINGS)[0],
            listed + 2,
            "listed again, 999 a page"
        );
        assert_eq!(again.snapshot.users, first.snapshot.users);
        let stored = Store::open(&state).unwrap();
        let rows = stored.load_directory("contoso", "users").unwrap().objects;
        assert!(rows.iter().all(|(_, text)| text.starts_with("{\"")));
        assert_eq!(rows.len(), 1_100);
    }
    // A user changed in Graph whose stored form does not parse: its change is not applied
    // over nothing; the users are listed again.
    let changed = user_id(&sim, 7);
    let conn = rusqlite::Connection::open(&state).unwrap();
    let sql = "UPDATE directory_objects SET object = '[' WHERE collection = 'users' AND id = ?1";
    assert_eq!(conn.execute(sql, [&changed]).unwrap(), 1);
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: changed.clone(),
        changes: json!({"accountEnabled": false}),
    })
    .unwrap();
    let listed = requests(&sim, LISTINGS)[0];
    let again = cycle(&config, &state).await;
    assert_eq!(requests(&sim, LISTINGS)[0], listed + 2);
    assert_eq!(listed_ids(&again), tenant_ids(&sim));
    let users = again.snapshot.users.as_ref().unwrap();
    let user = users.iter().find(|u| *u.id == *changed).unwrap();
    assert_eq!(user.account_enabled, Some(false));
    assert!(user.user_principal_name.is_some(), "the whole user, listed");
}

#[tokio::test]
async fn users_added_changed_and_deleted_arrive_through_the_delta_link() {
    let files = Files::new();
    let (sim, config) = setup(60, &files).await;
    let state = files.dir.path().join("state.db");
    cycle(&config, &state).await;
    let before = requests(&sim, DELTA);
    let (disabled, deleted) = (user_id(&sim, 0), user_id(&sim, 1));
    let stored = Store::open(&state).unwrap().load_per_user_reads("contoso");
    assert!(stored.unwrap().iter().any(|r| r.user_id == deleted));
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: disabled.clone(),
        changes: json!({"accountEnabled": false}),
    })
    .unwrap();
    sim.apply(Mutation::Remove {
        collection: CollectionName::Users,
        id: deleted.clone(),
    })
    .unwrap();
    let added = json!({"id": "d1000000-0000-4000-8000-000000000001", "accountEnabled": true,
        "userPrincipalName": "newcomer@contoso.com", "mail": "newcomer@contoso.com",
        "userType": "Member", "displayName": "Newcomer"});
    sim.apply(Mutation::Upsert {
        collection: CollectionName::Users,
        object: added.clone(),
    })
    .unwrap();
    sim.apply(Mutation::SetMailbox {
        user_id: added["id"].as_str().unwrap().into(),
        enabled: true,
    })
    .unwrap();

    let second = cycle(&config, &state).await;
    assert_eq!(
        requests(&sim, DELTA)[0],
        before[0] + 1,
        "one page of changes"
    );
    assert_eq!(listed_ids(&second), tenant_ids(&sim));
    let users = second.snapshot.users.as_ref().unwrap();
    let user = |id: &str| users.iter().find(|u| &*u.id == id);
    assert_eq!(user(&disabled).unwrap().account_enabled, Some(false));
    assert!(user(&deleted).is_none(), "@removed is evidence of deletion");
    assert_eq!(
        user(added["id"].as_str().unwrap()).unwrap().mail.as_deref(),
        Some("newcomer@contoso.com")
    );
    // The sweep keys off this list: the newcomer is read, the deleted user forgotten.
    let stored = Store::open(&state)
        .unwrap()
        .load_per_user_reads("contoso")
        .unwrap();
    assert!(stored.iter().all(|r| r.user_id != deleted));
    assert!(stored
        .iter()
        .any(|r| r.user_id == added["id"] && r.kind == "rules"));
    assert_eq!(stored_users(&state), tenant_ids(&sim).len());
}

#[tokio::test]
async fn an_expired_or_reset_token_resyncs_to_exactly_the_tenants_directory() {
    let files = Files::new();
    let (sim, config) = setup(150, &files).await;
    let state = files.dir.path().join("state.db");
    cycle(&config, &state).await;
    for (round, gone) in [(0, 3), (1, 4)] {
        let before = requests(&sim, DELTA)[0];
        let listed_before = requests(&sim, LISTINGS)[0];
        let gone = user_id(&sim, gone);
        sim.apply(Mutation::Remove {
            collection: CollectionName::Users,
            id: gone.clone(),
        })
        .unwrap();
        sim.apply(Mutation::Upsert {
            collection: CollectionName::Users,
            object: json!({"id": format!("e100000{round}-0000-4000-8000-000000000001")}),
        })
        .unwrap();
        // Graph answers 400 syncStateNotFound after seven days, 410 Gone on a reset.
        if round == 0 {
            sim.expire_delta_tokens();
        } else {
            sim.reset_delta_tokens();
        }
        let snap = cycle(&config, &state).await;
        assert_eq!(
            requests(&sim, DELTA)[0],
            before + 1 + 1,
            "the refused link, then the latest deltaLink"
        );
        assert_eq!(
            requests(&sim, LISTINGS)[0],
            listed_before + 1,
            "and a listing of one page"
        );
        assert_eq!(listed_ids(&snap), tenant_ids(&sim), "round {round}");
        assert!(!listed_ids(&snap).contains(&gone));
        assert_eq!(stored_users(&state), tenant_ids(&sim).len());
    }
    // The resynced links work: an unchanged directory costs one delta request again.
    let (delta, listed) = (requests(&sim, DELTA), requests(&sim, LISTINGS));
    cycle(&config, &state).await;
    assert_eq!(requests(&sim, DELTA), delta.map(|n| n + 1));
    assert_eq!(requests(&sim, LISTINGS), listed);
}

#[tokio::test]
async fn a_round_failing_on_a_later_page_stores_nothing_and_fails_its_section() {
    let files = Files::new();
    let (sim, config) = setup(1_100, &files).await;
    let state = files.dir.path().join("state.db");
    cycle(&config, &state).await;
    let link = |state: &std::path::Path| {
        let store = Store::open(state).unwrap();
        store.load_directory("contoso", "users").unwrap().link
    };
    let stored_link = link(&state);
    // More changes than one page holds, and a deletion on the failing page.
    let tenant = sim.tenant();
    let deleted = tenant.users[1_099]["id"].as_str().unwrap().to_owned();
    sim.mutate(|t| {
        for user in t.users.iter_mut().take(150) {
            user["accountEnabled"] = json!(false);
        }
        assert!(t.remove_user(&deleted));
    });
    // The incremental round fails on its second page, and so does the resync's listing
    // (1,100 users: its first page of 999 arrives, its second fails).
    let mut faults = tenant.faults.clone();
    for path in [DELTA[0], LISTINGS[0]] {
        faults.paths.insert(
            path.into(),
            PathFault {
                status: Some(400),
                rate: 1.0,
                query_contains: Some("$skiptoken".into()),
                ..PathFault::default()
            },
        );
    }
    sim.set_faults(faults);
    let listed = requests(&sim, LISTINGS)[0];
    let failed = daemon_cycle(&config, &state).await.0;
    assert_eq!(
        requests(&sim, LISTINGS)[0],
        listed + 2,
        "a page, then a refusal"
    );
    assert!(
        failed.snapshot.users.is_err(),
        "{:?}",
        failed.snapshot.users
    );
    assert!(failed.snapshot.message_rules.is_err());
    assert_eq!(link(&state), stored_link, "the stored link stands");
    assert_eq!(stored_users(&state), 1_100, "no object stored or forgotten");
    let stored = Store::open(&state)
        .unwrap()
        .load_per_user_reads("contoso")
        .unwrap();
    assert!(
        stored.iter().any(|r| r.user_id == deleted),
        "a failed round forgets no one"
    );

    sim.set_faults(tenant.faults);
    let recovered = cycle(&config, &state).await;
    assert_eq!(listed_ids(&recovered), tenant_ids(&sim));
    let users = recovered.snapshot.users.as_ref().unwrap();
    let disabled_now = sim
        .tenant()
        .users
        .iter()
        .filter(|u| u["accountEnabled"] == false)
        .count();
    assert!(disabled_now >= 150);
    assert_eq!(
        users
            .iter()
            .filter(|u| u.account_enabled == Some(false))
            .count(),
        disabled_now
    );
}

/// `user.account_disabled` events in the outbox: (action, user).
fn disabled_events(state: &std::path::Path) -> Vec<(String, String)> {
    daemon_support::events_of(state, "user.account_disabled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_resolves_a_deleted_user_through_removed_and_not_while_the_round_fails() {
    use daemon_support::{fresh_scan, run_daemon, wide_reports, Running};
    let Running {
        sim,
        daemon,
        metrics,
        state,
        _dir,
    } = run_daemon(contoso()).await;
    const BOB: &str = "a1000000-0000-4000-8000-000000000002";
    fresh_scan(&metrics).await;
    let new_bob = ("new".to_owned(), BOB.to_owned());
    assert_eq!(disabled_events(&state), vec![new_bob.clone()]);
    let (unchanged, listed) = (requests(&sim, DELTA), requests(&sim, LISTINGS));

    // Every users delta page refused: the incremental round and its resync fail, Bob's
    // deletion is not seen and nothing resolves.
    let mut refused = wide_reports(graph_sim::Faults::default());
    refused.paths.insert(
        DELTA[0].into(),
        PathFault {
            status: Some(400),
            rate: 1.0,
            ..PathFault::default()
        },
    );
    sim.set_faults(refused);
    sim.apply(Mutation::Remove {
        collection: CollectionName::Users,
        id: BOB.into(),
    })
    .unwrap();
    fresh_scan(&metrics).await;
    assert_eq!(disabled_events(&state), vec![new_bob.clone()]);

    // Back: the stored deltaLink still works and its @removed resolves Bob.
    sim.set_faults(wide_reports(graph_sim::Faults::default()));
    fresh_scan(&metrics).await;
    assert_eq!(
        disabled_events(&state),
        vec![new_bob, ("resolved".to_owned(), BOB.to_owned())]
    );
    assert_eq!(
        requests(&sim, LISTINGS),
        listed,
        "no listing since the first scan"
    );
    assert!(requests(&sim, DELTA)[1] > unchanged[1]);
    daemon.shutdown(std::time::Duration::from_secs(5)).await;
}
