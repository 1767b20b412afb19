//! Hostile Graph (SECURITY.md): a proxy in front of graph-sim rewrites answers the way a broken
//! or malicious service (or a man in the middle past TLS) could. In each case the agent keeps
//! its token to the configured `graph_url`, stops, fails only the affected section or mailbox
//! with a reason, and never reads the hostile answer as an empty (clean) list.
//! Paging as documented: <https://learn.microsoft.com/en-us/graph/paging>; `$batch` answers
//! correlated by id: <https://learn.microsoft.com/en-us/graph/json-batching>.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod hostile_support;
#[path = "collect_support/mod.rs"]
mod support;

use hostile_support::*;
use m365_posture::collect::{collect_tenant, CollectReport};
use m365_posture::graph::client::Pool;
use m365_posture::graph::paging::Pager;
use m365_posture::snapshot::Unavailable;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio_util::sync::CancellationToken;

fn is_users_page(exchange: &Exchange<'_>) -> bool {
    exchange.method == "GET" && exchange.path_and_query.starts_with("/v1.0/users?")
}

/// Collects contoso through a proxy applying `rule`; returns the report and the context.
async fn collect_through(rule: Rule) -> (CollectReport, support::Files) {
    let sim = sim(contoso()).await;
    let proxy = start_proxy(sim.base_url(), rule).await;
    let files = Files::new();
    let mut config = config(&sim, files.secret());
    config.tenants[0].graph_url = proxy.base_url();
    config.tenants[0].authority_url = proxy.base_url();
    let ctx = context(config);
    let tenant = ctx.config().tenants[0].clone();
    let started = Instant::now();
    let report = collect_tenant(&ctx, &tenant, &CancellationToken::new()).await;
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "collection did not stop"
    );
    drop(sim);
    (report, files)
}

