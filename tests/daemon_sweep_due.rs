//! The daemon's sweep against graph-sim once stored reads age past `scan.per_user_max_age`:
//! reads the rules no longer call for (a user the registration report explains, a mailbox
//! user who became a guest or lost `mail`) do not stay "pending" for ever; a mailbox Graph
//! answered with a 404 is read again sooner than the others; reads the state file refuses
//! are not evaluated; method reads that resolve do not wait behind a mailbox backlog.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::{PathFault, SimHandle};
use m365_posture::config::Config;
use m365_posture::metrics::Metrics;
use m365_posture::scan::CollectedSnapshot;
use m365_posture::snapshot::Unavailable;
use m365_posture::state::Store;
use serde_json::{json, Value};
use std::time::Duration;
use support::*;

const METHODS: &str = "/v1.0/users/{id}/authentication/methods";
const CALENDAR: &str = "/v1.0/users/{id}/calendar/calendarPermissions";
const RULES: &str = "/v1.0/users/{id}/mailFolders/inbox/messageRules";
const REPORT: &str = "/v1.0/reports/authenticationMethods/userRegistrationDetails";
const SECTIONS: [&str; 3] = ["auth_methods", "calendar", "rules"];

fn reads(sim: &SimHandle) -> [u64; 3] {
    let stats = sim.stats();
    [METHODS, CALENDAR, RULES].map(|t| stats.total_to(t))
}

fn users_in(metrics: &Metrics, state: &str) -> [i64; 3] {
    SECTIONS.map(|section| {
        metrics
            .sweep_users
            .with_label_values(&["contoso", section, state])
            .get()
    })
}

fn pending(metrics: &Metrics) -> [i64; 3] {
    users_in(metrics, "pending")
}

async fn setup(users: usize, max_age: Duration, files: &Files) -> (SimHandle, Config) {
    let (sim, mut config) = reports_bucket_tenant(users, 1_000, files).await;
    config.scan.per_user_max_age = max_age;
    (sim, config)
}

/// Mailbox users (members with `mail`) whose inbox rules the snapshot holds as read.
fn rule_users(snap: &CollectedSnapshot) -> Vec<String> {
    let rules = snap.snapshot.message_rules.as_ref().unwrap();
    rules
        .iter()
        .filter(|(_, read)| read.is_ok())
        .map(|(user, _)| user.to_string())
        .collect()
}

/// A user whose stored or read methods hold at least one method.
fn a_user_with_methods(snap: &CollectedSnapshot) -> String {
    let methods = snap.snapshot.auth_methods.as_ref().unwrap();
    methods
        .iter()
        .find(|(_, read)| read.as_ref().is_ok_and(|items| !items.is_empty()))
        .map(|(user, _)| user.to_string())
        .unwrap()
}

fn set_user(sim: &SimHandle, id: &str, key: &str, value: Value) {
    sim.mutate(|t| {
        let user = t.users.iter_mut().find(|u| u["id"] == id).unwrap();
        user[key] = value;
    });
}

