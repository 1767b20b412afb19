//! The daemon's full listings of a delta collection are staged in the state file page by page
//! (table `directory_listing`) and replace the stored collection only once complete (issue 10
//! point 6: the listing is not held as text). When a page cannot be written, the scan still
//! uses the listing Graph gave, stores none of it, keeps the stored link and objects, and lists
//! again at the next scan. Without a readable state file the listing is held for the scan's
//! write instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::SimHandle;
use m365_posture::scan::CollectedSnapshot;
use serde_json::json;
use std::path::Path;
use support::*;

const USERS_LISTING: &str = "/v1.0/users";

fn listings(sim: &SimHandle) -> u64 {
    sim.stats().requests_to(USERS_LISTING)
}

/// The users' stored link and listing time.
fn users_link(state: &Path) -> (String, i64) {
    let conn = rusqlite::Connection::open(state).unwrap();
    conn.query_row(
        "SELECT link, listed_ms FROM delta_links WHERE collection = 'users'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn stored_object(state: &Path, id: &str) -> serde_json::Value {
    let conn = rusqlite::Connection::open(state).unwrap();
    let text: String = conn
        .query_row(
            "SELECT object FROM directory_objects WHERE collection = 'users' AND id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn staged_rows(state: &Path) -> i64 {
    let conn = rusqlite::Connection::open(state).unwrap();
    conn.query_row("SELECT COUNT(*) FROM directory_listing", [], |r| r.get(0))
        .unwrap()
}

fn enabled(snap: &CollectedSnapshot, id: &str) -> Option<bool> {
    let users = snap.snapshot.users.as_ref().expect("users section");
    users.iter().find(|u| &*u.id == id).unwrap().account_enabled
}

#[tokio::test]
async fn a_listing_that_cannot_be_stored_is_used_kept_out_of_the_state_file_and_listed_again() {
    let files = Files::new();
    let mut tenant = graph_sim::generate(150, 5);
    tenant.faults.throttle.reports_per_10s = 1_000;
    let sim = sim(tenant).await;
    let mut config = config(&sim, files.secret());
    config.scan.reports_per_10s = 1_000;
    let state = files.dir.path().join("state.db");
    let first = daemon_cycle(&config, &state).await.0;
    assert_eq!(first.error, None);
    assert_eq!(
        staged_rows(&state),
        0,
        "a finished listing leaves nothing staged"
    );
    let id = sim.tenant().users[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(enabled(&first, &id), Some(true));

    // The stored user made wrong and the listing made a week old, so the next scan lists the
    // users again; the state file then refuses every staged page (as a full disk would).
    let conn = rusqlite::Connection::open(&state).unwrap();
    let wrong = json!({"id": id, "accountEnabled": false});
    conn.execute(
        "UPDATE directory_objects SET object = ?1 WHERE collection = 'users' AND id = ?2",
        rusqlite::params![wrong.to_string(), id],
    )
    .unwrap();
    conn.execute(
        "UPDATE delta_links SET listed_ms = listed_ms - 8 * 86400000 WHERE collection = 'users'",
        [],
    )
    .unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_staging BEFORE INSERT ON directory_listing
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    let stored_link = users_link(&state);
    let listed = listings(&sim);

    let unstored = daemon_cycle(&config, &state).await.0;
    assert_eq!(listings(&sim), listed + 1, "the users were listed");
    assert_eq!(unstored.error, None);
    assert_eq!(
        enabled(&unstored, &id),
        Some(true),
        "the scan uses what Graph listed"
    );
    let users = unstored.snapshot.users.as_ref().unwrap();
    assert_eq!(users.len(), 150);
    assert_eq!(
        users_link(&state),
        stored_link,
        "link and listing time stand"
    );
    assert_eq!(stored_object(&state, &id), wrong, "no object replaced");

    conn.execute_batch("DROP TRIGGER refuse_staging;").unwrap();
    let stored = daemon_cycle(&config, &state).await.0;
    assert_eq!(stored.error, None);
    assert_eq!(listings(&sim), listed + 2, "listed again, then stored");
    assert_eq!(stored_object(&state, &id)["accountEnabled"], true);
    assert!(users_link(&state).1 > stored_link.1, "a fresh listing time");
    assert_eq!(staged_rows(&state), 0);
}

/// Without a readable state file at the scan's start, a listing is held for the scan's write:
/// one write that replaces the collection, every listed user once, in id order, with the
/// token taken before the listing.
#[tokio::test]
async fn a_listing_without_a_state_file_is_held_for_the_scans_write() {
    use m365_posture::collect::delta::{DeltaCollection, DirectoryCache};
    use m365_posture::snapshot::User;
    let files = Files::new();
    let sim = sim(graph_sim::generate(1_100, 5)).await;
    let ctx = context(config(&sim, files.secret()));
    let provider = ctx.token_provider(&ctx.config().tenants[0]).unwrap();
    let client = ctx.client(&ctx.config().tenants[0], provider, Default::default());
    let cache = DirectoryCache::default();
    let users: Vec<User> = cache.list(&client, DeltaCollection::Users).await.unwrap();
    let ids: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
    let mut expected: Vec<String> = sim
        .tenant()
        .users
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(ids, expected, "every user once, in id order");
    assert_eq!(listings(&sim), 2, "1,100 users, 999 a page");

    let writes = cache.take_writes();
    assert_eq!(writes.len(), 1);
    let write = &writes[0];
    assert!(write.replace_all && write.removed.is_empty());
    assert_eq!(write.collection, "users");
    assert!(
        write.link.link.contains("deltatoken"),
        "{}",
        write.link.link
    );
    let written: Vec<&str> = write.upserts.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(written, expected);
    let first: User = serde_json::from_str(&write.upserts[0].1).unwrap();
    assert_eq!(first, users[0], "the written text is the listed user");
}
