//! The DNS server over real UDP and TCP sockets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

async fn udp(addr: std::net::SocketAddr, name: &str) -> Message {
    udp_typed(addr, name, RecordType::TXT).await
}

async fn udp_typed(addr: std::net::SocketAddr, name: &str, record_type: RecordType) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&graph_sim::dns::query(7, name, record_type).unwrap(), addr)
        .await
        .unwrap();
    let mut buffer = vec![0u8; 4096];
    let (len, _) = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        socket.recv_from(&mut buffer),
    )
    .await
    .unwrap()
    .unwrap();
    Message::from_vec(&buffer[..len]).unwrap()
}

async fn tcp(addr: std::net::SocketAddr, name: &str) -> Message {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let query = graph_sim::dns::txt_query(9, name).unwrap();
    stream
        .write_all(&(query.len() as u16).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&query).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).await.unwrap();
    Message::from_vec(&body).unwrap()
}

fn texts(message: &Message) -> Vec<Vec<Vec<u8>>> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(txt.txt_data.iter().map(|b| b.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn txt_over_udp_and_tcp_and_nxdomain() {
    let sim = sim(fixture()).await;
    let answer = udp(sim.dns_addr(), "_dmarc.contoso.com.").await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert_eq!(
        texts(&answer),
        vec![vec![
            b"v=DMARC1; p=reject; rua=mailto:dmarc@contoso.com".to_vec()
        ]]
    );
    let answer = tcp(sim.dns_addr(), "CONTOSO.com.").await;
    assert_eq!(texts(&answer).len(), 2);
    assert_eq!(
        udp(sim.dns_addr(), "nothing.example.")
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let stats = sim.stats();
    assert_eq!(stats.dns_by_rcode.get("NXDomain"), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn long_txt_is_split_and_truncated_over_plain_udp() {
    let mut tenant = fixture();
    let long = format!(
        "v=spf1 {} -all",
        (0..40)
            .map(|i| format!("ip4:10.0.{i}.0/24"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(long.len() > 255);
    tenant
        .dns
        .insert("big.contoso.com".into(), vec![long.clone(), long.clone()]);
    let sim = sim(tenant).await;
    let answer = tcp(sim.dns_addr(), "big.contoso.com.").await;
    let records = texts(&answer);
    assert_eq!(records.len(), 2);
    assert!(records[0].iter().all(|s| s.len() <= 255));
    assert!(records[0].len() >= 2);
    assert_eq!(records[0].concat(), long.as_bytes());
    let over_udp = udp(sim.dns_addr(), "big.contoso.com.").await;
    assert!(
        over_udp.metadata.truncation,
        "answers over 512 bytes set TC without EDNS"
    );
    assert!(over_udp.answers.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn servfail_and_empty_non_terminal() {
    let mut tenant = fixture();
    tenant.faults.dns_servfail = vec!["fabrikam.net".into()];
    let sim = sim(tenant).await;
    assert_eq!(
        udp(sim.dns_addr(), "fabrikam.net.")
            .await
            .metadata
            .response_code,
        ResponseCode::ServFail
    );
    let parent = udp(sim.dns_addr(), "protection.outlook.com.").await;
    assert_eq!(parent.metadata.response_code, ResponseCode::NoError);
    assert!(parent.answers.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_aaaa_and_mx_come_from_dns_hosts() {
    let mut tenant = fixture();
    tenant.dns_hosts.insert(
        "mail.contoso.com".into(),
        graph_sim::HostRecords {
            a: vec!["192.0.2.25".parse().unwrap()],
            aaaa: vec!["2001:db8::25".parse().unwrap()],
            mx: vec![
                (20, "backup.contoso.com".into()),
                (10, "mail.contoso.com".into()),
            ],
        },
    );
    let sim = sim(tenant).await;
    let data = |m: &Message| m.answers.iter().map(|r| r.data.clone()).collect::<Vec<_>>();
    let a = udp_typed(sim.dns_addr(), "MAIL.contoso.com.", RecordType::A).await;
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(matches!(&data(&a)[..], [RData::A(ip)] if ip.0.to_string() == "192.0.2.25"));
    let aaaa = udp_typed(sim.dns_addr(), "mail.contoso.com.", RecordType::AAAA).await;
    assert!(matches!(&data(&aaaa)[..], [RData::AAAA(ip)] if ip.0.to_string() == "2001:db8::25"));
    let mx = udp_typed(sim.dns_addr(), "mail.contoso.com.", RecordType::MX).await;
    let exchanges: Vec<(u16, String)> = data(&mx)
        .iter()
        .filter_map(|d| match d {
            RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    assert_eq!(
        exchanges,
        vec![
            (20, "backup.contoso.com.".into()),
            (10, "mail.contoso.com.".into())
        ]
    );
    // A TXT-only name has no A records (NOERROR, no answer); an unknown name is NXDOMAIN.
    let no_a = udp_typed(sim.dns_addr(), "contoso.com.", RecordType::A).await;
    assert_eq!(no_a.metadata.response_code, ResponseCode::NoError);
    assert!(no_a.answers.is_empty());
    let none = udp_typed(sim.dns_addr(), "gone.contoso.com.", RecordType::A).await;
    assert_eq!(none.metadata.response_code, ResponseCode::NXDomain);
    // The TXT-only name's TXT answer is unchanged by the host records beside it.
    assert_eq!(texts(&udp(sim.dns_addr(), "contoso.com.").await).len(), 2);
}
