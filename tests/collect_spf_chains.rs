//! SPF include chains and loops against graph-sim's live DNS server (SECURITY.md, hostile
//! DNS): a chain deeper than RFC 7208's ten DNS-querying terms, an include loop (a to b to a),
//! a self-include and a fan-out of ten includes of ten includes each. Each is a permerror
//! (`domain.spf_invalid` with its cause, never `domain.spf_allows_any` from a `+all` past the
//! limit), costs a bounded number of queries at the server and bounded time; and the real
//! daemon keeps a stored `domain.spf_invalid` open while a link of the chain fails (SERVFAIL,
//! timeout), resolving it only when the record is fixed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod daemon_support;
#[path = "collect_support/mod.rs"]
mod support;

use chrono::{TimeZone, Utc};
use graph_sim::{Faults, TenantFile, ThrottleSettings};
use m365_posture::checks::spf::MAX_DNS_LOOKUPS;
use m365_posture::checks::{self, CheckOptions, EvalCtx, Outcome};
use m365_posture::findings::FindingId;
use m365_posture::snapshot::TenantSnapshot;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::*;

/// TXT records by name, as the tenant file keeps them.
type Records = BTreeMap<String, Vec<String>>;

/// The fixture's domain whose record each case replaces (it publishes `+all` in the fixture).
const DOMAIN: &str = "fabrikam.net";

/// A chain `DOMAIN` -> d1 -> ... -> d15 whose last link passes everything, past the limit.
fn deep_chain() -> Records {
    let link = |i: usize| format!("d{i}.chain.example");
    let mut dns = BTreeMap::new();
    dns.insert(DOMAIN.to_owned(), spf(&[link(1)]));
    for i in 1..15 {
        dns.insert(link(i), spf(&[link(i + 1)]));
    }
    dns.insert(link(15), vec!["v=spf1 +all".to_owned()]);
    dns
}

/// `DOMAIN` -> loop.example -> `DOMAIN`.
fn include_loop() -> Records {
    BTreeMap::from([
        (DOMAIN.to_owned(), spf(&["loop.example".to_owned()])),
        ("loop.example".to_owned(), spf(&[DOMAIN.to_owned()])),
    ])
}

/// `DOMAIN` includes itself.
fn self_include() -> Records {
    BTreeMap::from([(DOMAIN.to_owned(), spf(&[DOMAIN.to_owned()]))])
}

/// Ten includes of ten includes each (110 names); the last leaf passes everything.
fn fan_out() -> Records {
    let mut dns = BTreeMap::new();
    let middle: Vec<String> = (0..10).map(|i| format!("f{i}.fan.example")).collect();
    dns.insert(DOMAIN.to_owned(), spf(&middle));
    for (i, name) in middle.iter().enumerate() {
        let leaves: Vec<String> = (0..10).map(|j| format!("l{j}.{name}")).collect();
        for (j, leaf) in leaves.iter().enumerate() {
            let all = if i == 9 && j == 9 { "+all" } else { "-all" };
            dns.insert(leaf.clone(), vec![format!("v=spf1 ip4:192.0.2.{j} {all}")]);
        }
        dns.insert(name.clone(), spf(&leaves));
    }
    dns
}

/// `v=spf1 include:<each> -all`.
fn spf(includes: &[String]) -> Vec<String> {
    let terms: Vec<String> = includes.iter().map(|t| format!("include:{t}")).collect();
    vec![format!("v=spf1 {} -all", terms.join(" "))]
}

fn tenant_with(records: &Records) -> TenantFile {
    let mut tenant = contoso();
    tenant.dns.extend(records.clone());
    tenant
}

fn queries(sim: &graph_sim::SimHandle) -> u64 {
    sim.stats().dns_by_rcode.values().sum()
}

/// Collects the tenant once; returns the snapshot, the DNS queries the server saw, the time.
async fn collect_once(tenant: TenantFile) -> (TenantSnapshot, u64, Duration) {
    let sim = sim(tenant).await;
    let files = Files::new();
    let started = Instant::now();
    let snapshot = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    (snapshot, queries(&sim), started.elapsed())
}

