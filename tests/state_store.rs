//! The state file: creation mode, schema version, atomic scan commits, outbox bound, restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use chrono::{DateTime, TimeZone, Utc};
use m365_posture::checks::{Evaluation, Outcome, ReasonsBuilder};
use m365_posture::config::{FirstScan, Secret};
use m365_posture::findings::{Finding, FindingId};
use m365_posture::snapshot::Unavailable;
use m365_posture::state::commit::{OutboxLimit, ScanRecord, ScanStatus};
use m365_posture::state::reconcile::{diff, Changes, DiffInput, Policy};
use m365_posture::state::{Store, CURRENT_VERSION};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
}

fn changes_for(store: &Store, now: DateTime<Utc>, users: &[&str]) -> Changes {
    changes_with(store, now, users, &[], FirstScan::Emit)
}

/// The changes of a scan whose `user.account_disabled` check finds `users`, and whose sweep
/// has not reached the users in `pending` yet (not collected).
fn changes_with(
    store: &Store,
    now: DateTime<Utc>,
    users: &[&str],
    pending: &[&str],
    first_scan: FirstScan,
) -> Changes {
    let not_collected = Unavailable::NotCollected {
        detail: "the sweep has not reached this user yet".into(),
    };
    let failed: Vec<(&str, Unavailable)> = pending
        .iter()
        .map(|u| (*u, not_collected.clone()))
        .collect();
    changes_failing(store, now, users, &failed, first_scan)
}

/// As [`changes_with`], with the users in `failed` failed for the reason given.
fn changes_failing(
    store: &Store,
    now: DateTime<Utc>,
    users: &[&str],
    failures: &[(&str, Unavailable)],
    first_scan: FirstScan,
) -> Changes {
    let stored = store.load_instances("contoso").unwrap();
    let mut failed = ReasonsBuilder::default();
    for (user, reason) in failures {
        failed.insert_display(user, reason);
    }
    let evaluated: BTreeSet<FindingId> = store
        .baseline_over("contoso", now, chrono::Duration::days(7))
        .unwrap()
        .into_iter()
        .collect();
    let findings = users
        .iter()
        .map(|u| Finding {
            finding: FindingId::AccountDisabled,
            resource_id: (*u).to_owned(),
            resource_name: format!("{u}@contoso.com"),
            details: Default::default(),
        })
        .collect();
    let outcomes = vec![(
        FindingId::AccountDisabled,
        Outcome::Evaluated(Evaluation {
            findings,
            failed_resources: failed.build(),
            ..Evaluation::default()
        }),
    )];
    let overrides = BTreeMap::new();
    diff(&DiffInput {
        tenant: "contoso",
        tenant_id: "tid",
        now,
        stored: &stored,
        baseline_over: &evaluated,
        outcomes: &outcomes,
        policy: Policy {
            suppressions: &[],
            severity_overrides: &overrides,
            first_scan,
        },
    })
}

fn record(now: DateTime<Utc>) -> ScanRecord {
    ScanRecord {
        tenant: "contoso".into(),
        started: now,
        finished: now + chrono::Duration::seconds(3),
        status: ScanStatus::Ok,
        error: None,
    }
}

const NO_LIMIT: OutboxLimit<'static> = OutboxLimit {
    sinks: &[],
    max: 100,
};

#[test]
fn file_is_private_and_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/state.db");
    let store = Store::open(&path).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    // The directory the store created is private too (the umask would make it 0755).
    assert_eq!(mode(&dir.path().join("sub")), 0o700);
    for companion in ["state.db-wal", "state.db-shm"] {
        assert_eq!(
            mode(&dir.path().join("sub").join(companion)),
            0o600,
            "{companion}"
        );
    }
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    drop(store);
    // Reopening does not re-run migrations and keeps the version.
    assert_eq!(
        Store::open(&path).unwrap().schema_version().unwrap(),
        CURRENT_VERSION
    );
}

