//! Hostile DNS (SECURITY.md), against graph-sim's DNS server and a server that never answers:
//! a huge TXT answer (a thousand records, a record of thousands of bytes in 255-byte strings)
//! comes back truncated over UDP and whole over TCP; one too large for any DNS message is an
//! error; a silent server costs a bounded time and
//! every name it was asked is an error, never "no record".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "collect_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_txt_answer_is_read_whole_over_tcp() {
    let mut tenant = contoso();
    let mut records: Vec<String> = (0..1000)
        .map(|i| format!("junk-{i:04}-{}", "x".repeat(24)))
        .collect();
    records.push("v=spf1 include:spf.protection.outlook.com -all".to_owned());
    // One record of 5000 bytes: twenty character-strings that the resolver joins.
    records.push(format!("verification={}", "y".repeat(4987)));
    tenant.dns.insert("contoso.com".to_owned(), records.clone());
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    let mut got = snap.dns["contoso.com"].clone().unwrap();
    got.sort();
    records.sort();
    assert_eq!(got.len(), records.len());
    assert_eq!(got, records, "the answer was cut or altered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_for_a_dns_message_is_an_error_not_an_empty_list() {
    let mut tenant = contoso();
    // About 70 KB of records: more than one DNS message can carry, even over TCP.
    let records: Vec<String> = (0..1500)
        .map(|i| format!("junk-{i:04}-{}", "x".repeat(24)))
        .collect();
    tenant.dns.insert("contoso.com".to_owned(), records);
    let sim = sim(tenant).await;
    let files = Files::new();
    let snap = collect(&context(config(&sim, files.secret())))
        .await
        .snapshot;
    assert!(
        snap.dns["contoso.com"].is_err(),
        "{:?}",
        snap.dns["contoso.com"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_an_error_for_every_name_in_bounded_time() {
    // Accepts UDP datagrams and TCP connections and never answers either.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = udp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                _ = udp.recv_from(&mut buf) => {}
                accepted = tcp.accept() => if let Ok((stream, _)) = accepted { held.push(stream) },
            }
        }
    });
    let sim = sim(contoso()).await;
    let files = Files::new();
    let mut config = config(&sim, files.secret());
    config.dns.servers = vec![addr];
    config.dns.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let snap = collect(&context(config)).await.snapshot;
    let took = started.elapsed();
    silent.abort();
    assert!(took < Duration::from_secs(30), "DNS timeouts took {took:?}");
    assert!(!snap.dns.is_empty(), "no name was looked up");
    for (name, answer) in &snap.dns {
        assert!(
            answer.is_err(),
            "{name} read as {answer:?} from a silent server"
        );
    }
    // Graph sections do not depend on DNS.
    assert!(snap.users.is_ok() && snap.domains.is_ok());
}
