//! The DNS answers of one scan: TXT for the checked domains, their `_dmarc.` names, SPF
//! include and redirect targets and organizational-domain fallbacks, and A/AAAA/MX for the
//! names SPF `a`, `mx` and `exists` terms reach, in rounds of "names still needed"
//! ([`dns_names_needed`]).

use crate::checks::domains::dns_names_needed;
use crate::checks::spf::DnsNeeded;
use crate::checks::CheckOptions;
use crate::config::DnsConfig;
use crate::dns::TxtResolver;
use crate::snapshot::{DnsAnswers, Domain, HostAnswers, Section, Unavailable};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// DNS lookups in flight at once.
const DNS_CONCURRENCY: usize = 16;
/// Rounds of "names still needed" (SPF include chains are at most ten deep).
const DNS_ROUNDS: usize = 12;

/// One question of a round.
enum Question {
    Txt(String),
    Addresses(String),
    Mx(String),
}

/// The TXT and host answers the SPF/DMARC checks ask for; nothing when the domains did not
/// arrive.
pub async fn dns_answers(
    config: &DnsConfig,
    options: &CheckOptions,
    domains: &Section<Vec<Domain>>,
    cancel: &CancellationToken,
) -> (DnsAnswers, HostAnswers) {
    let mut answers = DnsAnswers::new();
    let mut hosts = HostAnswers::default();
    let Ok(domains) = domains else {
        return (answers, hosts);
    };
    let resolver = match TxtResolver::new(config) {
        Ok(r) => r,
        Err(err) => {
            tracing::warn!(error = %err, "No DNS resolver");
            let needed = dns_names_needed(domains, options, &answers, &hosts);
            fail_all(needed, &mut answers, &mut hosts);
            return (answers, hosts);
        }
    };
    for _ in 0..DNS_ROUNDS {
        let needed = dns_names_needed(domains, options, &answers, &hosts);
        if needed.is_empty() || cancel.is_cancelled() {
            break;
        }
        let resolved: Vec<_> = futures::stream::iter(questions(needed))
            .map(|question| ask(&resolver, question))
            .buffer_unordered(DNS_CONCURRENCY)
            .collect()
            .await;
        for answer in resolved {
            store(answer, &mut answers, &mut hosts);
        }
    }
    (answers, hosts)
}

fn questions(needed: DnsNeeded) -> impl Iterator<Item = Question> {
    let txt = needed.txt.into_iter().map(Question::Txt);
    let addresses = needed.addresses.into_iter().map(Question::Addresses);
    txt.chain(addresses)
        .chain(needed.mx.into_iter().map(Question::Mx))
}

/// An answered question.
enum Answer {
    Txt(String, Result<Vec<String>, Unavailable>),
    Addresses(String, Result<Vec<std::net::IpAddr>, Unavailable>),
    Mx(String, Result<Vec<String>, Unavailable>),
}

async fn ask(resolver: &TxtResolver, question: Question) -> Answer {
    match question {
        Question::Txt(name) => {
            let answer = resolver.txt(&name).await;
            Answer::Txt(name, answer)
        }
        Question::Addresses(name) => {
            let answer = resolver.addresses(&name).await;
            Answer::Addresses(name, answer)
        }
        Question::Mx(name) => {
            let answer = resolver.mx(&name).await;
            Answer::Mx(name, answer)
        }
    }
}

fn store(answer: Answer, answers: &mut DnsAnswers, hosts: &mut HostAnswers) {
    match answer {
        Answer::Txt(name, answer) => {
            answers.insert(name, answer);
        }
        Answer::Addresses(name, answer) => {
            hosts.addresses.insert(name, answer);
        }
        Answer::Mx(name, answer) => {
            hosts.mx.insert(name, answer);
        }
    }
}

/// Without a resolver every needed name is a failed lookup.
fn fail_all(needed: DnsNeeded, answers: &mut DnsAnswers, hosts: &mut HostAnswers) {
    let failure = |name: &str| Unavailable::dns_failure(name, "no_resolver");
    for question in questions(needed) {
        store(
            match question {
                Question::Txt(name) => Answer::Txt(name.clone(), Err(failure(&name))),
                Question::Addresses(name) => Answer::Addresses(name.clone(), Err(failure(&name))),
                Question::Mx(name) => Answer::Mx(name.clone(), Err(failure(&name))),
            },
            answers,
            hosts,
        );
    }
}