#[tokio::test]
async fn reads_the_rules_no_longer_call_for_do_not_stay_pending_when_they_age() {
    let files = Files::new();
    let max_age = Duration::from_secs(3);
    let (sim, config) = setup(40, max_age, &files).await;
    let state = files.dir.path().join("state.db");
    // The report refused: every user's methods are read, most of them holding none of the
    // methods the checks look at.
    let refused = PathFault {
        status: Some(403),
        rate: 1.0,
        ..PathFault::default()
    };
    sim.mutate(|t| t.faults.paths.insert(REPORT.into(), refused));
    let (first, _) = daemon_cycle(&config, &state).await;
    assert_eq!(
        reads(&sim)[0],
        40,
        "every user's methods, the report being refused"
    );
    sim.mutate(|t| t.faults.paths.remove(REPORT));
    let mailbox = rule_users(&first);
    assert!(mailbox.len() >= 4, "{mailbox:?}");
    set_user(&sim, &mailbox[0], "mail", Value::Null);
    set_user(&sim, &mailbox[1], "userType", json!("Guest"));

    // Every stored read is now older than the bound.
    tokio::time::sleep(max_age + Duration::from_millis(200)).await;
    let before = reads(&sim);
    let (second, metrics) = daemon_cycle(&config, &state).await;
    assert_eq!(second.error, None);
    let listed = second.snapshot.registration_details.as_ref().unwrap().len();
    assert!(listed > 0 && listed < 40, "{listed}");
    assert_eq!(
        reads(&sim)[0] - before[0],
        listed as u64,
        "only the users the report lists are read again"
    );
    assert_eq!(
        pending(&metrics),
        [0; 3],
        "m365_posture_sweep_users pending"
    );
    assert!(
        !second.sweep_pending,
        "the next scan waits for the interval"
    );
    let rules = rule_users(&second);
    assert!(
        !rules.contains(&mailbox[0]) && !rules.contains(&mailbox[1]),
        "a user without a mailbox is not evaluated on stored mailbox data, as scan does"
    );
    assert!(rules.contains(&mailbox[2]));
}

#[tokio::test]
async fn a_mailbox_graph_could_not_read_is_read_again_after_a_seventh_of_the_age_bound() {
    let files = Files::new();
    let (sim, config) = setup(40, Duration::from_secs(7), &files).await;
    let state = files.dir.path().join("state.db");
    let (first, _) = daemon_cycle(&config, &state).await;
    let rules_404 = {
        let rules = first.snapshot.message_rules.as_ref().unwrap();
        rules
            .values()
            .filter(|r| matches!(r, Err(Unavailable::NotReadable { .. })))
            .count() as u64
    };
    // graph-sim gives hybrid users (mailbox on premises) Graph's 404
    // `MailboxNotEnabledForRESTAPI`.
    assert!(
        rules_404 > 0,
        "the tenant must have a mailbox Graph cannot read"
    );
    let before = reads(&sim);

    // Past a seventh of the 7 s bound, not past the bound.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let (second, _) = daemon_cycle(&config, &state).await;
    assert_eq!(second.error, None);
    let after = reads(&sim);
    assert_eq!(
        after[2] - before[2],
        rules_404,
        "only the 404 mailboxes again"
    );
    assert_eq!(after[0], before[0], "no method read is due");
    assert!(after[1] - before[1] <= rules_404);
}

#[tokio::test]
async fn reads_the_state_file_refuses_are_not_evaluated() {
    let files = Files::new();
    let max_age = Duration::from_secs(2);
    let (sim, config) = setup(40, max_age, &files).await;
    let state = files.dir.path().join("state.db");
    let (first, _) = daemon_cycle(&config, &state).await;
    let user = rule_users(&first)[0].clone();
    let rule = json!({"id": "rule-out", "displayName": "Forward out", "sequence": 1,
        "isEnabled": true, "hasError": false, "isReadOnly": false, "conditions": {},
        "actions": {"forwardTo": [{"emailAddress": {"name": "Out", "address": "out@elsewhere.example"}}]}});
    sim.mutate(|t| t.message_rules.entry(user.clone()).or_default().push(rule));
    tokio::time::sleep(max_age + Duration::from_millis(200)).await;

    // A full disk, as SQLite reports it.
    let conn = rusqlite::Connection::open(&state).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER refuse_reads BEFORE INSERT ON per_user_reads
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    let before = reads(&sim);
    let (refused, metrics) = daemon_cycle(&config, &state).await;
    assert!(reads(&sim)[2] > before[2], "the rules were read again");
    let read = &refused.snapshot.message_rules.as_ref().unwrap()[&*user];
    assert!(
        matches!(read, Err(Unavailable::NotCollected { .. })),
        "a read the state file does not hold is not evaluated: {read:?}"
    );
    assert!(
        users_in(&metrics, "failed")[2] > 0,
        "and counts as failed (not pending: a full disk must not make every scan a 60-s continuation)"
    );
    assert!(!refused.sweep_pending);
    let stored = Store::open(&state)
        .unwrap()
        .load_per_user_reads("contoso")
        .unwrap();
    let stored_rules = stored
        .iter()
        .find(|r| r.user_id == user && r.kind == "rules")
        .unwrap();
    assert!(!stored_rules.items.contains("rule-out"));

    conn.execute_batch("DROP TRIGGER refuse_reads;").unwrap();
    let (saved, _) = daemon_cycle(&config, &state).await;
    let read = &saved.snapshot.message_rules.as_ref().unwrap()[&*user];
    assert!(read.as_ref().unwrap().iter().any(|r| &*r.id == "rule-out"));
}

