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

fn pages(items: usize, size: usize) -> u64 {
    items.div_ceil(size).max(1) as u64
}

#[tokio::test]
async fn scan_of_2000_users_is_within_two_percent_of_the_lower_bound() {
    let sim = sim(tenant(USERS)).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
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
    let sim = sim(t).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    assert!(snap.registration_details.is_err());
    let methods = snap.auth_methods.as_ref().unwrap();
    assert_eq!(methods.len(), 300, "every user's methods are read");
    assert_eq!(
        sim.stats()
            .total_to("/v1.0/users/{id}/authentication/methods"),
        300
    );
}

#[tokio::test]
async fn pager_follows_next_links_across_many_pages() {
    let sim = sim(tenant(250)).await;
    let files = Files::new();
    let ctx = context(config(&sim, files.secret()));
    let provider = ctx.token_provider(&ctx.config.tenants[0]).unwrap();
    let client = ctx.client(&ctx.config.tenants[0], provider, Default::default());
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