#[test]
fn committed_scans_survive_reopen_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let first = changes_for(&store, at(1), &["u1", "u2"]);
    store
        .apply("contoso", &first, &record(at(1)), NO_LIMIT)
        .unwrap();
    let second = changes_for(&store, at(2), &["u2"]);
    assert_eq!(second.events.len(), 1);
    store
        .apply("contoso", &second, &record(at(2)), NO_LIMIT)
        .unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    let summary = store.check_summaries("contoso").unwrap();
    assert_eq!(summary.len(), 1);
    assert_eq!(
        (summary[0].active, summary[0].suppressed, summary[0].success),
        (1, 0, true)
    );
    let counts = store.event_counts().unwrap();
    let key = |action: &str| {
        (
            "contoso".to_owned(),
            "user.account_disabled".to_owned(),
            "low".to_owned(),
            action.to_owned(),
        )
    };
    assert_eq!(counts.get(&key("new")), Some(&2));
    assert_eq!(counts.get(&key("resolved")), Some(&1));
    let scan = store.scan_summary("contoso").unwrap().unwrap();
    assert!(scan.last_success);
    assert_eq!(scan.last_duration_seconds, 3.0);
    // Nothing changed since: a third scan produces no event.
    assert!(changes_for(&store, at(3), &["u2"]).events.is_empty());
}

#[test]
fn full_outbox_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let sinks = vec!["stdout".to_owned()];
    store.register_sinks(&sinks).unwrap();
    let limit = OutboxLimit {
        sinks: &sinks,
        max: 2,
    };
    let fits = changes_for(&store, at(1), &["u1", "u2"]);
    store
        .apply("contoso", &fits, &record(at(1)), limit)
        .unwrap();
    assert_eq!(
        store.outbox_pending(&sinks).unwrap().get("stdout"),
        Some(&2)
    );

    // Two events still undelivered: one more transition would exceed the bound.
    let too_many = changes_for(&store, at(2), &["u1", "u2", "u3"]);
    let err = store
        .apply("contoso", &too_many, &record(at(2)), limit)
        .unwrap_err();
    assert!(err.to_string().contains("outbox full"), "{err}");
    assert_eq!(store.load_instances("contoso").unwrap().len(), 2);
    assert_eq!(
        store.outbox_pending(&sinks).unwrap().get("stdout"),
        Some(&2)
    );
}

#[test]
fn a_scan_larger_than_the_bound_commits_into_an_empty_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let sinks = vec!["stdout".to_owned()];
    store.register_sinks(&sinks).unwrap();
    let limit = OutboxLimit {
        sinks: &sinks,
        max: 2,
    };
    let large = changes_for(&store, at(1), &["u1", "u2", "u3"]);
    store
        .apply("contoso", &large, &record(at(1)), limit)
        .unwrap();
    assert_eq!(
        store.outbox_pending(&sinks).unwrap().get("stdout"),
        Some(&3)
    );
}

#[test]
fn failed_scan_keeps_last_success_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    store
        .apply(
            "contoso",
            &changes_for(&store, at(1), &["u1"]),
            &record(at(1)),
            NO_LIMIT,
        )
        .unwrap();
    let mut failed = record(at(2));
    failed.status = ScanStatus::Failed;
    failed.error = Some("timeout".into());
    store.record_scan(&failed).unwrap();
    let scan = store.scan_summary("contoso").unwrap().unwrap();
    assert!(!scan.last_success);
    assert_eq!(
        scan.last_success_finished,
        Some(at(1) + chrono::Duration::seconds(3))
    );
    assert_eq!(store.check_summaries("contoso").unwrap()[0].active, 1);
}

#[test]
fn refresh_tokens_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    assert!(store.load_refresh_token("contoso").unwrap().is_none());
    store
        .save_refresh_token("contoso", &Secret::new("rt-1".into()), at(1))
        .unwrap();
    store
        .save_refresh_token("contoso", &Secret::new("rt-2".into()), at(2))
        .unwrap();
    assert_eq!(
        store
            .load_refresh_token("contoso")
            .unwrap()
            .unwrap()
            .expose(),
        "rt-2"
    );
}