/// A user whose FIDO2 key, TAP and Windows Hello are gone leaves the report; the read that
/// shows it (and resolves their method findings) is made even while the Exchange pool works
/// through a backlog longer than the sweep's time.
#[tokio::test]
async fn method_reads_that_resolve_do_not_wait_behind_a_mailbox_backlog() {
    let files = Files::new();
    let max_age = Duration::from_secs(2);
    let (sim, mut config) = setup(120, max_age, &files).await;
    config.scan.mailbox_concurrency = 1;
    let state = files.dir.path().join("state.db");
    let (first, _) = daemon_cycle(&config, &state).await;
    let leaving = a_user_with_methods(&first);
    let slow = PathFault {
        latency_ms: Some([1_500, 1_500]),
        ..PathFault::default()
    };
    sim.mutate(|t| {
        t.authentication_methods.remove(&leaving);
        t.faults.paths.insert(RULES.into(), slow.clone());
        t.faults.paths.insert(CALENDAR.into(), slow);
    });
    tokio::time::sleep(max_age + Duration::from_millis(200)).await;

    // Reads may be sent for 3 s; the aged mailboxes need far longer.
    config.scan.timeout = Duration::from_secs(4);
    let (second, _) = daemon_cycle(&config, &state).await;
    assert_eq!(second.error, None);
    assert!(
        second.sweep_pending,
        "the mailbox backlog outlasts the sweep"
    );
    let read = &second.snapshot.auth_methods.as_ref().unwrap()[&*leaving];
    assert!(
        read.as_ref().is_ok_and(Vec::is_empty),
        "the user's methods were read again and hold none: {read:?}"
    );
}

/// A user whose pass is gone is read again and stored holding no methods; if that scan's
/// findings were never committed (a timeout in evaluation, a kill), the next scans must still
/// evaluate the stored read, which the report explains, so the open instance resolves.
#[tokio::test]
async fn a_stored_read_the_report_explains_is_still_evaluated() {
    let files = Files::new();
    let (sim, config) = setup(40, Duration::from_secs(7 * 24 * 3600), &files).await;
    let state = files.dir.path().join("state.db");
    let (first, _) = daemon_cycle(&config, &state).await;
    let leaving = a_user_with_methods(&first);
    sim.mutate(|t| t.authentication_methods.remove(&leaving));
    let (second, _) = daemon_cycle(&config, &state).await;
    let read = &second.snapshot.auth_methods.as_ref().unwrap()[&*leaving];
    assert!(
        read.as_ref().is_ok_and(Vec::is_empty),
        "read again: {read:?}"
    );
    let before = reads(&sim)[0];
    let (third, metrics) = daemon_cycle(&config, &state).await;
    assert_eq!(
        reads(&sim)[0],
        before,
        "not due: the report explains the user"
    );
    let read = third.snapshot.auth_methods.as_ref().unwrap().get(&*leaving);
    assert!(
        read.is_some_and(|r| r.as_ref().is_ok_and(Vec::is_empty)),
        "the stored read is evaluated, so an instance left open resolves: {read:?}"
    );
    assert_eq!(pending(&metrics)[0], 0);
}
