//! Request economy against graph-sim: for a tenant of N users the scan's HTTP request count is
//! within 2% of the lower bound of graph-client.md section 5.2 (bulk registration-report
//! variant, unfiltered so no label is hidden), and paging follows `@odata.nextLink` across many pages.

#[path = "collect_support/mod.rs"]
mod support;

use graph_sim::TenantFile;
use m365_posture::collect::has_relevant_method;
use m365_posture::graph::paging::Pager;
use m365_posture::graph::Pool;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::*;

const USERS: usize = 2_000;
const SERVICE_PRINCIPALS: usize = 1_100;
const APPLICATIONS: usize = 40;

fn id(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// A tenant where 90% of users have a mailbox, every 17th a FIDO2 key and every 23rd
/// Windows Hello.
fn tenant(users: usize) -> TenantFile {
    let mut t = TenantFile {
        tenant_id: id(0xfeed, 1),
        organization: json!({"id": id(0xfeed, 1), "displayName": "Scale"}),
        ..TenantFile::default()
    };
    t.domains
        .push(json!({"id": "scale.example", "isVerified": true, "supportedServices": ["Email"]}));
    t.dns
        .insert("scale.example".into(), vec!["v=spf1 -all".into()]);
    for n in 0..users {
        let user = id(0xa, n);
        let has_mailbox = n % 10 != 0;
        let mail = has_mailbox.then(|| format!("user{n}@scale.example"));
        t.users.push(json!({"id": user, "userPrincipalName": format!("user{n}@scale.example"),
            "displayName": format!("User {n}"), "mail": mail, "userType": "Member", "accountEnabled": true}));
        if has_mailbox {
            t.mailboxes.push(user.clone());
        }
        let mut methods = Vec::new();
        if n % 17 == 0 {
            methods.push(
                json!({"@odata.type": "#microsoft.graph.fido2AuthenticationMethod",
                "id": id(0xf, n), "attestationLevel": "attested", "model": "Key"}),
            );
        }
        if n % 23 == 0 {
            methods.push(json!({"@odata.type": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
                "id": id(0xe, n), "keyStrength": "normal"}));
        }
        methods.push(json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": id(0xd, n)}));
        t.authentication_methods.insert(user, methods);
    }
    for n in 0..SERVICE_PRINCIPALS {
        t.service_principals
            .push(json!({"id": id(0xb, n), "appId": id(0xc, n),
            "displayName": format!("App {n}"), "servicePrincipalType": "Application",
            "appOwnerOrganizationId": id(0xfeed, 1)}));
    }
    for n in 0..APPLICATIONS {
        t.applications.push(
            json!({"id": id(0x9, n), "appId": id(0xc, n), "displayName": format!("App {n}")}),
        );
    }
    t
}

/// A simulator whose reports bucket admits 1,000 per 10 s, and a context that paces to it:
/// these tests count requests, and at Graph's documented 5 per 10 s the 2,000-user tenant's
/// method reads alone take minutes (the documented rate is tested on its own below).
async fn wide_reports_bucket(
    mut tenant: TenantFile,
    files: &Files,
) -> (graph_sim::SimHandle, m365_posture::collect::CollectContext) {
    tenant.faults.throttle.reports_per_10s = 1_000;
    let sim = sim(tenant).await;
    let mut cfg = config(&sim, files.secret());
    cfg.scan.reports_per_10s = 1_000;
    let ctx = context(cfg);
    (sim, ctx)
}

fn pages(items: usize, size: usize) -> u64 {
    items.div_ceil(size).max(1) as u64
}

#[tokio::test]
async fn scan_of_2000_users_is_within_two_percent_of_the_lower_bound() {
    let files = Files::new();
    let (sim, ctx) = wide_reports_bucket(tenant(USERS), &files).await;
    let report = collect(&ctx).await;
    assert_eq!(report.error, None);
    let snap = &report.snapshot;
    assert_eq!(snap.users.as_ref().unwrap().len(), USERS);

    let t = sim.tenant();
    let mailboxes = t.users.iter().filter(|u| u["mail"].is_string()).count();
    let relevant = snap
        .registration_details
        .as_ref()
        .unwrap()
        .iter()
        .filter(|r| has_relevant_method(r))
        .count();
    let expected_relevant = (0..USERS).filter(|n| n % 17 == 0 || n % 23 == 0).count();
    assert_eq!(relevant, expected_relevant);
    assert!(relevant > 100, "the tenant must exercise the pre-filter");
    let lower_bound = 1 // token
        + 1 // organization
        + pages(t.domains.len(), 999)
        + pages(USERS, 999)
        + pages(SERVICE_PRINCIPALS, 999)
        + pages(APPLICATIONS, 999)
        + pages(USERS, 999) // registration report, every row (labels are judged here)
        + (relevant as u64).div_ceil(20) // authentication methods of pre-filtered users
        + (2 * mailboxes as u64).div_ceil(20); // calendar permissions and inbox rules
    let stats = sim.stats();
    let actual = stats.total_requests;
    assert!(
        actual >= lower_bound,
        "{actual} below the bound {lower_bound}? {stats:?}"
    );
    assert!(
        actual as f64 <= lower_bound as f64 * 1.02,
        "{actual} requests, lower bound {lower_bound}: {:?}",
        stats.by_template
    );
    assert_eq!(counted_requests(&ctx), actual);
    assert_eq!(
        stats.total_to("/v1.0/users/{id}/authentication/methods"),
        relevant as u64
    );
    assert_eq!(snap.auth_methods.as_ref().unwrap().len(), relevant);
    assert_eq!(snap.message_rules.as_ref().unwrap().len(), mailboxes);
}

#[tokio::test]
async fn report_refused_falls_back_to_every_user() {
    let mut t = tenant(300);
    t.faults = serde_json::from_value(json!({"non_premium": true})).unwrap();
    let files = Files::new();
    let (sim, ctx) = wide_reports_bucket(t, &files).await;
    let snap = collect(&ctx).await.snapshot;
    assert!(snap.registration_details.is_err());
    let methods = snap.auth_methods.as_ref().unwrap();
    assert_eq!(methods.len(), 300, "every user's methods are read");
    assert_eq!(
        sim.stats()
            .total_to("/v1.0/users/{id}/authentication/methods"),
        300
    );
}

/// Graph's identity reports bucket, 5 requests per 10 s per app and tenant, shared by the
/// registration report and (as the throttling page lists `authenticationMethod`) each
/// per-user method read inside a `$batch`
/// (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-reports-service-limits>):
/// the agent sends batches of at most 5 methods reads, paced to the window, and is never
/// refused.
#[tokio::test]
async fn method_reads_are_paced_to_the_documented_reports_bucket() {
    let t = tenant(100);
    assert_eq!(t.faults.throttle.reports_per_10s, 5);
    assert!(t.faults.throttle.auth_methods_use_reports_bucket);
    let sim = sim(t).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let report = collect(&ctx).await;
    assert_eq!(report.error, None);
    let relevant = (0..100).filter(|n| n % 17 == 0 || n % 23 == 0).count();
    let methods = report.snapshot.auth_methods.as_ref().unwrap();
    assert_eq!(methods.len(), relevant);
    assert!(methods.values().all(Result::is_ok), "{methods:?}");
    let stats = sim.stats();
    assert_eq!(
        stats.throttled, 0,
        "the agent ran into the bucket: {stats:?}"
    );
    assert_eq!(
        stats.total_to("/v1.0/users/{id}/authentication/methods"),
        relevant as u64
    );
    assert_eq!(
        metric_sum(&ctx, "m365_posture_graph_pool_throttled_total"),
        0
    );
}

#[tokio::test]
async fn pager_follows_next_links_across_many_pages() {
    let sim = sim(tenant(250)).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let provider = ctx.token_provider(&ctx.config().tenants[0]).unwrap();
    let client = ctx.client(&ctx.config().tenants[0], provider, Default::default());
    let mut pager = Pager::new(
        &client,
        client.url("/users?$select=id&$top=7"),
        Pool::Directory,
    );
    let mut ids = BTreeSet::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        assert!(page.len() <= 7);
        ids.extend(
            page.iter()
                .filter_map(|u| u.get("id").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    assert_eq!(pager.pages(), 36);
    assert_eq!(ids.len(), 250);
    assert_eq!(sim.stats().requests_to("/v1.0/users"), 36);
}

/// Sends `count` directory reads one after another through the agent's client, against a
/// graph-sim whose identity budget is 20 resource units per 10 s, and returns what the
/// simulator throttled and what the agent's directory pool was slowed by warnings.
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // test helper
async fn sequential_directory_reads(count: usize, warnings: bool) -> (u64, u64) {
    let mut t = tenant(10);
    t.faults.throttle.identity_ru_per_10s = Some(20);
    t.faults.throttle.limit_percentage_header = warnings;
    let sim = sim(t).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let provider = ctx.token_provider(&ctx.config().tenants[0]).unwrap();
    let client = ctx.client(&ctx.config().tenants[0], provider, Default::default());
    for _ in 0..count {
        client
            .get(&client.url("/organization"), Pool::Directory)
            .await
            .unwrap();
    }
    (
        sim.stats().throttled,
        metric_sum(&ctx, "m365_posture_graph_pool_slowed_total"),
    )
}

/// Identity answers carry `x-ms-throttle-limit-percentage` once more than 0.8 of the budget
/// is used (<https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits>).
/// Without the warning, 30 reads against a budget of 20 run into 429s; with it, the agent
/// holds the directory pool until the budget is back at 0.8 and is never refused.
#[tokio::test]
async fn a_limit_warning_slows_the_directory_pool_before_graph_throttles_it() {
    let (throttled, slowed) = sequential_directory_reads(30, false).await;
    assert!(
        throttled > 0,
        "the budget was never reached: the test proves nothing"
    );
    assert_eq!(slowed, 0);
    let (throttled, slowed) = sequential_directory_reads(30, true).await;
    assert_eq!(throttled, 0, "the agent ran on into the identity budget");
    assert!(slowed > 0);
}

/// The reports bucket and the directory pool are separate budgets (issue 10 point 4): reads
/// waiting for the reports bucket (5 per 10 s, Microsoft's "Identity and access reports"
/// limit, learn.microsoft.com/graph/throttling-limits) hold no directory slot, so the user
/// listing and the other tenant-wide reads are not paced by the method reads.
#[tokio::test]
async fn reads_waiting_for_the_reports_bucket_hold_no_directory_slot() {
    let sim = sim(tenant(10)).await;
    let files = Files::new();
    let mut config = config(&sim, files.secret());
    config.scan.directory_concurrency = 1;
    config.scan.reports_per_10s = 1;
    let ctx = context(config);
    let provider = ctx.token_provider(&ctx.config().tenants[0]).unwrap();
    let client = ctx.client(&ctx.config().tenants[0], provider, Default::default());
    let report = client.url("/reports/authenticationMethods/userRegistrationDetails");
    // The first report read takes the bucket's one request; the second waits about 10 s.
    client.get(&report, Pool::Reports).await.unwrap();
    let waiting = client.get(&report, Pool::Reports);
    let directory = async {
        tokio::task::yield_now().await;
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.get(&client.url("/organization"), Pool::Directory),
        )
        .await
    };
    tokio::pin!(waiting);
    let directory = tokio::select! {
        biased;
        _ = &mut waiting => panic!("the reports bucket did not make the read wait"),
        directory = directory => directory,
    };
    assert!(
        matches!(directory, Ok(Ok(_))),
        "a directory read waited behind the reports bucket"
    );
}