fn malformed(section: &Result<impl std::fmt::Debug, Unavailable>) -> String {
    match section {
        Err(Unavailable::Malformed { detail }) => detail.clone(),
        other => panic!("expected a malformed section, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_host_is_refused_and_the_token_never_leaves() {
    let foreign = start_foreign().await;
    for link in [
        format!("{}/v1.0/users?$skiptoken=stolen", foreign.base_url()),
        // The configured host as user info in front of the foreign one.
        format!("http://127.0.0.1@{}/v1.0/users?$skiptoken=x", foreign.addr),
    ] {
        let rule: Rule = Arc::new(move |exchange| {
            if !is_users_page(&exchange) {
                return exchange.upstream;
            }
            let mut page = exchange.upstream_json();
            page["@odata.nextLink"] = json!(link.clone());
            Answer::json(200, &page)
        });
        let (report, _files) = collect_through(rule).await;
        assert!(malformed(&report.snapshot.users).contains("nextLink outside the graph root"));
        // Sections that do not depend on the user list are still there.
        assert!(report.snapshot.domains.is_ok() && report.snapshot.applications.is_ok());
    }
    assert!(
        foreign.requests().is_empty(),
        "foreign host got {:?}",
        foreign.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_next_link_inside_a_batch_answer_fails_that_mailbox_only() {
    let foreign = start_foreign().await;
    let link = format!(
        "{}/v1.0/users/x/mailFolders/inbox/messageRules?$skiptoken=y",
        foreign.base_url()
    );
    let rule: Rule = Arc::new(move |exchange| {
        if exchange.path_and_query != "/v1.0/$batch" || exchange.upstream.status != 200 {
            return exchange.upstream;
        }
        let mut batch = exchange.upstream_json();
        for answer in batch["responses"].as_array_mut().unwrap() {
            if answer["body"]["value"].is_array() {
                answer["body"]["@odata.nextLink"] = json!(link.clone());
            }
        }
        Answer::json(200, &batch)
    });
    let (report, _files) = collect_through(rule).await;
    let rules = report.snapshot.message_rules.as_ref().unwrap();
    assert!(!rules.is_empty());
    for (user, result) in rules {
        assert!(
            matches!(result, Err(Unavailable::Malformed { .. })),
            "mailbox {user} read as {result:?}"
        );
    }
    assert!(report.snapshot.users.is_ok());
    assert!(
        foreign.requests().is_empty(),
        "foreign host got {:?}",
        foreign.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_referencing_next_link_stops_with_a_clear_error() {
    let rule: Rule = Arc::new(|exchange| {
        if !is_users_page(&exchange) {
            return exchange.upstream;
        }
        let mut page = exchange.upstream_json();
        // Absolute, as Graph sends it: the very page that was just read.
        let host = "http://HOST";
        page["@odata.nextLink"] = json!(format!("{host}{}", exchange.path_and_query));
        Answer::json(200, &page)
    });
    // The host is only known once the proxy runs: patch it in with a second proxy layer.
    let sim = sim(contoso()).await;
    let proxy_addr: Arc<std::sync::OnceLock<String>> = Arc::default();
    let known = Arc::clone(&proxy_addr);
    let patched: Rule = Arc::new(move |exchange| {
        let mut answer = rule(exchange);
        let text = String::from_utf8(answer.body).unwrap();
        answer.body = text
            .replace("http://HOST", known.get().unwrap())
            .into_bytes();
        answer
    });
    let proxy = start_proxy(sim.base_url(), patched).await;
    proxy_addr.set(proxy.base_url()).unwrap();
    let files = Files::new();
    let mut config = config(&sim, files.secret());
    config.tenants[0].graph_url = proxy.base_url();
    config.tenants[0].authority_url = proxy.base_url();
    let ctx = context(config);
    let tenant = ctx.config().tenants[0].clone();
    let report = collect_tenant(&ctx, &tenant, &CancellationToken::new()).await;
    assert!(malformed(&report.snapshot.users).contains("nextLink repeats an earlier page"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_next_link_chain_stops_at_the_page_limit() {
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let pages = Arc::clone(&counter);
    let base: Arc<std::sync::OnceLock<String>> = Arc::default();
    let known = Arc::clone(&base);
    let rule: Rule = Arc::new(move |exchange| {
        if !is_users_page(&exchange) {
            return exchange.upstream;
        }
        let n = pages.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let next = format!(
            "{}/v1.0/users?$skiptoken=page{}",
            known.get().unwrap(),
            n + 1
        );
        Answer::json(200, &json!({"value": [], "@odata.nextLink": next}))
    });
    let sim = sim(contoso()).await;
    let proxy = start_proxy(sim.base_url(), rule).await;
    base.set(proxy.base_url()).unwrap();
    let files = Files::new();
    let mut config = config(&sim, files.secret());
    config.tenants[0].graph_url = proxy.base_url();
    config.tenants[0].authority_url = proxy.base_url();
    let ctx = context(config);
    let tenant = ctx.config().tenants[0].clone();
    let provider = ctx.token_provider(&tenant).unwrap();
    let client = ctx.client(&tenant, provider, CancellationToken::new());
    let mut pager =
        Pager::new(&client, client.url("/users?$top=999"), Pool::Directory).with_page_limit(25);
    let mut read = 0;
    let err = loop {
        match pager.next_page().await {
            Ok(Some(_)) => read += 1,
            Ok(None) => panic!("the endless chain ended"),
            Err(err) => break err,
        }
    };
    assert_eq!(read, 25);
    assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 25);
    assert!(err.to_string().contains("more than 25 pages"), "{err}");
}

/// Each hostile answer to the users page fails the users section (malformed), never an empty
/// user list, and leaves the other sections alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_users_pages_fail_the_section_and_never_read_as_empty() {
    let huge = {
        let mut body = b"{\"value\":[{\"id\":\"".to_vec();
        body.resize(body.len() + 65 * 1024 * 1024, b'a');
        body.extend_from_slice(b"\"}]}");
        Arc::new(body)
    };
    let nested = Arc::new(format!(
        "{{\"value\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    ));
    let cases: Vec<(&str, Rule, &str)> = vec![
        (
            "200 with an error body",
            Arc::new(|_| {
                Answer::json(
                    200,
                    &json!({"error": {"code": "InternalServerError", "message": "x"}}),
                )
            }),
            "success status with an error body (code InternalServerError)",
        ),
        (
            "200 without value",
            Arc::new(|_| Answer::json(200, &json!({"@odata.context": "x"}))),
            "page has no value array",
        ),
        (
            "HTML with status 200",
            Arc::new(|_| Answer::raw(200, "text/html", b"<html>sign in</html>".to_vec())),
            "content type \"text/html\" is not json",
        ),
        (
            "truncated JSON",
            Arc::new(|_| {
                Answer::raw(
                    200,
                    "application/json",
                    b"{\"value\":[{\"id\":\"1\"".to_vec(),
                )
            }),
            "invalid JSON",
        ),
        (
            "nesting beyond serde's recursion limit",
            Arc::new(move |_| Answer::raw(200, "application/json", nested.as_bytes().to_vec())),
            "recursion limit",
        ),
        (
            "a body over 64 MiB",
            Arc::new(move |_| Answer::raw(200, "application/json", huge.to_vec())),
            "answer larger than",
        ),
    ];
    for (name, rewrite, expected) in cases {
        let rule: Rule = Arc::new(move |exchange| {
            if is_users_page(&exchange) {
                rewrite(exchange)
            } else {
                exchange.upstream
            }
        });
        let (report, _files) = collect_through(rule).await;
        let detail = malformed(&report.snapshot.users);
        assert!(detail.contains(expected), "{name}: {detail}");
        assert!(
            report.snapshot.domains.is_ok(),
            "{name}: domains failed too"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_with_missing_duplicate_or_unknown_ids_fail_only_those_items() {
    // Every batch: the answer to id "0" is dropped, id "1" is answered twice (the second time
    // as an empty list), and an answer to an id nobody asked for is added.
    let rule: Rule = Arc::new(|exchange| {
        if exchange.path_and_query != "/v1.0/$batch" || exchange.upstream.status != 200 {
            return exchange.upstream;
        }
        let mut batch = exchange.upstream_json();
        let responses = batch["responses"].as_array_mut().unwrap();
        responses.retain(|r| r["id"] != "0");
        if responses.iter().any(|r| r["id"] == "1") {
            responses.push(json!({"id": "1", "status": 200, "body": {"value": []}}));
        }
        responses.push(json!({"id": "999", "status": 200, "body": {"value": [{"id": "ghost"}]}}));
        Answer::json(200, &batch)
    });
    let (report, _files) = collect_through(rule).await;
    let clean_sim = sim(contoso()).await;
    let files = Files::new();
    let clean = collect(&context(config(&clean_sim, files.secret())))
        .await
        .snapshot;
    let failed = mailboxes_failed_or_equal(&report.snapshot.message_rules, &clean.message_rules)
        + mailboxes_failed_or_equal(
            &report.snapshot.calendar_permissions,
            &clean.calendar_permissions,
        );
    assert!(failed > 0, "no item was failed by the hostile batches");
    let shown = format!("{:?}", report.snapshot.message_rules);
    assert!(!shown.contains("ghost"), "an unasked answer was used");
}

/// Every mailbox is either read exactly as in the clean run or failed as malformed; returns
/// how many failed.
fn mailboxes_failed_or_equal<T: PartialEq + std::fmt::Debug>(
    section: &Result<m365_posture::snapshot::PerUser<T>, Unavailable>,
    clean: &Result<m365_posture::snapshot::PerUser<T>, Unavailable>,
) -> usize {
    let (section, clean) = (section.as_ref().unwrap(), clean.as_ref().unwrap());
    assert_eq!(section.len(), clean.len());
    let mut failed = 0;
    for (user, result) in section {
        match (result, &clean[user]) {
            (Ok(items), Ok(expected)) => assert_eq!(items, expected, "mailbox {user}"),
            (Err(Unavailable::Malformed { .. }), _) => failed += 1,
            (other, expected) => panic!("mailbox {user}: {other:?}, clean {expected:?}"),
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_not_followed() {
    let foreign = start_foreign().await;
    let target = format!("{}/v1.0/users?$top=999", foreign.base_url());
    let rule: Rule = Arc::new(move |exchange| {
        if !is_users_page(&exchange) {
            return exchange.upstream;
        }
        let mut answer = Answer::raw(302, "text/plain", Vec::new());
        answer.headers.push(("location".to_owned(), target.clone()));
        answer
    });
    let (report, _files) = collect_through(rule).await;
    assert!(report.snapshot.users.is_err(), "a redirect read as users");
    assert!(report.snapshot.domains.is_ok());
    assert!(
        foreign.requests().is_empty(),
        "foreign host got {:?}",
        foreign.requests()
    );
}
