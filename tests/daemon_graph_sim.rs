//! The daemon with the real collector against graph-sim: mutations between scans produce new,
//! resolved and reopened events; a Graph outage or a 403 on the users source across scans
//! resolves nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod daemon_support;

use daemon_support::*;
use graph_sim::{CollectionName, Faults, Mutation, PathFault, SimHandle, TenantFile};
use std::time::Duration;

const ADELE: &str = "a1000000-0000-4000-8000-000000000001";
const BOB: &str = "a1000000-0000-4000-8000-000000000002";

fn enabled(sim: &SimHandle, user: &str, on: bool) {
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: user.to_owned(),
        changes: serde_json::json!({ "accountEnabled": on }),
    })
    .unwrap();
}

fn disabled_events(state: &std::path::Path) -> Vec<(String, String)> {
    events_of(state, "user.account_disabled")
}

/// Events of one scan, in a stable order (a scan's events have no order between instances).
fn sorted(events: &[(String, String)]) -> Vec<(String, String)> {
    let mut events = events.to_vec();
    events.sort();
    events
}

fn pair(action: &str, resource: &str) -> (String, String) {
    (action.to_owned(), resource.to_owned())
}

/// The contoso fixture in graph-sim and a daemon scanning it every 100 ms.
async fn run_contoso() -> Running {
    let tenant = TenantFile::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graph-sim/tests/fixtures/contoso.json"
    )))
    .unwrap();
    run_daemon(tenant).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_sim_mutations_and_failures_across_scans() {
    let Running {
        sim,
        daemon,
        metrics,
        state,
        _dir,
    } = run_contoso().await;
    fresh_scan(&metrics).await;
    assert_eq!(disabled_events(&state), vec![pair("new", BOB)]);

    enabled(&sim, BOB, true);
    enabled(&sim, ADELE, false);
    fresh_scan(&metrics).await;
    assert_eq!(
        sorted(&disabled_events(&state)[1..]),
        [pair("new", ADELE), pair("resolved", BOB)]
    );

    // Graph down for every path across scans: Adele's fix is not seen, nothing resolves.
    let mut outage = Faults::default();
    outage.paths.insert(
        "*".into(),
        PathFault {
            status: Some(500),
            rate: 1.0,
            ..PathFault::default()
        },
    );
    sim.set_faults(wide_reports(outage));
    enabled(&sim, ADELE, true);
    fresh_scan(&metrics).await;
    assert_eq!(disabled_events(&state).len(), 3);
    let (_, body) = get(daemon.metrics_addr, "/metrics").await;
    let m = samples(&body);
    assert_eq!(m[r#"m365_posture_scan_success{tenant="contoso"}"#], 0.0);
    assert_eq!(
        sum(&m, "m365_posture_findings{", &["user.account_disabled"]),
        1.0
    );

    // The permission for the users source is withdrawn: a 403 across scans resolves nothing.
    sim.set_faults(wide_reports(Faults {
        forbidden_roles: vec!["User.Read.All".into()],
        ..Faults::default()
    }));
    sim.expire_access_tokens();
    fresh_scan(&metrics).await;
    assert_eq!(disabled_events(&state).len(), 3);
    let (_, body) = get(daemon.metrics_addr, "/metrics").await;
    let m = samples(&body);
    assert_eq!(
        m[r#"m365_posture_check_success{finding="user.account_disabled",tenant="contoso"}"#],
        0.0
    );
    assert_eq!(
        sum(&m, "m365_posture_findings{", &["user.account_disabled"]),
        1.0
    );

    // Everything back: Adele resolves; Bob disabled again reopens with the same fingerprint.
    sim.set_faults(wide_reports(Faults::default()));
    sim.expire_access_tokens();
    enabled(&sim, BOB, false);
    fresh_scan(&metrics).await;
    assert_eq!(
        sorted(&disabled_events(&state)[3..]),
        [pair("new", BOB), pair("resolved", ADELE)]
    );

    daemon.shutdown(Duration::from_secs(5)).await;
}

/// fabrikam.net's `+all` behind three void lookups (RFC 7208 section 4.6.4) is a permerror:
/// domain.spf_invalid replaces domain.spf_allows_any, in events and metrics, until the record
/// is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spf_permerror_raises_spf_invalid_instead_of_allows_any() {
    let running = run_contoso().await;
    let (sim, metrics, state) = (&running.sim, &running.metrics, &running.state);
    fresh_scan(metrics).await;
    set_spf(
        sim,
        "v=spf1 a:gone1.fabrikam.net a:gone2.fabrikam.net mx:gone3.fabrikam.net +all",
    );
    fresh_scan(metrics).await;
    let fabrikam = |finding: &str| events_of(state, finding);
    assert_eq!(
        fabrikam("domain.spf_invalid"),
        [pair("new", "fabrikam.net")]
    );
    assert_eq!(
        fabrikam("domain.spf_allows_any"),
        [
            pair("new", "fabrikam.net"),
            pair("resolved", "fabrikam.net")
        ]
    );
    let (_, body) = get(running.daemon.metrics_addr, "/metrics").await;
    let m = samples(&body);
    assert_eq!(
        sum(&m, "m365_posture_findings{", &["domain.spf_invalid"]),
        1.0
    );
    assert_eq!(
        m[r#"m365_posture_check_success{finding="domain.spf_invalid",tenant="contoso"}"#],
        1.0
    );
    // With only two void lookups the `+all` is reached again.
    set_spf(sim, "v=spf1 a:gone1.fabrikam.net a:gone2.fabrikam.net +all");
    fresh_scan(metrics).await;
    assert_eq!(
        fabrikam("domain.spf_invalid"),
        [
            pair("new", "fabrikam.net"),
            pair("resolved", "fabrikam.net")
        ]
    );
    assert_eq!(fabrikam("domain.spf_allows_any").len(), 3);
    running.daemon.shutdown(Duration::from_secs(5)).await;
}

fn set_spf(sim: &SimHandle, record: &str) {
    sim.mutate(|t| {
        t.dns.insert("fabrikam.net".into(), vec![record.to_owned()]);
    });
}

/// Adele's unattested key stays open while the registration report shows a label the agent
/// did not know (`passKeyDeviceBoundAuthenticator` was missing from the old filter) or lags
/// behind her methods; her forwarding rule stays open while her mailbox is on premises (404
/// `MailboxNotEnabledForRESTAPI`). Both resolve once a read shows them gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_methods_and_unreadable_mailboxes_keep_their_instances() {
    let Running {
        sim,
        daemon,
        metrics,
        state,
        _dir,
    } = run_contoso().await;
    let key = format!("{ADELE}/-2_GRUg2-HYz6_1YG4YRAQ2");
    let rule = format!("{ADELE}/AQAAAJ5dZqE=");
    fresh_scan(&metrics).await;
    assert_eq!(
        events_of(&state, "user.fido2_unattested"),
        [pair("new", &key)]
    );
    assert_eq!(
        events_of(&state, "mail.rule_forwards_external"),
        [pair("new", &rule)]
    );

    for labels in [
        vec!["passKeyDeviceBoundAuthenticator"],
        vec!["passKeyOfSomeFutureKind"],
        vec!["email", "mobilePhone"],
    ] {
        sim.mutate(|t| {
            let labels = labels.iter().map(|l| l.to_string()).collect();
            t.registration_report.lagging.insert(ADELE.into(), labels);
        });
        fresh_scan(&metrics).await;
        assert_eq!(
            events_of(&state, "user.fido2_unattested").len(),
            1,
            "{labels:?}"
        );
    }

    // Hybrid: Adele is synced and her mailbox moves on premises.
    sim.apply(Mutation::Patch {
        collection: CollectionName::Users,
        id: ADELE.to_owned(),
        changes: serde_json::json!({ "onPremisesSyncEnabled": true }),
    })
    .unwrap();
    sim.apply(Mutation::SetMailbox {
        user_id: ADELE.to_owned(),
        enabled: false,
    })
    .unwrap();
    fresh_scan(&metrics).await;
    fresh_scan(&metrics).await;
    assert_eq!(events_of(&state, "mail.rule_forwards_external").len(), 1);
    let (_, body) = get(daemon.metrics_addr, "/metrics").await;
    let m = samples(&body);
    let unreadable = r#"m365_posture_mailboxes_unreadable{reason="mailbox_not_enabled_for_rest_api",tenant="contoso"}"#;
    assert_eq!(m[unreadable], 1.0);
    // Her rule's forwardTo and forwardAsAttachmentTo instances (the prefix matches both).
    assert_eq!(
        sum(
            &m,
            "m365_posture_findings{",
            &["mail.rule_forwards_external"]
        ),
        2.0
    );

    // Evidence: the mailbox is back without the rule, the methods are read without the key.
    sim.mutate(|t| {
        t.registration_report.lagging.clear();
        t.mailboxes.push(ADELE.to_owned());
        t.message_rules.remove(ADELE);
        if let Some(methods) = t.authentication_methods.get_mut(ADELE) {
            methods.retain(|m| m["@odata.type"] != "#microsoft.graph.fido2AuthenticationMethod");
        }
    });
    fresh_scan(&metrics).await;
    assert_eq!(
        events_of(&state, "user.fido2_unattested"),
        [pair("new", &key), pair("resolved", &key)]
    );
    assert_eq!(
        events_of(&state, "mail.rule_forwards_external"),
        [pair("new", &rule), pair("resolved", &rule)]
    );
    daemon.shutdown(Duration::from_secs(5)).await;
}