/// The domain's outcome of one check: fired (with the finding's details), failed, or clean.
fn verdict(id: FindingId, snapshot: &TenantSnapshot) -> Result<Option<serde_json::Value>, String> {
    let options = CheckOptions::default();
    let ctx = EvalCtx {
        now: Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(),
        options: &options,
    };
    let Outcome::Evaluated(evaluation) = checks::evaluate(id, snapshot, &ctx) else {
        panic!("{id} not evaluated");
    };
    if let Some((_, reason)) = evaluation
        .failed_resources
        .iter()
        .find(|(r, _)| *r == DOMAIN)
    {
        return Err(reason.to_owned());
    }
    Ok(evaluation
        .findings
        .iter()
        .find(|f| f.resource_id == DOMAIN)
        .map(|f| f.details.to_value()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_loops_and_fan_outs_are_permerrors_in_bounded_queries() {
    // What the tenant costs with a one-record policy on the domain.
    let plain = BTreeMap::from([(DOMAIN.to_owned(), vec!["v=spf1 -all".to_owned()])]);
    let (_, baseline, _) = collect_once(tenant_with(&plain)).await;
    let cases = [
        // The ten counted links, not the fifteen published.
        (
            "deep chain",
            deep_chain(),
            "too_many_lookups",
            MAX_DNS_LOOKUPS,
        ),
        ("include loop", include_loop(), "loop", 1),
        ("self-include", self_include(), "loop", 0),
        // Discovery asks at most the ten targets a round can count, before and after the
        // budget runs out; never the 110 names published.
        (
            "fan-out",
            fan_out(),
            "too_many_lookups",
            2 * MAX_DNS_LOOKUPS,
        ),
    ];
    for (case, records, cause, most) in cases {
        let (snapshot, asked, took) = collect_once(tenant_with(&records)).await;
        let extra = asked.saturating_sub(baseline);
        eprintln!("{case}: {extra} DNS queries beyond the one-record policy, {took:?}");
        assert!(extra <= most as u64, "{case}: {extra} extra queries");
        assert!(took < Duration::from_secs(30), "{case} took {took:?}");
        let invalid = verdict(FindingId::SpfInvalid, &snapshot)
            .unwrap_or_else(|e| panic!("{case}: failed: {e}"))
            .unwrap_or_else(|| panic!("{case}: domain.spf_invalid did not fire"));
        assert_eq!(invalid["cause"], cause, "{case}: {invalid}");
        for other in [FindingId::SpfAllowsAny, FindingId::SpfMissing] {
            assert_eq!(
                verdict(other, &snapshot),
                Ok(None),
                "{case}: {other} on a permerror"
            );
        }
    }
}

/// The `domain.spf_invalid` instance of `DOMAIN` in the state file: `Some(open)` once stored.
fn stored_invalid(state: &std::path::Path) -> Option<bool> {
    let conn = rusqlite::Connection::open(state).ok()?;
    conn.query_row(
        "SELECT resolved_at_ms IS NULL FROM instances WHERE finding = 'domain.spf_invalid' AND resource_id = ?1",
        [DOMAIN],
        |r| r.get(0),
    )
    .ok()
}

/// Waits until `count` more scans are recorded, so at least one started after a change.
async fn scans_after(state: &std::path::Path, count: i64) {
    let target = daemon_support::recorded_scans(state) + count;
    daemon_support::wait_until("fresh scans", || {
        daemon_support::recorded_scans(state) >= target
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_permerror_stays_open_while_a_link_fails_and_resolves_when_fixed() {
    let mut tenant = tenant_with(&include_loop());
    // Scans every second read the registration report; throttling is not the subject.
    tenant.faults.throttle = ThrottleSettings {
        enabled: false,
        ..ThrottleSettings::default()
    };
    let sim = sim(tenant).await;
    let dir = tempfile::tempdir().unwrap();
    let (secret, state) = (dir.path().join("secret"), dir.path().join("state.db"));
    std::fs::write(&secret, format!("{}\n", graph_sim::DEFAULT_CLIENT_SECRET)).unwrap();
    let scan = "interval = \"1s\"\ntimeout = \"20s\"";
    let config =
        daemon_support::write_sim_config(dir.path(), "c.toml", &sim, (&secret, &state), scan);
    let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-posture"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    scans_after(&state, 1).await;
    assert_eq!(
        stored_invalid(&state),
        Some(true),
        "the loop is stored open"
    );

    // A link of the loop, then of a deep chain, fails: no verdict, the instance stays open.
    let faulted = |servfail: &[&str], timeout: &[&str]| Faults {
        dns_servfail: servfail.iter().map(|s| (*s).to_owned()).collect(),
        dns_timeout: timeout.iter().map(|s| (*s).to_owned()).collect(),
        throttle: ThrottleSettings {
            enabled: false,
            ..ThrottleSettings::default()
        },
        ..Faults::default()
    };
    let steps: [(&str, Faults, Option<Records>); 4] = [
        ("loop, SERVFAIL", faulted(&["loop.example"], &[]), None),
        ("loop, timeout", faulted(&[], &["loop.example"]), None),
        (
            "deep chain, a link SERVFAIL",
            faulted(&["d5.chain.example"], &[]),
            Some(deep_chain()),
        ),
        ("deep chain", faulted(&[], &[]), None),
    ];
    for (step, faults, records) in steps {
        sim.set_faults(faults);
        if let Some(records) = records {
            sim.mutate(|t: &mut TenantFile| t.dns.extend(records));
        }
        scans_after(&state, 2).await;
        assert_eq!(stored_invalid(&state), Some(true), "{step}: resolved");
    }
    // Positive evidence: a valid record resolves it.
    sim.mutate(|t: &mut TenantFile| {
        t.dns
            .insert(DOMAIN.to_owned(), vec!["v=spf1 -all".to_owned()])
    });
    scans_after(&state, 2).await;
    assert_eq!(
        stored_invalid(&state),
        Some(false),
        "a fixed record resolves"
    );
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();
}