/// `report` reads the state file as it is: no migration, no write, and with no daemon running
/// no `-wal` or `-shm` left behind (run as root they would be root's, and the daemon's user
/// could not open the file any more). With a daemon's connection open it reads the committed
/// state through the WAL. A newer schema is refused.
#[test]
fn a_read_only_open_changes_nothing_and_leaves_no_companions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).unwrap();
    let changes = changes_for(&store, at(1), &["u1", "u2"]);
    store
        .apply("contoso", &changes, &record(at(1)), NO_LIMIT)
        .unwrap();
    // While the daemon holds the file, a reader sees what it committed.
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.load_instances("contoso").unwrap().len(), 2);
    drop(reader);
    drop(store);
    let companions = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "state.db")
            .collect()
    };
    assert_eq!(companions(dir.path()), Vec::<String>::new(), "clean close");
    let before = std::fs::read(&path).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    assert_eq!(reader.load_instances("contoso").unwrap().len(), 2);
    assert!(reader
        .apply("contoso", &changes, &record(at(2)), NO_LIMIT)
        .is_err());
    drop(reader);
    assert_eq!(companions(dir.path()), Vec::<String>::new());
    assert_eq!(std::fs::read(&path).unwrap(), before, "not a byte changed");

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_version VALUES (?1)",
        [CURRENT_VERSION + 1],
    )
    .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open_read_only(&path),
        Err(m365_posture::state::StateError::NewerSchema { .. })
    ));
}

/// With `first_scan = "baseline"`, a sweep that spans several scans (issue 10) is baselined
/// whole: instances found while users are still pending record silently, and the baseline
/// ends at the first evaluation with every user collected.
#[test]
fn the_baseline_lasts_until_the_first_sweep_has_reached_every_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let scan = |hour: u32, users: &[&str], pending: &[&str]| {
        let changes = changes_with(&store, at(hour), users, pending, FirstScan::Baseline);
        store
            .apply("contoso", &changes, &record(at(hour)), NO_LIMIT)
            .unwrap();
        let mut announced: Vec<String> = changes
            .events
            .iter()
            .map(|e| format!("{}:{}", e.resource_id, e.action.as_str()))
            .collect();
        announced.sort();
        announced
    };
    // Scan 1 reads u1; u2 and u3 are pending. Scan 2 reaches u2, u3 still pending.
    assert!(scan(1, &["u1"], &["u2", "u3"]).is_empty());
    assert!(scan(2, &["u1", "u2"], &["u3"]).is_empty());
    // Scan 3 reaches everyone: the sweep's last users are still the baseline.
    assert!(scan(3, &["u1", "u2", "u3"], &[]).is_empty());
    // From now on changes are announced.
    assert_eq!(scan(4, &["u2", "u3", "u4"], &[]), ["u1:resolved", "u4:new"]);
}

/// A sweep that never completes does not keep new instances silent for good: the baseline
/// ends `per_user_max_age` after the check's first evaluation.
#[test]
fn the_baseline_ends_after_the_longest_age_even_if_users_stay_pending() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let first = changes_with(&store, at(1), &["u1"], &["u2"], FirstScan::Baseline);
    assert!(first.events.is_empty());
    store
        .apply("contoso", &first, &record(at(1)), NO_LIMIT)
        .unwrap();
    let week_later = at(1) + chrono::Duration::days(7);
    let later = changes_with(
        &store,
        week_later,
        &["u1", "u3"],
        &["u2"],
        FirstScan::Baseline,
    );
    let events: Vec<&str> = later
        .events
        .iter()
        .map(|e| e.resource_id.as_str())
        .collect();
    assert_eq!(events, ["u3"]);
}

/// Users whose reads were throttled or failed in transit are read again by a later scan: they
/// keep the baseline on, while a lasting refusal (a missing permission) does not.
#[test]
fn transient_failures_keep_the_baseline_on_lasting_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    let scan = |hour: u32, users: &[&str], failed: &[(&str, Unavailable)]| {
        let changes = changes_failing(&store, at(hour), users, failed, FirstScan::Baseline);
        store
            .apply("contoso", &changes, &record(at(hour)), NO_LIMIT)
            .unwrap();
        changes.events.len()
    };
    assert_eq!(scan(1, &["u1"], &[("u2", Unavailable::Throttled)]), 0);
    let transport = Unavailable::Transport {
        detail: "connection reset".into(),
    };
    assert_eq!(scan(2, &["u1", "u2"], &[("u3", transport)]), 0);
    let denied = Unavailable::PermissionDenied {
        permission: "User.Read.All".into(),
    };
    assert_eq!(scan(3, &["u1", "u2", "u3"], &[("u4", denied.clone())]), 0);
    // The baseline ended at scan 3: a new instance is announced.
    assert_eq!(scan(4, &["u1", "u2", "u3", "u5"], &[("u4", denied)]), 1);
}
